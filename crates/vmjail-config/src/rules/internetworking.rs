//! `internetworking_model`.

use crate::model::{HypervisorKind, InterNetworkingModel};

/// The accepted values, for error messages.
pub const VALID: &str =
    "valid: \"default\", \"bridged\", \"macvtap\", \"enlightened\", \"tcfilter\", \"none\"";

/// `internetworking_model`: unset/empty → macvtap (Kata's code default;
/// Kata's shipped templates set "tcfilter"); unknown → `Err`.
pub fn internetworking_model(raw: Option<&str>) -> Result<InterNetworkingModel, &'static str> {
    match raw.unwrap_or("") {
        "" | "macvtap" => Ok(InterNetworkingModel::Macvtap),
        "default" => Ok(InterNetworkingModel::Default),
        "bridged" => Ok(InterNetworkingModel::Bridged),
        "enlightened" => Ok(InterNetworkingModel::Enlightened),
        "tcfilter" => Ok(InterNetworkingModel::Tcfilter),
        "none" => Ok(InterNetworkingModel::None),
        _ => Err(VALID),
    }
}

/// The model when the file sets none: Kata's code default (macvtap), but
/// tcfilter for Firecracker, which cannot use a macvtap (Kata's
/// Firecracker template sets tcfilter too).
pub fn default_for(kind: HypervisorKind) -> InterNetworkingModel {
    match kind {
        HypervisorKind::Firecracker => InterNetworkingModel::Tcfilter,
        _ => InterNetworkingModel::Macvtap,
    }
}

/// Whether hypervisor `kind` can use `model`: Firecracker opens taps by
/// name only, so no macvtap (nor `default`, which is macvtap).
pub fn supported(kind: HypervisorKind, model: InterNetworkingModel) -> bool {
    !(kind == HypervisorKind::Firecracker
        && matches!(
            model,
            InterNetworkingModel::Macvtap | InterNetworkingModel::Default
        ))
}

/// The name as written in TOML.
pub fn name(model: InterNetworkingModel) -> &'static str {
    match model {
        InterNetworkingModel::Default => "default",
        InterNetworkingModel::Bridged => "bridged",
        InterNetworkingModel::Macvtap => "macvtap",
        InterNetworkingModel::Enlightened => "enlightened",
        InterNetworkingModel::Tcfilter => "tcfilter",
        InterNetworkingModel::None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firecracker_takes_no_macvtap_and_defaults_to_tcfilter() {
        use HypervisorKind::*;
        use InterNetworkingModel::*;
        assert_eq!(default_for(Firecracker), Tcfilter);
        assert_eq!(default_for(Qemu), Macvtap);
        assert!(!supported(Firecracker, Macvtap));
        assert!(!supported(Firecracker, Default));
        assert!(supported(Firecracker, Tcfilter));
        assert!(supported(Qemu, Macvtap));
    }

    #[test]
    fn model_table() {
        let cases = [
            (None, Ok(InterNetworkingModel::Macvtap)),
            (Some(""), Ok(InterNetworkingModel::Macvtap)),
            (Some("default"), Ok(InterNetworkingModel::Default)),
            (Some("bridged"), Ok(InterNetworkingModel::Bridged)),
            (Some("macvtap"), Ok(InterNetworkingModel::Macvtap)),
            (Some("enlightened"), Ok(InterNetworkingModel::Enlightened)),
            (Some("tcfilter"), Ok(InterNetworkingModel::Tcfilter)),
            (Some("none"), Ok(InterNetworkingModel::None)),
            (Some("None"), Err(VALID)),
            (Some("vxlan"), Err(VALID)),
        ];
        for (raw, want) in cases {
            let got = internetworking_model(raw);
            assert_eq!(got, want, "{raw:?}");
            if let Ok(model) = got {
                assert_eq!(internetworking_model(Some(name(model))), Ok(model));
            }
        }
    }
}

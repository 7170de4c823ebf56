//! `disable_new_netns` and the settings it conflicts with.

use crate::model::InterNetworkingModel;

/// Which netns rule a configuration breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetnsViolation {
    /// `disable_new_netns` with `enable_netmon`.
    ConflictsNetmon,
    /// `disable_new_netns` with a model other than `none`.
    NeedsNoneModel,
    /// Shim tracing needs the host netns to reach the Jaeger agent.
    ShimTracingNeedsHostNetns,
}

/// Kata's `checkNetNsConfig`.
pub fn check_netns(
    disable_new_netns: bool,
    enable_netmon: bool,
    model: InterNetworkingModel,
    shim_tracing: bool,
) -> Result<(), NetnsViolation> {
    if disable_new_netns {
        if enable_netmon {
            return Err(NetnsViolation::ConflictsNetmon);
        }
        if model != InterNetworkingModel::None {
            return Err(NetnsViolation::NeedsNoneModel);
        }
    } else if shim_tracing {
        return Err(NetnsViolation::ShimTracingNeedsHostNetns);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use InterNetworkingModel::*;
    use NetnsViolation::*;

    #[test]
    fn netns_table() {
        // (disable_new_netns, enable_netmon, model, shim tracing, result)
        let cases = [
            (false, false, Macvtap, false, Ok(())),
            (false, true, Tcfilter, false, Ok(())),
            (false, false, None, false, Ok(())),
            (false, false, Macvtap, true, Err(ShimTracingNeedsHostNetns)),
            (true, false, None, false, Ok(())),
            (true, false, None, true, Ok(())),
            (true, true, None, false, Err(ConflictsNetmon)),
            (true, false, Macvtap, false, Err(NeedsNoneModel)),
            (true, false, Tcfilter, true, Err(NeedsNoneModel)),
        ];
        for (disable, netmon, model, tracing, want) in cases {
            assert_eq!(
                check_netns(disable, netmon, model, tracing),
                want,
                "{disable} {netmon} {model:?} {tracing}"
            );
        }
    }
}

//! `[agent.kata]` trace mode and type (Kata's
//! `KataAgentSetDefaultTraceConfigOptions`).

/// Default trace mode when tracing is on and none is set.
pub const DEFAULT_TRACE_MODE: &str = "dynamic";
/// Default trace type when tracing is on and none is set.
pub const DEFAULT_TRACE_TYPE: &str = "isolated";
/// Valid `trace_mode` values, for error messages.
pub const VALID_MODES: &str = "valid: \"dynamic\", \"static\"";
/// Valid `trace_type` values, for error messages.
pub const VALID_TYPES: &str = "valid: \"isolated\", \"collated\"";

/// Which trace setting is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceError {
    Mode,
    Type,
}

/// With tracing on, fill in defaults and check mode/type; with tracing off
/// the values are kept as written and not checked (as Kata does).
pub fn trace_options(
    enabled: bool,
    mode: &str,
    kind: &str,
) -> Result<(String, String), TraceError> {
    if !enabled {
        return Ok((mode.to_string(), kind.to_string()));
    }
    let mode = match mode {
        "" => DEFAULT_TRACE_MODE,
        "dynamic" | "static" => mode,
        _ => return Err(TraceError::Mode),
    };
    let kind = match kind {
        "" => DEFAULT_TRACE_TYPE,
        "isolated" | "collated" => kind,
        _ => return Err(TraceError::Type),
    };
    Ok((mode.to_string(), kind.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_table() {
        let ok = |m: &str, t: &str| Ok((m.to_string(), t.to_string()));
        let cases = [
            (false, "", "", ok("", "")),
            (false, "bogus", "bogus", ok("bogus", "bogus")),
            (true, "", "", ok("dynamic", "isolated")),
            (true, "static", "", ok("static", "isolated")),
            (true, "static", "collated", ok("static", "collated")),
            (true, "dynamic", "collated", ok("dynamic", "collated")),
            (true, "sometimes", "", Err(TraceError::Mode)),
            (true, "static", "joined", Err(TraceError::Type)),
        ];
        for (enabled, mode, kind, want) in cases {
            assert_eq!(
                trace_options(enabled, mode, kind),
                want,
                "{enabled} {mode} {kind}"
            );
        }
    }
}

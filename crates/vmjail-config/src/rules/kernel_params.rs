//! The guest kernel command line: vmjail's defaults, then the agent's
//! parameters, then the user's `kernel_params`. A parameter of a later
//! layer replaces every earlier-layer parameter of the same name (the
//! replacement goes to the end, in its layer's order); repeats inside one
//! layer are kept (`console=ttyS0 console=hvc0` means both).

use crate::model::KernelParam;

/// vmjail's default parameters for microVM guests. No `console=`: each
/// backend adds the console it wires up.
pub const VMJAIL_DEFAULT_KERNEL_PARAMS: &str = "reboot=k panic=1 tsc=reliable no_timer_check \
rcupdate.rcu_expedited=1 i8042.direct=1 i8042.dumbkbd=1 i8042.nopnp=1 i8042.noaux=1 \
noreplace-smp iommu=off cryptomgr.notests net.ifnames=0";

/// Split a command line on whitespace into `key` / `key=value` parameters.
/// `Err` carries a parameter with an empty name (`=x`).
pub fn parse(line: &str) -> Result<Vec<KernelParam>, String> {
    line.split_whitespace()
        .map(|word| {
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (word, None),
            };
            if key.is_empty() {
                return Err(word.to_string());
            }
            Ok(KernelParam {
                key: key.to_string(),
                value,
            })
        })
        .collect()
}

/// The agent's parameters: `agent.log=debug` when debugging,
/// `agent.trace=<type>` when tracing in static mode (dynamic tracing is
/// started over the agent's API, not the command line) — Kata's
/// `KataAgentKernelParams`.
pub fn agent_params(
    debug: bool,
    tracing: bool,
    trace_mode: &str,
    trace_type: &str,
) -> Vec<KernelParam> {
    let mut params = Vec::new();
    if debug {
        params.push(KernelParam {
            key: "agent.log".into(),
            value: Some("debug".into()),
        });
    }
    if tracing && trace_mode == "static" {
        params.push(KernelParam {
            key: "agent.trace".into(),
            value: Some(trace_type.into()),
        });
    }
    params
}

/// Merge layers, earliest first (see the module comment).
pub fn merge(layers: &[Vec<KernelParam>]) -> Vec<KernelParam> {
    let mut out: Vec<KernelParam> = Vec::new();
    for layer in layers {
        out.retain(|p| !layer.iter().any(|q| q.key == p.key));
        out.extend(layer.iter().cloned());
    }
    out
}

/// The command line as the kernel reads it.
pub fn render(params: &[KernelParam]) -> String {
    params
        .iter()
        .map(|p| match &p.value {
            Some(v) => format!("{}={v}", p.key),
            None => p.key.clone(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Vec<KernelParam> {
        parse(line).unwrap()
    }

    #[test]
    fn parse_table() {
        let cases = [
            ("", Ok(vec![])),
            ("  ", Ok(vec![])),
            (
                "quiet",
                Ok(vec![KernelParam {
                    key: "quiet".into(),
                    value: None,
                }]),
            ),
            (
                "a=1 b= c=x=y",
                Ok(vec![
                    KernelParam {
                        key: "a".into(),
                        value: Some("1".into()),
                    },
                    KernelParam {
                        key: "b".into(),
                        value: Some("".into()),
                    },
                    KernelParam {
                        key: "c".into(),
                        value: Some("x=y".into()),
                    },
                ]),
            ),
            ("ok =bad", Err("=bad".to_string())),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line), want, "{line:?}");
        }
    }

    #[test]
    fn defaults_parse_and_have_no_console() {
        let params = p(VMJAIL_DEFAULT_KERNEL_PARAMS);
        assert!(params.len() > 5);
        assert!(params.iter().all(|q| q.key != "console"));
    }

    #[test]
    fn agent_params_table() {
        let cases = [
            (false, false, "", "", ""),
            (true, false, "", "", "agent.log=debug"),
            (false, true, "dynamic", "isolated", ""),
            (false, true, "static", "isolated", "agent.trace=isolated"),
            (
                true,
                true,
                "static",
                "collated",
                "agent.log=debug agent.trace=collated",
            ),
        ];
        for (debug, tracing, mode, kind, want) in cases {
            assert_eq!(render(&agent_params(debug, tracing, mode, kind)), want);
        }
    }

    #[test]
    fn merge_table() {
        let cases = [
            (vec!["a=1 b=2", "", ""], "a=1 b=2"),
            (
                vec!["a=1 b=2", "agent.log=debug", ""],
                "a=1 b=2 agent.log=debug",
            ),
            (vec!["a=1 b=2", "", "a=9"], "b=2 a=9"),
            (
                vec!["panic=1", "agent.log=debug", "agent.log=info"],
                "panic=1 agent.log=info",
            ),
            (vec!["x", "", "x=1"], "x=1"),
            (
                vec!["", "", "console=ttyS0 console=hvc0"],
                "console=ttyS0 console=hvc0",
            ),
            (vec!["c=1", "", "c=2 c=3"], "c=2 c=3"),
        ];
        for (layers, want) in cases {
            let layers: Vec<Vec<KernelParam>> = layers.iter().map(|l| p(l)).collect();
            assert_eq!(render(&merge(&layers)), want);
        }
    }
}

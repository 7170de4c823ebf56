//! The file as written: TOML parsed with spans, tables checked against
//! Kata's layout, keys read with their types. No defaults, no rules.

pub(crate) mod section;
pub(crate) mod sections;
pub(crate) mod unknown;
pub(crate) mod value;

use std::ops::Range;

use toml_edit::{ImDocument, Item, TableLike};

use crate::error::ConfigError;
use crate::model::{ConfigWarning, HypervisorKind};
use crate::source::SourceText;
pub(crate) use sections::*;

/// Top-level keys of the file.
const TOP_LEVEL: &[&str] = &[
    "hypervisor",
    "proxy",
    "shim",
    "agent",
    "runtime",
    "factory",
    "netmon",
    "jail",
];

const HYPERVISOR_TYPES: &str = "firecracker, qemu, acrn";

/// The whole file as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawConfig {
    pub hypervisor_kind: HypervisorKind,
    pub hypervisor: RawHypervisor,
    pub proxy: Option<RawProxy>,
    pub shim: Option<RawShim>,
    pub agent: Option<RawAgent>,
    pub runtime: RawRuntime,
    pub factory: RawFactory,
    pub netmon: RawNetmon,
    pub jail: RawJail,
}

/// Parse `src` into a [`RawConfig`]; unknown keys are pushed to `warnings`.
pub(crate) fn parse(
    src: &SourceText<'_>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<RawConfig, ConfigError> {
    let doc = ImDocument::parse(src.text).map_err(|e| ConfigError::Syntax {
        location: src.at(e.span()),
        message: e.message().trim_end().to_string(),
    })?;
    let root: &dyn TableLike = doc.as_table();

    let mut hypervisors: Vec<(HypervisorKind, RawHypervisor)> = Vec::new();
    let mut proxy = None;
    let mut shim = None;
    let mut agent = None;
    let mut runtime = RawRuntime::default();
    let mut factory = RawFactory::default();
    let mut netmon = RawNetmon::default();
    let mut jail = RawJail::default();

    for (key, item) in root.iter() {
        let key_span = root.key(key).and_then(|k| k.span());
        match key {
            "hypervisor" => {
                for (name, (table, span)) in component_tables(src, key, item)? {
                    let kind = match name {
                        "firecracker" => HypervisorKind::Firecracker,
                        "qemu" => HypervisorKind::Qemu,
                        "acrn" => HypervisorKind::Acrn,
                        _ => {
                            return Err(ConfigError::UnknownComponentType {
                                location: src.at(span),
                                component: "hypervisor",
                                name: name.to_string(),
                                valid: HYPERVISOR_TYPES,
                            })
                        }
                    };
                    let section = format!("hypervisor.{name}");
                    let raw = RawHypervisor::read(src, &section, table, span, warnings)?;
                    hypervisors.push((kind, raw));
                }
            }
            "proxy" => {
                let table = only_kata(src, "proxy", item)?;
                proxy = table
                    .map(|(t, span)| RawProxy::read(src, "proxy.kata", t, span, warnings))
                    .transpose()?;
            }
            "shim" => {
                let table = only_kata(src, "shim", item)?;
                shim = table
                    .map(|(t, span)| RawShim::read(src, "shim.kata", t, span, warnings))
                    .transpose()?;
            }
            "agent" => {
                let table = only_kata(src, "agent", item)?;
                agent = table
                    .map(|(t, span)| RawAgent::read(src, "agent.kata", t, span, warnings))
                    .transpose()?;
            }
            "runtime" => {
                runtime = RawRuntime::read(src, key, table(src, key, item)?, key_span, warnings)?
            }
            "factory" => {
                factory = RawFactory::read(src, key, table(src, key, item)?, key_span, warnings)?
            }
            "netmon" => {
                netmon = RawNetmon::read(src, key, table(src, key, item)?, key_span, warnings)?
            }
            "jail" => jail = RawJail::read(src, key, table(src, key, item)?, key_span, warnings)?,
            _ => warnings.push(unknown::unknown_key_warning(
                src, "", key, key_span, TOP_LEVEL,
            )),
        }
    }

    let (hypervisor_kind, hypervisor) = match hypervisors.len() {
        0 => return Err(ConfigError::NoHypervisor { file: src.name() }),
        1 => hypervisors.remove(0),
        _ => {
            let names: Vec<String> = hypervisors
                .iter()
                .map(|(kind, raw)| {
                    format!(
                        "[hypervisor.{}] at {}",
                        kind_name(*kind),
                        src.at(raw.span.clone())
                    )
                })
                .collect();
            return Err(ConfigError::MultipleHypervisors {
                file: src.name(),
                names: names.join(", "),
            });
        }
    };

    Ok(RawConfig {
        hypervisor_kind,
        hypervisor,
        proxy,
        shim,
        agent,
        runtime,
        factory,
        netmon,
        jail,
    })
}

/// The table name of a hypervisor kind.
pub(crate) fn kind_name(kind: HypervisorKind) -> &'static str {
    match kind {
        HypervisorKind::Firecracker => "firecracker",
        HypervisorKind::Qemu => "qemu",
        HypervisorKind::Acrn => "acrn",
    }
}

/// `item` as a table, or a type error naming `key`.
fn table<'a>(
    src: &SourceText<'_>,
    key: &str,
    item: &'a Item,
) -> Result<&'a dyn TableLike, ConfigError> {
    item.as_table_like().ok_or_else(|| ConfigError::WrongType {
        location: src.at(item.span()),
        key: key.to_string(),
        expected: "a table",
        found: format!("a {}", item.type_name()),
    })
}

/// A `[<component>.<type>]` table and where its name was written.
type TypedTable<'a> = (&'a dyn TableLike, Option<Range<usize>>);

/// The `<type>` sub-tables of a component table (`[hypervisor.<type>]`).
fn component_tables<'a>(
    src: &SourceText<'_>,
    component: &str,
    item: &'a Item,
) -> Result<Vec<(&'a str, TypedTable<'a>)>, ConfigError> {
    let outer = table(src, component, item)?;
    let mut out = Vec::new();
    for (name, sub) in outer.iter() {
        let dotted = format!("{component}.{name}");
        let span = outer.key(name).and_then(|k| k.span());
        out.push((name, (table(src, &dotted, sub)?, span)));
    }
    Ok(out)
}

/// `[proxy|shim|agent.kata]`: the only type Kata's format knows.
fn only_kata<'a>(
    src: &SourceText<'_>,
    component: &'static str,
    item: &'a Item,
) -> Result<Option<TypedTable<'a>>, ConfigError> {
    let mut found = None;
    for (name, (table, span)) in component_tables(src, component, item)? {
        if name != "kata" {
            return Err(ConfigError::UnknownComponentType {
                location: src.at(span),
                component,
                name: name.to_string(),
                valid: "kata",
            });
        }
        found = Some((table, span));
    }
    Ok(found)
}

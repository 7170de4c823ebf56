//! Warnings for keys vmjail does not know, naming the nearest valid key.

use std::ops::Range;

use crate::model::ConfigWarning;
use crate::source::SourceText;

/// The valid key closest to `key` (Jaro-Winkler ≥ 0.8), if any.
pub(crate) fn nearest<'a>(key: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|v| (strsim::jaro_winkler(key, v), *v))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

/// The warning for `key` in `section` (e.g. `hypervisor.qemu`).
pub(crate) fn unknown_key_warning(
    src: &SourceText<'_>,
    section: &str,
    key: &str,
    span: Option<Range<usize>>,
    valid: &[&str],
) -> ConfigWarning {
    let place = if section.is_empty() {
        format!("unknown top-level key {key:?}")
    } else {
        format!("unknown key {key:?} in [{section}]")
    };
    let advice = match nearest(key, valid) {
        Some(near) => format!("did you mean {near:?}?"),
        None => format!("valid keys: {}", valid.join(", ")),
    };
    ConfigWarning {
        location: Some(src.at(span)),
        message: format!("{place} is ignored; {advice}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_table() {
        let valid = [
            "default_memory",
            "default_vcpus",
            "default_maxvcpus",
            "path",
        ];
        let cases = [
            ("default_memroy", Some("default_memory")),
            ("default_vcpu", Some("default_vcpus")),
            ("default_maxvcpu", Some("default_maxvcpus")),
            ("paht", Some("path")),
            ("zzzzzz", None),
        ];
        for (key, want) in cases {
            assert_eq!(nearest(key, &valid), want, "key {key}");
        }
    }
}

//! `machine_accelerators`: a comma-separated list.

/// Split on commas, trim whitespace (spaces, tabs, CR, LF), drop empties.
pub fn machine_accelerators(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or("")
        .split(',')
        .map(|a| a.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n')))
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerators_table() {
        let cases: [(Option<&str>, &[&str]); 7] = [
            (None, &[]),
            (Some(""), &[]),
            (Some(",,,"), &[]),
            (Some("nofw"), &["nofw"]),
            (Some(" nofw , nosmm\t"), &["nofw", "nosmm"]),
            (Some("a,,b,"), &["a", "b"]),
            (Some("\r\n x \n"), &["x"]),
        ];
        for (raw, want) in cases {
            assert_eq!(machine_accelerators(raw), want, "{raw:?}");
        }
    }
}

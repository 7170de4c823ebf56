//! `[runtime] experimental`: names of opt-in features.

/// Experimental features vmjail knows. Kata 1.x registered `newstore` (its
/// reorganised on-disk store); vmjail accepts the name so Kata files that
/// set it load, and it changes nothing (vmjail has its own store).
pub const KNOWN_EXPERIMENTAL: &[&str] = &["newstore"];

/// The first name that is not a known feature, if any.
pub fn first_unknown(names: &[String]) -> Option<&str> {
    names
        .iter()
        .map(String::as_str)
        .find(|n| !KNOWN_EXPERIMENTAL.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experimental_table() {
        let cases: [(&[&str], Option<&str>); 5] = [
            (&[], None),
            (&["newstore"], None),
            (&["nope"], Some("nope")),
            (&["newstore", "x", "y"], Some("x")),
            (&[""], Some("")),
        ];
        for (names, want) in cases {
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            assert_eq!(first_unknown(&names), want, "{names:?}");
        }
    }
}

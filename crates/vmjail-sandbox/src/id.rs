//! Sandbox ids: the one name a sandbox has on disk, in `/run/netns` and in
//! the jail's paths, so it is checked before it touches any of them.

use std::fmt;

use crate::SandboxError;

/// The longest id accepted (it becomes part of paths and netns names).
pub const MAX_ID_LEN: usize = 64;

/// A validated sandbox id: `[A-Za-z0-9][A-Za-z0-9-]{0,63}`. It never starts
/// with `-`, so `vmjail state ID` cannot read it as an option.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SandboxId(String);

impl SandboxId {
    /// Check `id` against `[A-Za-z0-9][A-Za-z0-9-]{0,63}`; nothing else (no
    /// `.`, `/`, `_`, whitespace, non-ASCII or a leading `-`) can reach a
    /// path or a command line.
    pub fn parse(id: &str) -> Result<Self, SandboxError> {
        let reason = if id.is_empty() {
            Some("it is empty")
        } else if id.len() > MAX_ID_LEN {
            Some("it is longer than 64 bytes")
        } else if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            Some("it contains a character outside A-Z, a-z, 0-9 and '-'")
        } else if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            Some("it does not start with a letter or a digit")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(SandboxError::InvalidId {
                id: id.escape_debug().to_string(),
                reason,
            }),
            None => Ok(Self(id.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_and_dashes_up_to_64() {
        for ok in ["a", "A-9", "9", "sandbox-1", "a-", "a--b", &"x".repeat(64)] {
            assert_eq!(SandboxId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            &"x".repeat(65),
            "..",
            "a/b",
            "../etc",
            "a_b",
            "a.b",
            "a b",
            "é",
            "a\0b",
            "a\nb",
            "-",
            "--",
            "-x",
            "--uid",
            "--allow-root",
            &format!("-{}", "x".repeat(63)),
        ] {
            let err = SandboxId::parse(bad).unwrap_err();
            assert!(
                matches!(err, SandboxError::InvalidId { .. }),
                "{bad:?}: {err}"
            );
            assert!(
                err.to_string().contains("[A-Za-z0-9][A-Za-z0-9-]{0,63}"),
                "{err}"
            );
        }
    }
}

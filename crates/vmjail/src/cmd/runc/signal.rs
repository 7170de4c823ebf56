//! A signal as `kill` takes it: a number, or a name with or without `SIG`
//! in any case (runc's forms).

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::cmd::lifecycle::Failure;

pub fn parse(text: &str) -> Result<i32, Failure> {
    if let Ok(n) = text.parse::<i32>() {
        return match Signal::try_from(n) {
            Ok(signal) => Ok(signal as i32),
            Err(_) => Err(bad(text)),
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = match upper.starts_with("SIG") {
        true => upper,
        false => format!("SIG{upper}"),
    };
    Signal::from_str(&name)
        .map(|s| s as i32)
        .map_err(|_| bad(text))
}

fn bad(text: &str) -> Failure {
    Failure::Usage(format!(
        "kill: {text:?} is not a signal (a number 1-31, or a name such as TERM, SIGKILL, usr1)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        for (text, n) in [
            ("9", 9),
            ("KILL", 9),
            ("sigterm", 15),
            ("usr1", 10),
            ("SIGHUP", 1),
        ] {
            assert_eq!(parse(text).ok(), Some(n), "{text}");
        }
        for text in ["0", "99", "NOPE", "SIG", "-1"] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}

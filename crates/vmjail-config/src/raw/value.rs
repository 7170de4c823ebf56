//! Typed reads of single TOML values, with errors that name the key, the
//! expected type and the place in the file.

use std::ops::Range;

use toml_edit::{Item, Value};

use crate::error::ConfigError;
use crate::source::SourceText;

/// A value read from the file and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub span: Option<Range<usize>>,
}

/// Conversion of one TOML item into a Rust value.
pub(crate) trait FromItem: Sized {
    /// What the key must hold, for error messages.
    const EXPECTED: &'static str;
    fn from_value(value: &Value) -> Option<Self>;
}

/// Read `item` (the value of `key`) as `T`, or a [`ConfigError::WrongType`].
pub(crate) fn read<T: FromItem>(
    src: &SourceText<'_>,
    key: &str,
    item: &Item,
) -> Result<Spanned<T>, ConfigError> {
    let span = item.span();
    let parsed = item.as_value().and_then(T::from_value);
    match parsed {
        Some(value) => Ok(Spanned { value, span }),
        None => Err(ConfigError::WrongType {
            location: src.at(span),
            key: key.to_string(),
            expected: T::EXPECTED,
            found: describe(item),
        }),
    }
}

/// A short description of what was found, for error messages.
fn describe(item: &Item) -> String {
    match item.as_value() {
        Some(Value::String(s)) => format!("the string {:?}", s.value()),
        Some(Value::Integer(i)) => format!("the integer {}", i.value()),
        Some(Value::Float(f)) => format!("the float {}", f.value()),
        Some(Value::Boolean(b)) => format!("the boolean {}", b.value()),
        Some(other) => format!("a {}", other.type_name()),
        None => format!("a {}", item.type_name()),
    }
}

impl FromItem for String {
    const EXPECTED: &'static str = "a string";
    fn from_value(value: &Value) -> Option<Self> {
        value.as_str().map(str::to_string)
    }
}

impl FromItem for bool {
    const EXPECTED: &'static str = "a boolean (true or false)";
    fn from_value(value: &Value) -> Option<Self> {
        value.as_bool()
    }
}

impl FromItem for u32 {
    const EXPECTED: &'static str = "an integer from 0 to 4294967295";
    fn from_value(value: &Value) -> Option<Self> {
        value.as_integer().and_then(|i| u32::try_from(i).ok())
    }
}

impl FromItem for i32 {
    const EXPECTED: &'static str = "an integer from -2147483648 to 2147483647";
    fn from_value(value: &Value) -> Option<Self> {
        value.as_integer().and_then(|i| i32::try_from(i).ok())
    }
}

impl FromItem for u64 {
    const EXPECTED: &'static str = "a non-negative integer";
    fn from_value(value: &Value) -> Option<Self> {
        value.as_integer().and_then(|i| u64::try_from(i).ok())
    }
}

impl FromItem for Vec<String> {
    const EXPECTED: &'static str = "an array of strings";
    fn from_value(value: &Value) -> Option<Self> {
        value
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect()
    }
}

/// A value written either as a string or as an integer
/// (`cgroup_version = "2"` and `cgroup_version = 2` mean the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StrOrInt(pub String);

impl FromItem for StrOrInt {
    const EXPECTED: &'static str = "a string or an integer";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(StrOrInt(s.value().clone())),
            Value::Integer(i) => Some(StrOrInt(i.value().to_string())),
            _ => None,
        }
    }
}

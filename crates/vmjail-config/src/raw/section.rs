//! `raw_section!` declares one TOML table's keys and types in one place:
//! it generates the raw struct (every field optional, with its span), the
//! list of valid keys, and the reader that fills the struct and warns about
//! unknown keys.

/// Declare a raw section struct: `raw_section!(Name { key: Type, ... })`.
macro_rules! raw_section {
    ($(#[$meta:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default, Clone, PartialEq)]
        pub(crate) struct $name {
            $(pub $field: Option<$crate::raw::value::Spanned<$ty>>,)*
            /// Where the table was declared (its key), for messages.
            pub span: Option<std::ops::Range<usize>>,
        }

        impl $name {
            /// Every key this table accepts.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Read `table` (named `section` in messages); unknown keys
            /// become warnings.
            pub fn read(
                src: &$crate::source::SourceText<'_>,
                section: &str,
                table: &dyn toml_edit::TableLike,
                span: Option<std::ops::Range<usize>>,
                warnings: &mut Vec<$crate::model::ConfigWarning>,
            ) -> Result<Self, $crate::error::ConfigError> {
                let mut out = Self { span, ..Self::default() };
                for (key, item) in table.iter() {
                    let dotted = format!("{section}.{key}");
                    match key {
                        $(stringify!($field) => {
                            out.$field = Some($crate::raw::value::read::<$ty>(src, &dotted, item)?);
                        })*
                        _ => {
                            let key_span = table.key(key).and_then(|k| k.span());
                            warnings.push($crate::raw::unknown::unknown_key_warning(
                                src, section, key, key_span, Self::KEYS,
                            ));
                        }
                    }
                }
                Ok(out)
            }
        }
    };
}

pub(crate) use raw_section;

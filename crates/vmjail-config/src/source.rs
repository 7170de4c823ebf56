//! The text being loaded and where it came from: turns byte spans into
//! `file:line:column` for errors and warnings.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::model::ConfigSource;

/// The configuration text plus its origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceText<'a> {
    pub text: &'a str,
    pub origin: &'a ConfigSource,
}

impl<'a> SourceText<'a> {
    /// The name used in messages: the file's path or `<embedded default>`.
    pub fn name(&self) -> String {
        origin_name(self.origin)
    }

    /// Directory relative paths in the file are resolved against: the
    /// file's own directory; for the embedded default, the current
    /// directory (the embedded default only uses absolute paths).
    pub fn base_dir(&self) -> PathBuf {
        match self.origin {
            ConfigSource::File(path) => path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/")),
            ConfigSource::Embedded => PathBuf::from("."),
        }
    }

    /// `file:line:column` (1-based) of a byte offset, or just the file
    /// name when there is no span.
    pub fn at(&self, span: Option<Range<usize>>) -> String {
        match span {
            Some(span) => {
                let (line, column) = line_column(self.text, span.start);
                format!("{}:{line}:{column}", self.name())
            }
            None => self.name(),
        }
    }
}

/// The name of a configuration source in messages.
pub fn origin_name(origin: &ConfigSource) -> String {
    match origin {
        ConfigSource::File(path) => path.display().to_string(),
        ConfigSource::Embedded => "<embedded default>".to_string(),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    // Step back to a char boundary so slicing cannot panic on odd spans.
    let mut end = offset;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_table() {
        let text = "a = 1\nbb = \"é\"\n\nx";
        let cases = [
            (0, (1, 1)),
            (4, (1, 5)),
            (6, (2, 1)),
            (11, (2, 6)),
            (12, (2, 7)),
            (13, (2, 7)), // inside the two-byte 'é': clamps to its start
            (text.len(), (4, 2)),
            (usize::MAX, (4, 2)),
        ];
        for (offset, want) in cases {
            assert_eq!(line_column(text, offset), want, "offset {offset}");
        }
    }
}

//! The assembler's working state and helpers: reading optional raw
//! values, locating messages, resolving paths, choosing and size-checking
//! the root filesystem.

use std::ops::Range;
use std::path::PathBuf;

use crate::error::ConfigError;
use crate::model::{ConfigWarning, HypervisorKind};
use crate::raw::value::Spanned;
use crate::raw::RawHypervisor;
use crate::resolve::{embedded_hint, resolve_file, resolve_key};
use crate::rules::assets::{self, Asset, ChoiceError, RootFs, SizeVerdict};
use crate::source::SourceText;

pub(super) fn val<T>(field: &Option<Spanned<T>>) -> Option<&T> {
    field.as_ref().map(|s| &s.value)
}

pub(super) fn span<T>(field: &Option<Spanned<T>>) -> Option<Range<usize>> {
    field.as_ref().and_then(|s| s.span.clone())
}

/// A string key, treating an empty string as unset (Kata's convention).
pub(super) fn non_empty(field: &Option<Spanned<String>>) -> Option<&str> {
    val(field).map(String::as_str).filter(|s| !s.is_empty())
}

pub(super) fn flag(field: &Option<Spanned<bool>>) -> bool {
    val(field).copied().unwrap_or(false)
}

pub(super) struct Assembler<'a, 'w> {
    pub src: &'a SourceText<'a>,
    /// The caller's: warnings stay there when assembling then fails.
    pub warnings: &'w mut Vec<ConfigWarning>,
}

impl<'a> Assembler<'a, '_> {
    /// Where a key was written, else where its table was.
    pub(super) fn at<T>(&self, field: &Option<Spanned<T>>, table: &Option<Range<usize>>) -> String {
        self.src.at(span(field).or_else(|| table.clone()))
    }

    pub(super) fn warn(&mut self, location: String, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            location: Some(location),
            message: message.into(),
        });
    }

    pub(super) fn invalid(
        &self,
        key: &str,
        field: &Option<Spanned<String>>,
        table: &Option<Range<usize>>,
        valid: &str,
    ) -> ConfigError {
        ConfigError::InvalidValue {
            location: self.at(field, table),
            key: key.to_string(),
            value: val(field).cloned().unwrap_or_default(),
            valid: valid.to_string(),
        }
    }

    /// Resolve a path key, or `default` when the key is empty/unset.
    pub(super) fn path(
        &self,
        section: &str,
        key: &str,
        field: &Option<Spanned<String>>,
        default: &str,
    ) -> Result<PathBuf, ConfigError> {
        let raw = non_empty(field).unwrap_or(default);
        resolve_key(self.src, &format!("{section}.{key}"), raw, span(field))
    }

    /// Resolve an optional path key: `None` when empty/unset.
    pub(super) fn optional_path(
        &self,
        section: &str,
        key: &str,
        field: &Option<Spanned<String>>,
    ) -> Result<Option<PathBuf>, ConfigError> {
        non_empty(field)
            .map(|raw| resolve_key(self.src, &format!("{section}.{key}"), raw, span(field)))
            .transpose()
    }

    /// `initrd`/`image`: a set path that does not resolve counts as unset.
    pub(super) fn asset(&self, field: &Option<Spanned<String>>) -> Asset {
        match non_empty(field) {
            None => Asset::Unset,
            Some(raw) => match resolve_file(&self.src.base_dir(), raw) {
                Ok(path) => Asset::Found(path),
                Err(e) => Asset::Missing {
                    path: raw.to_string(),
                    reason: e.to_string(),
                },
            },
        }
    }

    pub(super) fn root_fs(
        &mut self,
        section: &str,
        kind: HypervisorKind,
        h: &RawHypervisor,
    ) -> Result<RootFs, ConfigError> {
        let initrd = self.asset(&h.initrd);
        let image = self.asset(&h.image);
        if kind == HypervisorKind::Acrn {
            if initrd != Asset::Unset {
                self.warn(
                    self.at(&h.initrd, &h.span),
                    format!("{section}.initrd is ignored: ACRN boots from image only"),
                );
            }
            return match image {
                Asset::Found(path) => Ok(RootFs::Image(path)),
                other => Err(ConfigError::AcrnNeedsImage {
                    location: self.at(&h.image, &h.span),
                    image: other.describe(),
                }),
            };
        }
        let chosen = assets::choose(&initrd, &image).map_err(|e| match e {
            ChoiceError::Both { initrd, image } => ConfigError::BothInitrdAndImage {
                location: self.at(&h.image, &h.span),
                initrd,
                image,
            },
            ChoiceError::Neither => ConfigError::NoInitrdOrImage {
                location: self
                    .src
                    .at(span(&h.initrd).or(span(&h.image)).or(h.span.clone())),
                initrd: initrd.describe(),
                image: image.describe(),
                hint: embedded_hint(self.src.origin),
            },
        })?;
        // Report the one that was set but missing, which Kata silently skips.
        for (key, asset, field) in [("initrd", &initrd, &h.initrd), ("image", &image, &h.image)] {
            if let Asset::Missing { .. } = asset {
                self.warn(
                    self.at(field, &h.span),
                    format!(
                        "{section}.{key} = {} does not exist and is treated as unset",
                        asset.describe()
                    ),
                );
            }
        }
        Ok(chosen)
    }

    /// Kata's size checks on the chosen initrd/image.
    pub(super) fn check_root_fs_size(
        &mut self,
        section: &str,
        h: &RawHypervisor,
        root: &RootFs,
        memory_mib: u32,
    ) -> Result<(), ConfigError> {
        let (key, path, field, is_initrd) = match root {
            RootFs::Initrd(p) => ("initrd", p, &h.initrd, true),
            RootFs::Image(p) => ("image", p, &h.image, false),
        };
        let location = self.at(field, &h.span);
        let size = std::fs::metadata(path)
            .map_err(|cause| ConfigError::AssetStat {
                location: location.clone(),
                key,
                path: path.clone(),
                cause,
            })?
            .len();
        match assets::check_size(is_initrd, size, memory_mib) {
            SizeVerdict::Fine => Ok(()),
            SizeVerdict::Empty => Err(ConfigError::EmptyAsset {
                location,
                key,
                path: path.clone(),
            }),
            SizeVerdict::InitrdTooLarge { size_mib } => Err(ConfigError::InitrdTooLarge {
                location,
                path: path.clone(),
                size_mib,
                memory_mib,
            }),
            SizeVerdict::ImageLarge { size_mib } => {
                self.warn(
                    location,
                    format!("{section}.image {} ({size_mib} MiB) is not smaller than VM memory ({memory_mib} MiB)", path.display()),
                );
                Ok(())
            }
        }
    }
}

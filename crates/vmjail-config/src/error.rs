//! Everything that stops a configuration from loading. One variant per
//! failing step; every message names the file (with line:column where the
//! problem has a place in the file), the key and what would be valid.
//! I/O causes are part of the message (field `cause`), not a `source()`,
//! so a report that walks the chain does not repeat them.

use std::path::PathBuf;

use crate::model::ConfigWarning;

/// A configuration that did not load, with the warnings found on the way:
/// a misspelt key (`kernal`) is often why a later step fails, so callers
/// show `warnings` before `error`.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct LoadError {
    // Boxed: `ConfigError` is large and this is the `Err` of every load.
    pub error: Box<ConfigError>,
    pub warnings: Vec<ConfigWarning>,
}

impl From<ConfigError> for LoadError {
    /// A failure before any key was read (discovery, reading the file).
    fn from(error: ConfigError) -> Self {
        LoadError {
            error: Box::new(error),
            warnings: Vec::new(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },

    /// The configuration file is not a regular file or is implausibly large.
    #[error("configuration file {path} {problem}")]
    NotAConfigFile { path: PathBuf, problem: String },

    /// The explicit/environment-named configuration file does not resolve.
    #[error("configuration file {path} (from {origin}) cannot be resolved: {cause}")]
    ConfigPath {
        path: PathBuf,
        origin: &'static str,
        cause: std::io::Error,
    },

    /// The text is not valid TOML.
    #[error("{location}: TOML syntax error: {message}")]
    Syntax { location: String, message: String },

    /// A key holds a value of the wrong type.
    #[error("{location}: {key} must be {expected}, found {found}")]
    WrongType {
        location: String,
        key: String,
        expected: &'static str,
        found: String,
    },

    /// A key holds a value outside its allowed set or range.
    #[error("{location}: {key} = {value:?} is not valid; {valid}")]
    InvalidValue {
        location: String,
        key: String,
        value: String,
        valid: String,
    },

    /// `[hypervisor.<x>]`, `[proxy.<x>]`, `[shim.<x>]` or `[agent.<x>]`
    /// names a type vmjail does not know.
    #[error("{location}: unknown {component} type {name:?}; valid: {valid}")]
    UnknownComponentType {
        location: String,
        component: &'static str,
        name: String,
        valid: &'static str,
    },

    /// More than one `[hypervisor.*]` table (Kata silently picks one).
    #[error("{file}: more than one hypervisor table ({names}); keep exactly one of [hypervisor.firecracker], [hypervisor.qemu], [hypervisor.acrn]")]
    MultipleHypervisors { file: String, names: String },

    /// No `[hypervisor.*]` table at all.
    #[error("{file}: no hypervisor table; add one of [hypervisor.firecracker], [hypervisor.qemu], [hypervisor.acrn]")]
    NoHypervisor { file: String },

    /// A path key does not resolve to an existing file.
    #[error("{location}: {key} = {path:?} cannot be resolved: {cause}{hint}")]
    PathResolve {
        location: String,
        key: String,
        path: PathBuf,
        cause: std::io::Error,
        /// Extra advice (e.g. how to install the embedded default's assets).
        hint: String,
    },

    /// Both `initrd` and `image` resolve.
    #[error("{location}: both initrd ({initrd}) and image ({image}) are set; set exactly one")]
    BothInitrdAndImage {
        location: String,
        initrd: PathBuf,
        image: PathBuf,
    },

    /// Neither `initrd` nor `image` names an existing file.
    #[error("{location}: either initrd or image must be set to an existing file (initrd: {initrd}; image: {image}){hint}")]
    NoInitrdOrImage {
        location: String,
        initrd: String,
        image: String,
        hint: String,
    },

    /// ACRN boots only from an image.
    #[error("{location}: hypervisor.acrn needs image set to an existing file ({image}); ACRN cannot boot an initrd")]
    AcrnNeedsImage { location: String, image: String },

    /// `shared_fs = "virtio-fs"` without `virtio_fs_daemon`.
    #[error(
        "{location}: shared_fs = \"virtio-fs\" needs virtio_fs_daemon set to the virtiofsd binary"
    )]
    VirtioFsNeedsDaemon { location: String },

    /// `default_memory` resolved to zero.
    #[error("{location}: VM memory cannot be zero; set default_memory (MiB, >= 8)")]
    ZeroMemory { location: String },

    /// The initrd/image file is empty.
    #[error("{location}: {key} {path} is empty")]
    EmptyAsset {
        location: String,
        key: &'static str,
        path: PathBuf,
    },

    /// The file's size could not be read.
    #[error("{location}: cannot stat {key} {path}: {cause}")]
    AssetStat {
        location: String,
        key: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },

    /// An initrd must fit into guest memory.
    #[error("{location}: VM memory ({memory_mib} MiB) is not larger than initrd {path} ({size_mib} MiB); raise default_memory")]
    InitrdTooLarge {
        location: String,
        path: PathBuf,
        size_mib: u64,
        memory_mib: u32,
    },

    /// A kernel parameter with an empty name (`=value`).
    #[error("{location}: kernel_params contains {param:?}, a parameter with an empty name")]
    EmptyKernelParam { location: String, param: String },

    /// A model the hypervisor cannot use (Firecracker and macvtap).
    #[error("{location}: runtime.internetworking_model = {model:?} cannot be used with hypervisor.{hypervisor}: it opens taps by name and cannot take a macvtap's device; use \"tcfilter\" (or \"bridged\", \"none\")")]
    ModelUnsupported {
        location: String,
        model: String,
        hypervisor: &'static str,
    },

    /// `disable_new_netns` together with `enable_netmon`.
    #[error(
        "{location}: runtime.disable_new_netns conflicts with netmon.enable_netmon; disable one"
    )]
    NetnsConflictsNetmon { location: String },

    /// `disable_new_netns` with a model other than `none`.
    #[error("{location}: runtime.disable_new_netns only works with internetworking_model = \"none\" (found {model:?})")]
    NetnsNeedsNoneModel { location: String, model: String },

    /// Shim tracing without `disable_new_netns`.
    #[error("{location}: shim tracing (shim.kata.enable_tracing) requires runtime.disable_new_netns = true so the shim can reach the Jaeger agent")]
    ShimTracingNeedsHostNetns { location: String },

    /// `enable_template` without an initrd.
    #[error(
        "{location}: factory.enable_template requires an initrd (the hypervisor uses an image)"
    )]
    TemplateNeedsInitrd { location: String },

    /// `vm_cache_number > 0` with a hypervisor other than QEMU.
    #[error("{location}: factory.vm_cache_number > 0 is only supported with hypervisor.qemu (this file uses {hypervisor})")]
    VmCacheNeedsQemu {
        location: String,
        hypervisor: &'static str,
    },

    /// An `experimental` name no feature answers to.
    #[error("{location}: unsupported experimental feature {name:?}; known features: {known}")]
    UnknownExperimental {
        location: String,
        name: String,
        known: String,
    },

    /// A `[jail]` setting that would make the jail unsafe or unusable.
    #[error("{location}: jail.{key}: {message}")]
    Jail {
        location: String,
        key: &'static str,
        message: String,
    },
}

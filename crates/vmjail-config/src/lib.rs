//! Kata-compatible `configuration.toml` → a validated [`RuntimeConfig`].
//!
//! The public shape of the resolved configuration lives in [`model`]; the
//! loader, defaults and validation rules fill it in.

pub mod model;

pub use model::*;

//! Shared by the Firecracker tests and benchmark: the spec validator and the
//! API double (for logic tests only).
#![allow(dead_code)]

pub mod api_double;
pub mod config;
pub mod host;
pub mod lifecycle;
pub mod logs;
pub mod spec;

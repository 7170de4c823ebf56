//! Kata's rules (and vmjail's `[jail]` rules), one module each, each with
//! its table-driven test. The loader in `assemble` applies them in order.

pub mod accelerators;
pub mod agent_trace;
pub mod assets;
pub mod block_driver;
pub mod bridges;
pub mod experimental;
pub mod factory;
pub mod internetworking;
pub mod jail;
pub mod kernel_params;
pub mod memory;
pub mod msize;
pub mod netns;
pub mod shared_fs;
pub mod vcpus;
pub mod vsock;

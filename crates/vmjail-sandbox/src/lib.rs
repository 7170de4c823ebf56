//! Sandbox lifecycle and the on-disk state store (being built).

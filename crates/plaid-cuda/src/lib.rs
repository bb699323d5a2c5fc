//! CUDA backend for plaid.
//!
//! This crate is a placeholder: it is outside the workspace's default members so
//! that nothing in a normal build needs CUDA. The GPU kernels (index building and
//! batched search on cudarc) will implement `plaid-search`'s backend interface here.
//!
//! Application authors should use the `plaid` facade with its `cuda` feature once
//! that feature exists.
#![forbid(unsafe_code)]

/// Whether this build of `plaid-cuda` contains any GPU kernels (it does not yet).
pub const HAS_KERNELS: bool = false;

/// The CPU search crate this backend will plug into, re-exported for version matching.
pub use plaid_search;

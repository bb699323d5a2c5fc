//! CUDA backend for plaid: GPU k-means, residual encoding and batched PLAID
//! search.
//!
//! Nothing CUDA is needed to build this crate: the driver, NVRTC and cuBLAS
//! libraries are loaded at run time (cudarc's dynamic loading, pinned to the
//! CUDA 13.0 bindings), and the kernels in `src/kernels/plaid.cu` are
//! compiled by NVRTC when a [`Device`] is opened. On a machine without a GPU,
//! [`available`] and [`Device::open`] return [`Unavailable`] instead of
//! panicking, so callers can fall back to the CPU.
//!
//! Application authors should use the `plaid` facade with its `cuda` feature
//! (`--device cuda|auto` in the CLI). Use this crate directly to run single
//! steps on the GPU:
//! - [`Device::nearest_by_dot`] / [`Device::nearest_by_l2`]: assignment by an
//!   f16 GEMM (cuBLAS, f32 output) and an argmax kernel that rescores the two
//!   best centroids in f32; [`GpuAssigner`] plugs it into
//!   [`plaid_kmeans::fit_with`].
//! - [`Device::compress`]: codes and packed residuals, byte-compatible with
//!   [`plaid_codec::Codebook::compress`].
//! - [`GpuIndex`]: a searchable copy of an index's segments on the device,
//!   with batched PLAID search and an exhaustive MaxSim mode.
//!
//! # Agreement with the CPU path
//! Codes equal the CPU's except on near-ties: the two best centroids by the
//! f16 GEMM are rescored in f32, so a code differs only when the CPU's best
//! is not among the f16 top two or the f32 rescoring of two centroids is
//! within rounding of a tie. Search runs the CPU's stages with the CPU's
//! rules: the same probing rule (ranked lists up to 256 deep, where the CPU
//! could go deeper for queries of many near-identical tokens), the same
//! inverted lists, the same 8-bit approximate scores (levels from the same
//! affine map, rounded the same way), the same number of exactly scored
//! documents and the same ties. Results differ only where GPU and CPU
//! rounding of a score differs (cuBLAS against faer GEMMs, f32 sums in
//! another order).
//!
//! # Crate features
//! None.

mod assign;
mod device;
mod encode;
mod error;
mod ffi;
mod search;

#[cfg(test)]
mod gpu_tests;

pub use assign::GpuAssigner;
pub use device::{Device, DeviceInfo, available, compile_kernels};
pub use error::{Error, Unavailable};
pub use search::{GpuIndex, GpuSearchProfile, MAX_DIM, MAX_QUERY_TOKENS};

//! Skip rules shared by the GPU tests.
//!
//! A test that needs a GPU (or NVRTC) reports one skip (see `skip.rs`) and
//! returns when none is there; `cargo xtask ci` counts them. With
//! `PLAID_CUDA_REQUIRE=1` (set by the GPU machine's script) a missing device
//! fails the test instead, so a broken setup there cannot pass silently.
#![allow(dead_code, clippy::print_stderr)]

use plaid_cuda::Device;

mod skip;

fn required() -> bool {
    std::env::var_os("PLAID_CUDA_REQUIRE").is_some_and(|v| v == "1")
}

/// The device, or `None` after printing why the test is skipped.
pub(crate) fn device_or_skip(test: &str) -> Option<Device> {
    match Device::open() {
        Ok(d) => Some(d),
        Err(e) => {
            assert!(!required(), "{test}: PLAID_CUDA_REQUIRE=1 but no GPU: {e}");
            skip::report(test, &format_args!("no CUDA device: {e}"));
            None
        }
    }
}

/// Whether NVRTC can be loaded (printing a skip line when not).
pub(crate) fn nvrtc_or_skip(test: &str) -> bool {
    match plaid_cuda::compile_kernels("compute_75") {
        Err(plaid_cuda::Error::Unavailable(e)) => {
            assert!(!required(), "{test}: PLAID_CUDA_REQUIRE=1 but {e}");
            skip::report(test, &e);
            false
        }
        _ => true,
    }
}

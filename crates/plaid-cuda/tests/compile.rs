//! The kernel source compiles under NVRTC (needs only libnvrtc, no GPU).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

#[test]
fn kernels_compile_for_hopper_and_the_oldest_target() {
    if !common::nvrtc_or_skip("kernels_compile_for_hopper_and_the_oldest_target") {
        return;
    }
    for arch in ["sm_90", "compute_75"] {
        let ptx = plaid_cuda::compile_kernels(arch)
            .unwrap_or_else(|e| panic!("{arch}: {e}"))
            .to_src();
        for entry in [
            "f32_to_f16",
            "argmax_refine",
            "encode_pack",
            "topd_1",
            "topd_2",
            "topd_4",
            "topd_8",
            "score_range",
            "approx_scores",
            "exact_scores",
        ] {
            assert!(
                ptx.contains(&format!(".entry {entry}(")),
                "{arch}: PTX lacks entry {entry}"
            );
        }
    }
}

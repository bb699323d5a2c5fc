//! Every `unsafe` call of the crate: library presence checks, cuBLAS GEMMs
//! and kernel launches, each behind a typed wrapper that mirrors the kernel's
//! C signature exactly (cudarc does not check kernel arguments).
#![allow(unsafe_code)]

use std::sync::Arc;

use cudarc::cublas::{CudaBlas, sys as blas_sys};
use cudarc::driver::{
    CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceRepr, LaunchConfig,
    PushKernelArg,
};

use crate::error::{Error, drv};

/// Whether the driver, NVRTC and cuBLAS libraries can be loaded.
pub(crate) fn libraries_present() -> (bool, bool, bool) {
    // SAFETY: each call only tries to dlopen the library under its known
    // names and drops the handle; no symbol is called.
    unsafe {
        (
            cudarc::driver::sys::is_culib_present(),
            cudarc::nvrtc::sys::is_culib_present(),
            cudarc::cublas::sys::is_culib_present(),
        )
    }
}

/// Versions: (driver API, NVRTC major, NVRTC minor).
pub(crate) fn versions() -> (i32, i32, i32) {
    let (mut drv_v, mut maj, mut min) = (0i32, 0i32, 0i32);
    // SAFETY: both calls write into the given plain integers; the libraries
    // were checked to be present when the device was opened.
    unsafe {
        let _ = cudarc::driver::sys::cuDriverGetVersion(&mut drv_v);
        let _ = cudarc::nvrtc::sys::nvrtcVersion(&mut maj, &mut min);
    }
    (drv_v, maj, min)
}

/// An uninitialised device buffer of `n` elements, for outputs that a kernel
/// or GEMM overwrites completely before anything reads them.
pub(crate) fn alloc_out<T: DeviceRepr>(
    stream: &Arc<CudaStream>,
    n: usize,
) -> Result<CudaSlice<T>, Error> {
    // SAFETY: callers only pass buffers whose every element the next kernel
    // writes; nothing reads them before that.
    drv("alloc", unsafe { stream.alloc::<T>(n.max(1)) })
}

/// Row-major `out[m][n] = a[m][kk] · b[n][kk]ᵀ` with f16 (`u16` bits) or f32
/// inputs and f32 output, f32 accumulation (no TF32).
#[allow(clippy::too_many_arguments)]
fn gemm_rows<T>(
    blas: &CudaBlas,
    stream: &Arc<CudaStream>,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    out: &mut CudaSlice<f32>,
    m: usize,
    n: usize,
    kk: usize,
    ty: blas_sys::cudaDataType,
    op: &'static str,
) -> Result<(), Error> {
    let need = |what, have: usize, want: usize| {
        if have < want {
            Err(Error::Shape {
                what,
                expected: want,
                found: have,
            })
        } else {
            Ok(())
        }
    };
    need("gemm a", a.len(), m * kk)?;
    need("gemm b", b.len(), n * kk)?;
    need("gemm out", out.len(), m * n)?;
    let to_i32 = |what, v: usize| {
        i32::try_from(v).map_err(|_| Error::TooLarge {
            what,
            value: v,
            limit: i32::MAX as usize,
        })
    };
    let (mi, ni, ki) = (
        to_i32("gemm m", m)?,
        to_i32("gemm n", n)?,
        to_i32("gemm k", kk)?,
    );
    let (alpha, beta) = (1.0f32, 0.0f32);
    let (a_p, _ra) = a.device_ptr(stream);
    let (b_p, _rb) = b.device_ptr(stream);
    let (o_p, _ro) = out.device_ptr_mut(stream);
    // Column-major view: outᵀ (n × m, ld n) = b (kk × n)ᵀ · a (kk × m).
    // SAFETY: the three buffers hold at least m·kk, n·kk and m·n elements
    // of the types named (checked above); the pointers stay valid while the
    // guards `_ra`, `_rb`, `_ro` live, which is past the call; alpha and beta
    // are f32 as CUBLAS_COMPUTE_32F requires.
    unsafe {
        cudarc::cublas::result::gemm_ex(
            *blas.handle(),
            blas_sys::cublasOperation_t::CUBLAS_OP_T,
            blas_sys::cublasOperation_t::CUBLAS_OP_N,
            ni,
            mi,
            ki,
            (&alpha as *const f32).cast(),
            b_p as *const _,
            ty,
            ki,
            a_p as *const _,
            ty,
            ki,
            (&beta as *const f32).cast(),
            o_p as *mut _,
            blas_sys::cudaDataType_t::CUDA_R_32F,
            ni,
            blas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            blas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
    }
    .map_err(|source| Error::Cublas { op, source })
}

/// `out[r][c] = x[r] · cent[c]` for f16 rows (`u16` bits), f32 output.
#[allow(clippy::too_many_arguments)] // mirrors the call's C signature
pub(crate) fn gemm_f16(
    blas: &CudaBlas,
    stream: &Arc<CudaStream>,
    x: &CudaSlice<u16>,
    cent: &CudaSlice<u16>,
    out: &mut CudaSlice<f32>,
    rows: usize,
    k: usize,
    dim: usize,
) -> Result<(), Error> {
    gemm_rows(
        blas,
        stream,
        x,
        cent,
        out,
        rows,
        k,
        dim,
        blas_sys::cudaDataType_t::CUDA_R_16F,
        "assignment GEMM",
    )
}

/// `out[c][r] = cent[c] · q[r]` in f32: centroid-major scores with rows of
/// `nrows` (one column per query token).
#[allow(clippy::too_many_arguments)] // mirrors the call's C signature
pub(crate) fn gemm_centroid_scores(
    blas: &CudaBlas,
    stream: &Arc<CudaStream>,
    q: &CudaSlice<f32>,
    cent: &CudaSlice<f32>,
    out: &mut CudaSlice<f32>,
    nrows: usize,
    k: usize,
    dim: usize,
) -> Result<(), Error> {
    gemm_rows(
        blas,
        stream,
        cent,
        q,
        out,
        k,
        nrows,
        dim,
        blas_sys::cudaDataType_t::CUDA_R_32F,
        "centroid-score GEMM",
    )
}

/// Launches `f` with the given arguments already pushed by `push`.
fn launch<'a>(
    stream: &'a Arc<CudaStream>,
    f: &'a CudaFunction,
    cfg: LaunchConfig,
    push: impl FnOnce(&mut cudarc::driver::LaunchArgs<'a>),
) -> Result<(), Error> {
    let mut b = stream.launch_builder(f);
    push(&mut b);
    // SAFETY: every caller pushes exactly the arguments of the kernel's C
    // signature, in order and with the same types (see each wrapper), and
    // sizes the grid so that the kernel's own bounds checks keep every
    // access inside the buffers it was given.
    drv("kernel launch", unsafe { b.launch(cfg) }.map(|_| ()))
}

fn grid_for(threads: u64, block: u32) -> u32 {
    let blocks = threads.div_ceil(u64::from(block)).max(1);
    // Grid-stride kernels accept any grid; others are sized below this.
    u32::try_from(blocks.min(1 << 30)).unwrap_or(1 << 30)
}

/// `f32_to_f16(unsigned short* out, const float* in, unsigned long long n)`.
pub(crate) fn f32_to_f16(
    stream: &Arc<CudaStream>,
    f: &CudaFunction,
    out: &mut CudaSlice<u16>,
    input: &CudaSlice<f32>,
    n: usize,
) -> Result<(), Error> {
    if out.len() < n || input.len() < n {
        return Err(Error::Shape {
            what: "f32_to_f16 buffers",
            expected: n,
            found: out.len().min(input.len()),
        });
    }
    let n64 = n as u64;
    let cfg = LaunchConfig {
        grid_dim: (grid_for(n64, 256).min(65_535 * 16), 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    launch(stream, f, cfg, |b| {
        b.arg(out).arg(input).arg(&n64);
    })
}

/// Arguments of `argmax_refine`.
pub(crate) struct ArgmaxArgs<'a> {
    pub(crate) scores: &'a CudaSlice<f32>,
    pub(crate) bias: &'a CudaSlice<f32>,
    pub(crate) use_bias: bool,
    pub(crate) x: &'a CudaSlice<f32>,
    pub(crate) cent: &'a CudaSlice<f32>,
    pub(crate) rows: i32,
    pub(crate) k: i32,
    pub(crate) dim: i32,
}

/// `argmax_refine(unsigned* out, const float* scores, const float* bias, int use_bias,
/// const float* x, const float* cent, int rows, int k, int dim)`; one warp per row.
pub(crate) fn argmax_refine(
    stream: &Arc<CudaStream>,
    f: &CudaFunction,
    out: &mut CudaSlice<u32>,
    a: &ArgmaxArgs<'_>,
) -> Result<(), Error> {
    let (rows, k, dim) = (a.rows as usize, a.k as usize, a.dim as usize);
    if out.len() < rows
        || a.scores.len() < rows * k
        || a.x.len() < rows * dim
        || a.cent.len() < k * dim
        || (a.use_bias && a.bias.len() < k)
    {
        return Err(Error::Shape {
            what: "argmax_refine buffers",
            expected: rows * k,
            found: a.scores.len(),
        });
    }
    let cfg = LaunchConfig {
        grid_dim: (grid_for(rows as u64 * 32, 256), 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let use_bias = i32::from(a.use_bias);
    launch(stream, f, cfg, |b| {
        b.arg(out)
            .arg(a.scores)
            .arg(a.bias)
            .arg(&use_bias)
            .arg(a.x)
            .arg(a.cent)
            .arg(&a.rows)
            .arg(&a.k)
            .arg(&a.dim);
    })
}

/// Arguments of `encode_pack`.
pub(crate) struct EncodeArgs<'a> {
    pub(crate) x: &'a CudaSlice<f32>,
    pub(crate) codes: &'a CudaSlice<u32>,
    pub(crate) cent: &'a CudaSlice<f32>,
    pub(crate) cutoffs: &'a CudaSlice<f32>,
    pub(crate) rows: i32,
    pub(crate) dim: i32,
    pub(crate) bits: i32,
    pub(crate) packed_len: i32,
}

/// `encode_pack(unsigned char* out, const float* x, const unsigned* codes,
/// const float* cent, const float* cutoffs, int rows, int dim, int bits, int packed_len)`.
/// The codes must name rows of `cent` (checked by the caller).
pub(crate) fn encode_pack(
    stream: &Arc<CudaStream>,
    f: &CudaFunction,
    out: &mut CudaSlice<u8>,
    a: &EncodeArgs<'_>,
) -> Result<(), Error> {
    let (rows, dim, plen) = (a.rows as usize, a.dim as usize, a.packed_len as usize);
    let nc = (1usize << a.bits) - 1;
    if out.len() < rows * plen
        || a.x.len() < rows * dim
        || a.codes.len() < rows
        || a.cutoffs.len() < dim * nc
        || plen * 8 != dim * a.bits as usize
    {
        return Err(Error::Shape {
            what: "encode_pack buffers",
            expected: rows * plen,
            found: out.len(),
        });
    }
    let cfg = LaunchConfig {
        grid_dim: (grid_for((rows * plen) as u64, 256).min(65_535 * 16), 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    launch(stream, f, cfg, |b| {
        b.arg(out)
            .arg(a.x)
            .arg(a.codes)
            .arg(a.cent)
            .arg(a.cutoffs)
            .arg(&a.rows)
            .arg(&a.dim)
            .arg(&a.bits)
            .arg(&a.packed_len);
    })
}

/// `topd_E(unsigned* out, const float* S, int ld, int k, const int* nq)`:
/// one block of 1024 threads per query; `out` holds `queries × 32 × 32E` ids.
#[allow(clippy::too_many_arguments)] // mirrors the call's C signature
pub(crate) fn topd(
    stream: &Arc<CudaStream>,
    f: &CudaFunction,
    depth: usize,
    out: &mut CudaSlice<u32>,
    s: &CudaSlice<f32>,
    queries: usize,
    k: usize,
    nq: &CudaSlice<i32>,
) -> Result<(), Error> {
    let ld = 32 * queries;
    if out.len() < queries * 32 * depth || s.len() < k * ld || nq.len() < queries {
        return Err(Error::Shape {
            what: "topd buffers",
            expected: k * ld,
            found: s.len(),
        });
    }
    let cfg = LaunchConfig {
        grid_dim: (queries as u32, 1, 1),
        block_dim: (1024, 1, 1),
        shared_mem_bytes: 0,
    };
    let (ld_i, k_i) = (ld as i32, k as i32);
    launch(stream, f, cfg, |b| {
        b.arg(out).arg(s).arg(&ld_i).arg(&k_i).arg(nq);
    })
}

/// Arguments of `approx_scores`.
pub(crate) struct ApproxArgs<'a> {
    pub(crate) cand_doc: &'a CudaSlice<u32>,
    /// `n_queries + 1` ascending offsets into `cand_doc`, from 0 to `n_cand`.
    pub(crate) cand_off: &'a CudaSlice<u32>,
    pub(crate) n_queries: i32,
    pub(crate) n_cand: i32,
    pub(crate) s: &'a CudaSlice<f32>,
    pub(crate) ld: i32,
    pub(crate) codes: &'a CudaSlice<u32>,
    pub(crate) doc_off: &'a CudaSlice<u64>,
    pub(crate) nq: &'a CudaSlice<i32>,
    /// Per query `[lo, scale]` from `score_range`.
    pub(crate) range: &'a CudaSlice<f32>,
}

/// `approx_scores(float* out, const unsigned* cand_doc, const unsigned* cand_off,
/// int n_queries, int n_cand, const float* S, int ld, const unsigned* codes,
/// const unsigned long long* doc_off, const int* nq, const float* range)`; one warp
/// per candidate.
/// Candidate documents and queries were range-checked by the caller.
pub(crate) fn approx_scores(
    stream: &Arc<CudaStream>,
    f: &CudaFunction,
    out: &mut CudaSlice<f32>,
    a: &ApproxArgs<'_>,
) -> Result<(), Error> {
    let n = a.n_cand as usize;
    if out.len() < n || a.cand_doc.len() < n || a.cand_off.len() < a.n_queries as usize + 1 {
        return Err(Error::Shape {
            what: "approx_scores buffers",
            expected: n,
            found: out.len(),
        });
    }
    let cfg = LaunchConfig {
        grid_dim: (grid_for(n as u64 * 32, 256), 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    launch(stream, f, cfg, |b| {
        b.arg(out)
            .arg(a.cand_doc)
            .arg(a.cand_off)
            .arg(&a.n_queries)
            .arg(&a.n_cand)
            .arg(a.s)
            .arg(&a.ld)
            .arg(a.codes)
            .arg(a.doc_off)
            .arg(a.nq)
            .arg(a.range);
    })
}

/// `score_range(float* range, const float* S, int ld, int k, const int* nq)`: one
/// block of 256 threads per query; `range` holds `2 × queries` floats.
pub(crate) fn score_range(
    stream: &Arc<CudaStream>,
    f: &CudaFunction,
    range: &mut CudaSlice<f32>,
    s: &CudaSlice<f32>,
    queries: usize,
    k: usize,
    nq: &CudaSlice<i32>,
) -> Result<(), Error> {
    let ld = 32 * queries;
    if range.len() < 2 * queries || s.len() < k * ld || nq.len() < queries {
        return Err(Error::Shape {
            what: "score_range buffers",
            expected: k * ld,
            found: s.len(),
        });
    }
    let cfg = LaunchConfig {
        grid_dim: (queries as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let (ld_i, k_i) = (ld as i32, k as i32);
    launch(stream, f, cfg, |b| {
        b.arg(range).arg(s).arg(&ld_i).arg(&k_i).arg(nq);
    })
}

/// Arguments of `exact_scores`.
pub(crate) struct ExactArgs<'a> {
    pub(crate) docs: &'a CudaSlice<u32>,
    pub(crate) off: &'a CudaSlice<u32>,
    pub(crate) queries: usize,
    pub(crate) max_per_query: usize,
    pub(crate) q: &'a CudaSlice<f32>,
    pub(crate) nq: &'a CudaSlice<i32>,
    pub(crate) cent: &'a CudaSlice<f32>,
    pub(crate) codes: &'a CudaSlice<u32>,
    pub(crate) residuals: &'a CudaSlice<u8>,
    pub(crate) doc_off: &'a CudaSlice<u64>,
    pub(crate) weights: &'a CudaSlice<f32>,
    pub(crate) dim: i32,
    pub(crate) bits: i32,
}

/// Warps per block of `exact_scores` (its `EXACT_WARPS`).
pub(crate) const EXACT_WARPS: usize = 8;

/// `exact_scores(float* out, const unsigned* docs, const unsigned* off, const float* q,
/// const int* nq, const float* cent, const unsigned* codes, const unsigned char* residuals,
/// const unsigned long long* doc_off, const float* weights, int dim, int bits)`.
pub(crate) fn exact_scores(
    stream: &Arc<CudaStream>,
    f: &CudaFunction,
    out: &mut CudaSlice<f32>,
    a: &ExactArgs<'_>,
) -> Result<(), Error> {
    if out.len() < a.docs.len() || a.off.len() < a.queries + 1 || a.nq.len() < a.queries {
        return Err(Error::Shape {
            what: "exact_scores buffers",
            expected: a.docs.len(),
            found: out.len(),
        });
    }
    let blocks_x = a.max_per_query.div_ceil(EXACT_WARPS).clamp(1, 1 << 16) as u32;
    let cfg = LaunchConfig {
        grid_dim: (blocks_x, a.queries as u32, 1),
        block_dim: (32 * EXACT_WARPS as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    launch(stream, f, cfg, |b| {
        b.arg(out)
            .arg(a.docs)
            .arg(a.off)
            .arg(a.q)
            .arg(a.nq)
            .arg(a.cent)
            .arg(a.codes)
            .arg(a.residuals)
            .arg(a.doc_off)
            .arg(a.weights)
            .arg(&a.dim)
            .arg(&a.bits);
    })
}

//! Opening the GPU: library checks, context, stream, cuBLAS and the compiled kernels.

use std::sync::Arc;

use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaFunction, CudaStream};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};

use crate::error::{Error, Unavailable, drv};
use crate::ffi;

/// The kernel source, compiled by NVRTC when a device is opened.
pub(crate) const KERNEL_SOURCE: &str = include_str!("kernels/plaid.cu");

/// The compiled kernels.
#[derive(Debug)]
pub(crate) struct Kernels {
    pub(crate) f32_to_f16: CudaFunction,
    pub(crate) argmax_refine: CudaFunction,
    pub(crate) encode_pack: CudaFunction,
    /// `topd_1`, `topd_2`, `topd_4`, `topd_8`: lists of 32, 64, 128, 256.
    pub(crate) topd: [CudaFunction; 4],
    pub(crate) score_range: CudaFunction,
    pub(crate) approx_scores: CudaFunction,
    pub(crate) exact_scores: CudaFunction,
}

/// What the opened device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Marketing name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Device memory in bytes.
    pub total_memory: usize,
    /// Driver API version (e.g. 13000 for CUDA 13.0).
    pub driver_version: i32,
    /// NVRTC version (major, minor).
    pub nvrtc_version: (i32, i32),
}

/// One CUDA device with its stream, cuBLAS handle and compiled kernels.
///
/// Open it once and reuse it: opening compiles the kernels (tens to hundreds
/// of milliseconds). All work is queued on one stream; methods that return
/// host data wait for it.
#[derive(Debug)]
pub struct Device {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    pub(crate) blas: CudaBlas,
    pub(crate) kernels: Kernels,
    info: DeviceInfo,
}

/// Checks, without panicking, whether a CUDA device can be used: the driver,
/// NVRTC and cuBLAS libraries load and the driver reports a device.
///
/// # Errors
/// The first missing piece.
pub fn available() -> Result<(), Unavailable> {
    let (driver, nvrtc, cublas) = ffi::libraries_present();
    if !driver {
        return Err(Unavailable::DriverLibrary);
    }
    match CudaContext::device_count() {
        Ok(n) if n > 0 => {}
        Ok(_) => {
            return Err(Unavailable::NoDevice {
                reason: "the driver reports 0 devices".into(),
            });
        }
        Err(e) => {
            return Err(Unavailable::NoDevice {
                reason: e.to_string(),
            });
        }
    }
    if !nvrtc {
        return Err(Unavailable::Nvrtc);
    }
    if !cublas {
        return Err(Unavailable::Cublas);
    }
    Ok(())
}

/// Compiles the kernel source to PTX for `arch` (e.g. `"sm_90"`); needs only
/// NVRTC, not a device.
///
/// # Errors
/// [`Unavailable::Nvrtc`] when NVRTC cannot be loaded, [`Error::Compile`]
/// with the compiler's log when the source is refused.
pub fn compile_kernels(arch: &'static str) -> Result<cudarc::nvrtc::Ptx, Error> {
    if !ffi::libraries_present().1 {
        return Err(Unavailable::Nvrtc.into());
    }
    compile_ptx_with_opts(
        KERNEL_SOURCE,
        CompileOptions {
            arch: Some(arch),
            // Exact IEEE division and square root, no flush-to-zero, no
            // fused approximations beyond FMA: close to the CPU path.
            ftz: Some(false),
            prec_div: Some(true),
            prec_sqrt: Some(true),
            ..Default::default()
        },
    )
    .map_err(|e| Error::Compile {
        log: match e {
            cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                log.to_string_lossy().into_owned()
            }
            other => other.to_string(),
        },
    })
}

/// The PTX target for a compute capability: the device's own for the
/// architectures NVRTC 13 knows, else its oldest (`compute_75`).
fn arch_for(cc: (i32, i32)) -> &'static str {
    match cc {
        (9, 0) => "sm_90",
        (8, 9) => "sm_89",
        (8, 6) => "sm_86",
        (8, 0) => "sm_80",
        (10, 0) => "sm_100",
        (12, 0) => "sm_120",
        _ => "compute_75",
    }
}

impl Device {
    /// Opens device 0: checks the libraries, creates the context, stream and
    /// cuBLAS handle, and compiles the kernels.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when no device can be used (see [`available`]),
    /// [`Error::Compile`] or driver errors otherwise.
    pub fn open() -> Result<Device, Error> {
        available()?;
        let ctx = CudaContext::new(0).map_err(|e| Unavailable::NoDevice {
            reason: e.to_string(),
        })?;
        let cc = drv("compute capability", ctx.compute_capability())?;
        let name = drv("device name", ctx.name())?;
        let total_memory = drv("device memory", ctx.total_mem())?;
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(|source| Error::Cublas {
            op: "create handle",
            source,
        })?;
        let ptx = compile_kernels(arch_for(cc))?;
        let module = drv("load module", ctx.load_module(ptx))?;
        let f = |name: &'static str| drv("load function", module.load_function(name));
        let kernels = Kernels {
            f32_to_f16: f("f32_to_f16")?,
            argmax_refine: f("argmax_refine")?,
            encode_pack: f("encode_pack")?,
            topd: [f("topd_1")?, f("topd_2")?, f("topd_4")?, f("topd_8")?],
            score_range: f("score_range")?,
            approx_scores: f("approx_scores")?,
            exact_scores: f("exact_scores")?,
        };
        let (driver_version, nv_maj, nv_min) = ffi::versions();
        Ok(Device {
            ctx,
            stream,
            blas,
            kernels,
            info: DeviceInfo {
                name,
                compute_capability: cc,
                total_memory,
                driver_version,
                nvrtc_version: (nv_maj, nv_min),
            },
        })
    }

    /// What this device is.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Waits for all queued work.
    ///
    /// # Errors
    /// A driver error, including one recorded by an earlier asynchronous launch.
    pub fn synchronize(&self) -> Result<(), Error> {
        drv("synchronize", self.stream.synchronize())?;
        drv("check errors", self.ctx.check_err())
    }

    /// Binds the context to the calling thread (needed before raw cuBLAS
    /// calls from a thread other than the one that opened the device).
    pub(crate) fn bind(&self) -> Result<(), Error> {
        drv("bind context", self.ctx.bind_to_thread())
    }
}

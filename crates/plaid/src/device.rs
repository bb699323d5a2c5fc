//! Where index building runs: the CPU, or a CUDA GPU (with the `cuda` feature).

use crate::Error;

/// Where to run the heavy steps of an index build (k-means assignment and
/// encoding). The default is the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// On the CPU, on the current rayon pool.
    #[default]
    Cpu,
    /// On CUDA device 0. Fails with [`Error::DeviceUnavailable`] when this
    /// build lacks the `cuda` feature or no GPU can be used.
    Cuda,
    /// On CUDA device 0 when one can be used, else on the CPU.
    Auto,
}

impl std::str::FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            "auto" => Ok(Device::Auto),
            _ => Err(Error::UnknownDevice {
                name: s.to_string(),
            }),
        }
    }
}

/// The resolved backend of one operation.
#[derive(Debug)]
pub(crate) enum Backend {
    Cpu,
    #[cfg(feature = "cuda")]
    Cuda(Box<plaid_cuda::Device>),
}

impl Backend {
    /// Opens the device `device` asks for (falling back to the CPU for `Auto`).
    pub(crate) fn open(device: Device) -> Result<Backend, Error> {
        match device {
            Device::Cpu => Ok(Backend::Cpu),
            Device::Cuda => open_cuda(),
            Device::Auto => Ok(open_cuda().unwrap_or(Backend::Cpu)),
        }
    }

    /// Whether this is a GPU.
    #[cfg(feature = "cuda")]
    pub(crate) fn is_gpu(&self) -> bool {
        !matches!(self, Backend::Cpu)
    }
}

#[cfg(feature = "cuda")]
fn open_cuda() -> Result<Backend, Error> {
    match plaid_cuda::Device::open() {
        Ok(d) => Ok(Backend::Cuda(Box::new(d))),
        Err(plaid_cuda::Error::Unavailable(why)) => Err(Error::DeviceUnavailable {
            device: "cuda",
            reason: why.to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> Result<Backend, Error> {
    Err(Error::DeviceUnavailable {
        device: "cuda",
        reason: "this build of plaid lacks the `cuda` feature".into(),
    })
}

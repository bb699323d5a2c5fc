//! The crate's error types.

/// Why no CUDA device can be used. [`crate::available`] and [`crate::Device::open`] return this
/// instead of panicking, so callers can fall back to the CPU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// The driver library (`libcuda.so`) could not be loaded.
    #[error("the CUDA driver library (libcuda.so) could not be loaded")]
    DriverLibrary,
    /// The driver loaded but reported no usable device.
    #[error("no usable CUDA device: {reason}")]
    NoDevice {
        /// The driver's answer.
        reason: String,
    },
    /// The run-time compiler library (`libnvrtc.so`) could not be loaded.
    #[error("the CUDA run-time compiler library (libnvrtc.so) could not be loaded")]
    Nvrtc,
    /// The BLAS library (`libcublas.so`) could not be loaded.
    #[error("the cuBLAS library (libcublas.so) could not be loaded")]
    Cublas,
}

/// Errors of the GPU backend. Every variant names what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No device could be used.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// A driver call failed (allocation, copy, launch, synchronisation).
    #[error("CUDA driver call failed during {op}: {source}")]
    Driver {
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        source: cudarc::driver::DriverError,
    },
    /// A cuBLAS call failed.
    #[error("cuBLAS call failed during {op}: {source}")]
    Cublas {
        /// What was being done.
        op: &'static str,
        /// The library's error.
        source: cudarc::cublas::result::CublasError,
    },
    /// NVRTC refused the kernel source.
    #[error("NVRTC could not compile the kernels: {log}")]
    Compile {
        /// The compiler's log.
        log: String,
    },
    /// An input has the wrong shape.
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// The size it must have.
        expected: usize,
        /// The size it has.
        found: usize,
    },
    /// A size does not fit the kernels' 32-bit indices (or their limits).
    #[error("{what} = {value} exceeds the GPU limit of {limit}")]
    TooLarge {
        /// Which size.
        what: &'static str,
        /// Its value.
        value: usize,
        /// The largest value supported.
        limit: usize,
    },
    /// A query has more tokens than a GPU search handles.
    #[error("query {query} has {tokens} tokens; GPU search handles at most {max}")]
    QueryTooLong {
        /// Position of the query in the batch.
        query: usize,
        /// Its number of tokens.
        tokens: usize,
        /// The limit.
        max: usize,
    },
    /// A search option the GPU path does not implement.
    #[error("GPU search does not support {what}")]
    Unsupported {
        /// The option.
        what: &'static str,
    },
    /// From the codec (codebook checks, shapes).
    #[error(transparent)]
    Codec(#[from] plaid_codec::Error),
    /// From the CPU search crate (query and parameter checks, damaged segments).
    #[error(transparent)]
    Search(#[from] plaid_search::Error),
    /// From k-means (input checks).
    #[error(transparent)]
    Kmeans(#[from] plaid_kmeans::Error),
}

/// Maps a driver result, naming the operation.
pub(crate) fn drv<T>(
    op: &'static str,
    r: Result<T, cudarc::driver::DriverError>,
) -> Result<T, Error> {
    r.map_err(|source| Error::Driver { op, source })
}

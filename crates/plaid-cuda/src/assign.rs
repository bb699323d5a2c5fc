//! Nearest-centroid assignment on the GPU: an f16 GEMM with f32 output, then
//! a warp-per-row argmax that rescores the best two centroids in f32.

use cudarc::driver::CudaSlice;

use crate::device::Device;
use crate::error::{Error, drv};
use crate::ffi::{self, ArgmaxArgs};

/// Bytes of the score buffer of one assignment GEMM: bounds device memory
/// whatever the number of centroids.
const SCORE_BUDGET_BYTES: usize = 1 << 30;

/// Centroids resident on the device, in f32 and f16, with the L2 bias.
#[derive(Debug)]
pub(crate) struct DevCentroids {
    pub(crate) f32: CudaSlice<f32>,
    f16: CudaSlice<u16>,
    /// `−‖c‖²/2` per centroid (for L2 assignment).
    bias: CudaSlice<f32>,
    pub(crate) k: usize,
    pub(crate) dim: usize,
}

/// Device scratch reused across chunks of one assignment.
#[derive(Debug)]
struct Scratch {
    x16: CudaSlice<u16>,
    scores: CudaSlice<f32>,
    rows: usize,
}

impl Device {
    /// Uploads `centroids` (`k × dim`) with their squared norms (`None`:
    /// computed here).
    pub(crate) fn upload_centroids(
        &self,
        centroids: &[f32],
        dim: usize,
        norms: Option<&[f32]>,
    ) -> Result<DevCentroids, Error> {
        let k = rows_of("centroids", centroids, dim)?;
        if k == 0 {
            return Err(Error::Shape {
                what: "centroids",
                expected: 1,
                found: 0,
            });
        }
        check_i32("centroids", k)?;
        let s = &self.stream;
        let f32s = drv("upload centroids", s.clone_htod(centroids))?;
        let mut f16 = ffi::alloc_out::<u16>(s, k * dim)?;
        ffi::f32_to_f16(s, &self.kernels.f32_to_f16, &mut f16, &f32s, k * dim)?;
        let bias: Vec<f32> = match norms {
            Some(n) if n.len() == k => n.iter().map(|v| -0.5 * v).collect(),
            Some(n) => {
                return Err(Error::Shape {
                    what: "centroid norms",
                    expected: k,
                    found: n.len(),
                });
            }
            None => centroids
                .chunks_exact(dim)
                .map(|c| -0.5 * c.iter().map(|v| v * v).sum::<f32>())
                .collect(),
        };
        let bias = drv("upload bias", s.clone_htod(&bias))?;
        Ok(DevCentroids {
            f32: f32s,
            f16,
            bias,
            k,
            dim,
        })
    }

    fn scratch(&self, cents: &DevCentroids, max_rows: usize) -> Result<Scratch, Error> {
        let rows = (SCORE_BUDGET_BYTES / (4 * cents.k))
            .clamp(32, 16_384)
            .min(max_rows.max(1));
        Ok(Scratch {
            x16: ffi::alloc_out::<u16>(&self.stream, rows * cents.dim)?,
            scores: ffi::alloc_out::<f32>(&self.stream, rows * cents.k)?,
            rows,
        })
    }

    /// Labels of the `rows` rows in `x` (device, f32) into `labels` (device).
    fn assign_device(
        &self,
        cents: &DevCentroids,
        x: &CudaSlice<f32>,
        rows: usize,
        scratch: &mut Scratch,
        labels: &mut CudaSlice<u32>,
        l2: bool,
    ) -> Result<(), Error> {
        let dim = cents.dim;
        let s = &self.stream;
        ffi::f32_to_f16(s, &self.kernels.f32_to_f16, &mut scratch.x16, x, rows * dim)?;
        ffi::gemm_f16(
            &self.blas,
            s,
            &scratch.x16,
            &cents.f16,
            &mut scratch.scores,
            rows,
            cents.k,
            dim,
        )?;
        ffi::argmax_refine(
            s,
            &self.kernels.argmax_refine,
            labels,
            &ArgmaxArgs {
                scores: &scratch.scores,
                bias: &cents.bias,
                use_bias: l2,
                x,
                cent: &cents.f32,
                rows: check_i32("rows", rows)?,
                k: check_i32("centroids", cents.k)?,
                dim: check_i32("dim", dim)?,
            },
        )
    }

    /// Assigns host rows chunk by chunk; `each(chunk_start, x_chunk_dev,
    /// labels_dev, rows)` runs after each chunk's labels are computed.
    pub(crate) fn assign_host_rows(
        &self,
        cents: &DevCentroids,
        data: &[f32],
        l2: bool,
        mut each: impl FnMut(usize, &CudaSlice<f32>, &CudaSlice<u32>, usize) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let dim = cents.dim;
        let n = rows_of("data", data, dim)?;
        if n == 0 {
            return Ok(());
        }
        self.bind()?;
        let mut scratch = self.scratch(cents, n)?;
        let chunk = scratch.rows;
        let mut x = ffi::alloc_out::<f32>(&self.stream, chunk * dim)?;
        let mut labels = ffi::alloc_out::<u32>(&self.stream, chunk)?;
        let mut start = 0;
        while start < n {
            let rows = chunk.min(n - start);
            let mut view = x.slice_mut(0..rows * dim);
            drv(
                "upload rows",
                self.stream
                    .memcpy_htod(&data[start * dim..(start + rows) * dim], &mut view),
            )?;
            self.assign_device(cents, &x, rows, &mut scratch, &mut labels, l2)?;
            each(start, &x, &labels, rows)?;
            start += rows;
        }
        Ok(())
    }

    fn nearest(
        &self,
        data: &[f32],
        centroids: &[f32],
        dim: usize,
        l2: bool,
    ) -> Result<Vec<u32>, Error> {
        let n = rows_of("data", data, dim)?;
        let mut out = vec![0u32; n];
        if n == 0 {
            return Ok(out);
        }
        let cents = self.upload_centroids(centroids, dim, None)?;
        self.assign_host_rows(&cents, data, l2, |start, _, labels, rows| {
            drv(
                "download labels",
                self.stream
                    .memcpy_dtoh(&labels.slice(0..rows), &mut out[start..start + rows]),
            )
        })?;
        Ok(out)
    }

    /// Index of the centroid with the largest dot product for each row of
    /// `data` (`n × dim`; `centroids` is `k × dim`), as
    /// [`plaid_kmeans::nearest_by_dot`] up to near-ties (see the crate docs).
    ///
    /// # Errors
    /// [`Error::Shape`] for ragged inputs or no centroids, [`Error::TooLarge`]
    /// beyond 32-bit sizes, driver and cuBLAS errors.
    pub fn nearest_by_dot(
        &self,
        data: &[f32],
        centroids: &[f32],
        dim: usize,
    ) -> Result<Vec<u32>, Error> {
        self.nearest(data, centroids, dim, false)
    }

    /// Index of the centroid nearest in squared L2 distance, as
    /// [`plaid_kmeans::nearest_by_l2`] up to near-ties.
    ///
    /// # Errors
    /// As [`Device::nearest_by_dot`].
    pub fn nearest_by_l2(
        &self,
        data: &[f32],
        centroids: &[f32],
        dim: usize,
    ) -> Result<Vec<u32>, Error> {
        self.nearest(data, centroids, dim, true)
    }
}

/// A [`plaid_kmeans::Assigner`] on the GPU: the training points stay on the
/// device across Lloyd iterations; each iteration uploads the centroids.
#[derive(Debug)]
pub struct GpuAssigner<'d> {
    device: &'d Device,
    points: Option<(CudaSlice<f32>, usize, usize)>,
}

impl<'d> GpuAssigner<'d> {
    /// An assigner on `device`.
    pub fn new(device: &'d Device) -> Self {
        Self {
            device,
            points: None,
        }
    }
}

impl plaid_kmeans::Assigner for GpuAssigner<'_> {
    type Error = Error;

    fn load_points(&mut self, points: &[f32], dim: usize) -> Result<(), Error> {
        let n = rows_of("points", points, dim)?;
        self.device.bind()?;
        let buf = drv("upload points", self.device.stream.clone_htod(points))?;
        self.points = Some((buf, n, dim));
        Ok(())
    }

    fn assign_l2(
        &mut self,
        centroids: &[f32],
        norms: &[f32],
        labels: &mut [u32],
    ) -> Result<(), Error> {
        let dev = self.device;
        let Some((points, n, dim)) = &self.points else {
            return Err(Error::Shape {
                what: "loaded points",
                expected: labels.len(),
                found: 0,
            });
        };
        let (n, dim) = (*n, *dim);
        if labels.len() != n {
            return Err(Error::Shape {
                what: "labels",
                expected: n,
                found: labels.len(),
            });
        }
        dev.bind()?;
        let cents = dev.upload_centroids(centroids, dim, Some(norms))?;
        let mut scratch = dev.scratch(&cents, n)?;
        let chunk = scratch.rows;
        let mut x = ffi::alloc_out::<f32>(&dev.stream, chunk * dim)?;
        let mut out = ffi::alloc_out::<u32>(&dev.stream, chunk)?;
        let mut start = 0;
        while start < n {
            let rows = chunk.min(n - start);
            let mut view = x.slice_mut(0..rows * dim);
            drv(
                "copy points",
                dev.stream
                    .memcpy_dtod(&points.slice(start * dim..(start + rows) * dim), &mut view),
            )?;
            dev.assign_device(&cents, &x, rows, &mut scratch, &mut out, true)?;
            drv(
                "download labels",
                dev.stream
                    .memcpy_dtoh(&out.slice(0..rows), &mut labels[start..start + rows]),
            )?;
            start += rows;
        }
        Ok(())
    }
}

/// Number of `dim`-wide rows in `data`.
pub(crate) fn rows_of(what: &'static str, data: &[f32], dim: usize) -> Result<usize, Error> {
    if dim == 0 || !data.len().is_multiple_of(dim) {
        return Err(Error::Shape {
            what,
            expected: dim.max(1) * data.len().div_ceil(dim.max(1)),
            found: data.len(),
        });
    }
    Ok(data.len() / dim)
}

/// `v` as an `i32` kernel argument.
pub(crate) fn check_i32(what: &'static str, v: usize) -> Result<i32, Error> {
    i32::try_from(v).map_err(|_| Error::TooLarge {
        what,
        value: v,
        limit: i32::MAX as usize,
    })
}

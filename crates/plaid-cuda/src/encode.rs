//! Index encoding on the GPU: codes and packed residuals.

use plaid_codec::types::EmbeddingsView;
use plaid_codec::{Codebook, Compressed, reference};

use crate::assign::check_i32;
use crate::device::Device;
use crate::error::{Error, drv};
use crate::ffi::{self, EncodeArgs};

/// Every dimension's cutoffs, `dim × (2^nbits − 1)`, whatever the quantizer kind.
pub(crate) fn expanded_cutoffs(codebook: &Codebook) -> Vec<f32> {
    let q = codebook.quantizer();
    (0..codebook.dim())
        .flat_map(|d| reference::cutoffs(q, d).unwrap_or(&[]).iter().copied())
        .collect()
}

/// Every dimension's decoded residual values, `dim × 2^nbits`.
pub(crate) fn expanded_weights(codebook: &Codebook) -> Vec<f32> {
    let q = codebook.quantizer();
    let nb = codebook.nbits().num_buckets();
    (0..codebook.dim())
        .flat_map(|d| (0..nb).map(move |b| reference::weight(q, d, b as u8).unwrap_or(0.0)))
        .collect()
}

impl Device {
    /// Compresses token embeddings as [`Codebook::compress`] does: each row
    /// gets the code of its max-dot-product centroid and the packed
    /// quantised residual. Codes can differ from the CPU's on near-ties (see
    /// the crate docs); for equal codes the residual bytes are identical.
    ///
    /// # Errors
    /// [`Error::Shape`] when rows are not the codebook's width,
    /// [`Error::Codec`] for NaN or infinite values (checked on the host
    /// first), driver and cuBLAS errors.
    pub fn compress(
        &self,
        codebook: &Codebook,
        embeddings: EmbeddingsView<'_>,
    ) -> Result<Compressed, Error> {
        let dim = codebook.dim();
        if embeddings.dim() != dim {
            return Err(Error::Shape {
                what: "embedding width",
                expected: dim,
                found: embeddings.dim(),
            });
        }
        if let Some(row) = embeddings
            .rows()
            .position(|r| r.iter().any(|v| !v.is_finite()))
        {
            return Err(plaid_codec::Error::NonFinite {
                what: "embeddings",
                row,
            }
            .into());
        }
        let n = embeddings.num_rows();
        let plen = codebook.packed_len();
        let mut codes = vec![0u32; n];
        let mut residuals = vec![0u8; n * plen];
        if n == 0 {
            return Ok(Compressed { codes, residuals });
        }
        let cents = self.upload_centroids(codebook.centroids(), dim, None)?;
        let cutoffs = drv(
            "upload cutoffs",
            self.stream.clone_htod(&expanded_cutoffs(codebook)),
        )?;
        let bits = i32::from(codebook.nbits().bits());
        let mut packed: Option<cudarc::driver::CudaSlice<u8>> = None;
        self.assign_host_rows(
            &cents,
            embeddings.as_slice(),
            false,
            |start, x, labels, rows| {
                let buf = match &mut packed {
                    Some(b) => b,
                    None => {
                        packed.insert(ffi::alloc_out::<u8>(&self.stream, x.len() / dim * plen)?)
                    }
                };
                ffi::encode_pack(
                    &self.stream,
                    &self.kernels.encode_pack,
                    buf,
                    &EncodeArgs {
                        x,
                        codes: labels,
                        cent: &cents.f32,
                        cutoffs: &cutoffs,
                        rows: check_i32("rows", rows)?,
                        dim: check_i32("dim", dim)?,
                        bits,
                        packed_len: check_i32("packed_len", plen)?,
                    },
                )?;
                drv(
                    "download codes",
                    self.stream
                        .memcpy_dtoh(&labels.slice(0..rows), &mut codes[start..start + rows]),
                )?;
                drv(
                    "download residuals",
                    self.stream.memcpy_dtoh(
                        &buf.slice(0..rows * plen),
                        &mut residuals[start * plen..(start + rows) * plen],
                    ),
                )
            },
        )?;
        Ok(Compressed { codes, residuals })
    }
}

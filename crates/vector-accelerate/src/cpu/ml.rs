//! The CPU side of the ML family's own paths: the 16-bit neural
//! quantization decode computed as CUDA computes it (the other jobs take the
//! generic GEMM and scalar-quantization steps).

use crate::core::error::{Error, Result};
use crate::core::linalg::Plan;
use crate::core::precision::Precision;
use crate::cpu::linalg::gemm;
use crate::runtime::backend::{Cpu, MlBackend, NqDecodeJob, NqEncodeJob, ScoresJob};
use crate::runtime::codes::ScalarCodes;
use crate::runtime::tensor::DeviceMatrix;

impl MlBackend for Cpu {
    fn attention_scores(&self, _job: ScoresJob<'_>) -> Result<Option<DeviceMatrix>> {
        Ok(None)
    }

    fn nq_encode(&self, _job: NqEncodeJob<'_>) -> Result<Option<ScalarCodes>> {
        Ok(None)
    }

    /// Under `Bf16` and `F16` the decode CUDA computes: the codes (exact
    /// 16-bit integers) times the weight rounded to 16 bits (f16: each
    /// output's weights scaled by a power of two first), each row's sums
    /// scaled by its scale in f32, then the bias (no 16-bit rounding of the
    /// dequantised latent, which would overflow f16 for large vectors).
    fn nq_decode(&self, job: NqDecodeJob<'_>) -> Result<Option<DeviceMatrix>> {
        if !matches!(job.precision, Precision::Bf16 | Precision::F16) || job.codes.rows() == 0 {
            return Ok(None);
        }
        let host = job.codes.to_host()?;
        let (Some(bytes), Some((scales, _))) = (host.as_bytes(), host.vector_params()) else {
            return Err(Error::invalid(
                "codes",
                "not per-vector int8",
                "codes made by this quantizer's encode",
            ));
        };
        let (rows, latent, d_out) = (host.rows(), host.dim(), job.weight.rows());
        let ints: Vec<f32> = bytes.iter().map(|&b| b as i8 as f32).collect();
        let mut w = job.weight.to_host()?.into_vec();
        let colscale = if job.precision == Precision::F16 {
            scale_rows_for_f16(&mut w, latent)
        } else {
            vec![1.0; d_out]
        };
        let plan = Plan {
            batch: 1,
            m: rows,
            n: d_out,
            k: latent,
            trans_a: false,
            trans_b: true,
            lda: latent,
            ldb: latent,
            stride_a: rows * latent,
            stride_b: d_out * latent,
            alpha: 1.0,
            beta: 0.0,
            precision: job.precision,
        };
        let mut y = gemm(&ints, &w, None, &plan);
        for (row, &s) in y.chunks_mut(d_out).zip(scales) {
            for (o, v) in row.iter_mut().enumerate() {
                *v *= s * colscale[o];
                if let Some(b) = job.bias {
                    *v += b[o];
                }
            }
        }
        Ok(Some(DeviceMatrix::from_host_f32(y, d_out)))
    }
}

/// Scales each row of `w` (`dim` values) by the power of two that puts its
/// largest finite magnitude in `[2^14, 2^15)`, as CUDA does before rounding
/// to f16 (no overflow to inf); returns each row's inverse scale.
fn scale_rows_for_f16(w: &mut [f32], dim: usize) -> Vec<f32> {
    w.chunks_mut(dim)
        .map(|row| {
            let top = row
                .iter()
                .filter(|v| v.is_finite())
                .fold(0.0f32, |m, v| m.max(v.abs()));
            if top == 0.0 {
                return 1.0;
            }
            // floor(log2(top)) from the exponent bits (subnormal tops: -127,
            // capped below as CUDA caps).
            let fl = ((top.to_bits() >> 23) & 0xff) as i32 - 127;
            let e = (14 - fl).min(126);
            let up = 2f32.powi(e);
            row.iter_mut().for_each(|v| *v *= up);
            2f32.powi(-e)
        })
        .collect()
}

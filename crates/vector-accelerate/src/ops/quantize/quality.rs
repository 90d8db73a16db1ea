//! Reconstruction quality of a quantizer: errors per vector and overall.

use rayon::prelude::*;

use crate::core::error::{Error, Result};
use crate::core::matrix::MatrixView;

/// Reconstruction quality of one vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VectorQuality {
    /// Mean squared error over the vector's values.
    pub mse: f64,
    /// Largest absolute error.
    pub max_error: f64,
    /// Signal-to-noise ratio in dB: `10 log10(sum x^2 / sum (x - y)^2)`
    /// (`+inf` for an exact reconstruction).
    pub snr_db: f64,
}

/// Reconstruction quality of a set of vectors (all in f64).
#[derive(Debug, Clone, PartialEq)]
pub struct Quality {
    /// Mean squared error over every value.
    pub mse: f64,
    /// Largest absolute error over every value.
    pub max_error: f64,
    /// Signal-to-noise ratio over every value, in dB.
    pub snr_db: f64,
    /// Peak signal-to-noise ratio in dB: `10 log10(peak^2 / mse)` with
    /// `peak = max |x|`.
    pub psnr_db: f64,
    /// Original bytes (`4` per value) over the code bytes given.
    pub compression_ratio: f64,
    /// Mean cosine similarity between original and reconstructed vectors
    /// (a zero vector counts as 1 against a zero vector, else 0).
    pub mean_cosine: f64,
    /// Per-vector figures.
    pub per_vector: Vec<VectorQuality>,
}

impl Quality {
    /// Compares `original` with its reconstruction; `code_bytes` is the size
    /// of the codes (parameters included) for the compression ratio.
    pub fn measure(
        original: MatrixView<'_>,
        reconstructed: MatrixView<'_>,
        code_bytes: usize,
    ) -> Result<Self> {
        if original.rows() != reconstructed.rows() || original.dim() != reconstructed.dim() {
            return Err(Error::invalid(
                "reconstruction shape",
                format!("{} x {}", reconstructed.rows(), reconstructed.dim()),
                format!("expected {} x {}", original.rows(), original.dim()),
            ));
        }
        if code_bytes == 0 {
            return Err(Error::invalid("code bytes", 0, "must be positive"));
        }
        let d = original.dim();
        // (sum err^2, max err, sum x^2, max |x|, cosine) per vector.
        let rows: Vec<(f64, f64, f64, f64, f64)> = (0..original.rows())
            .into_par_iter()
            .map(|r| {
                let (a, b) = (original.row(r), reconstructed.row(r));
                let (mut e2, mut emax, mut s2, mut peak, mut ab, mut bb) =
                    (0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
                for (x, y) in a.iter().zip(b) {
                    let (x, y) = (*x as f64, *y as f64);
                    let e = x - y;
                    e2 += e * e;
                    emax = emax.max(e.abs());
                    s2 += x * x;
                    peak = peak.max(x.abs());
                    ab += x * y;
                    bb += y * y;
                }
                let cos = if s2 > 0.0 && bb > 0.0 {
                    ab / (s2.sqrt() * bb.sqrt())
                } else if s2 == 0.0 && bb == 0.0 {
                    1.0
                } else {
                    0.0
                };
                (e2, emax, s2, peak, cos)
            })
            .collect();
        let n = (original.rows() * d) as f64;
        let e2: f64 = rows.iter().map(|r| r.0).sum();
        let s2: f64 = rows.iter().map(|r| r.2).sum();
        let peak = rows.iter().fold(0f64, |a, r| a.max(r.3));
        let mse = e2 / n;
        let db = |num: f64, den: f64| {
            if den == 0.0 {
                f64::INFINITY
            } else {
                10.0 * (num / den).log10()
            }
        };
        Ok(Self {
            mse,
            max_error: rows.iter().fold(0f64, |a, r| a.max(r.1)),
            snr_db: db(s2, e2),
            psnr_db: db(peak * peak, mse),
            compression_ratio: (4.0 * n) / code_bytes as f64,
            mean_cosine: rows.iter().map(|r| r.4).sum::<f64>() / original.rows().max(1) as f64,
            per_vector: rows
                .iter()
                .map(|r| VectorQuality {
                    mse: r.0 / d as f64,
                    max_error: r.1,
                    snr_db: db(r.2, r.0),
                })
                .collect(),
        })
    }
}

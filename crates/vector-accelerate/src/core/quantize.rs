//! The quantize family's vocabulary: code widths and ranges, options,
//! the fitted quantizers' parameters and the code arithmetic both backends
//! share.

use rayon::prelude::*;

use crate::core::cluster::{KMeansProgress, ProgressFn};
use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::Metric;
use crate::core::neighbors::MISSING_ID;

/// Code width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarBits {
    /// One byte per value.
    Int8,
    /// Half a byte per value (two per byte, low nibble first).
    Int4,
}

impl ScalarBits {
    /// Bits per value.
    pub fn bits(self) -> u32 {
        match self {
            ScalarBits::Int8 => 8,
            ScalarBits::Int4 => 4,
        }
    }
    /// Code bytes of a row of `dim` values.
    pub fn bytes_per_row(self, dim: usize) -> usize {
        match self {
            ScalarBits::Int8 => dim,
            ScalarBits::Int4 => dim.div_ceil(2),
        }
    }
    /// Largest code of the symmetric range (127 or 7; the range is
    /// `-max..=max`, so zero is exact).
    pub(crate) fn sym_max(self) -> f32 {
        match self {
            ScalarBits::Int8 => 127.0,
            ScalarBits::Int4 => 7.0,
        }
    }
    /// Largest code of the asymmetric range (255 or 15, from 0).
    pub(crate) fn asym_max(self) -> f32 {
        match self {
            ScalarBits::Int8 => 255.0,
            ScalarBits::Int4 => 15.0,
        }
    }
}

/// The code range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarRange {
    /// Signed codes `-127..=127` (int4: `-7..=7`), zero point 0:
    /// `x ~ code * scale` with `scale = max|x| / 127`.
    Symmetric,
    /// Unsigned codes using the full `0..=255` (int4: `0..=15`) from the
    /// minimum: `x ~ offset + code * scale` with `offset = min`,
    /// `scale = (max - min) / 255`.
    Asymmetric,
}

/// What one scale (and offset) covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarScope {
    /// One per dimension, fitted from the training data.
    PerChannel,
    /// One per vector, computed from each vector when it is encoded (kept
    /// with its codes).
    PerVector,
}

/// Training options of a [`ScalarQuantizer`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ScalarOptions {
    /// Code width.
    pub bits: ScalarBits,
    /// Code range.
    pub range: ScalarRange,
    /// Per channel or per vector.
    pub scope: ScalarScope,
    /// Per-channel fitting only: clip each channel to the `[1 - p, p]`
    /// quantiles of its training values (NumPy's linear interpolation;
    /// symmetric range: the `p` quantile of `|x|`) instead of its minimum
    /// and maximum, for `0.5 < p < 1`. Values beyond saturate.
    pub clip: Option<f32>,
}

impl Default for ScalarOptions {
    /// Symmetric per-channel int8.
    fn default() -> Self {
        Self::int8()
    }
}

impl ScalarOptions {
    /// Symmetric per-channel int8.
    pub fn int8() -> Self {
        Self {
            bits: ScalarBits::Int8,
            range: ScalarRange::Symmetric,
            scope: ScalarScope::PerChannel,
            clip: None,
        }
    }
    /// Symmetric per-channel int4.
    pub fn int4() -> Self {
        Self {
            bits: ScalarBits::Int4,
            ..Self::int8()
        }
    }
    /// Sets the range.
    pub fn with_range(mut self, r: ScalarRange) -> Self {
        self.range = r;
        self
    }
    /// Sets the scope.
    pub fn with_scope(mut self, s: ScalarScope) -> Self {
        self.scope = s;
        self
    }
    /// Clips per-channel ranges to the `[1 - p, p]` quantiles.
    pub fn with_clip(mut self, p: f32) -> Self {
        self.clip = Some(p);
        self
    }
}

/// Per-value parameters: `scale`, its reciprocal (0 when the scale is 0) and
/// the offset, computed identically on every backend.
pub(crate) fn params(lo: f32, hi: f32, bits: ScalarBits, range: ScalarRange) -> (f32, f32, f32) {
    let (scale, offset) = match range {
        ScalarRange::Symmetric => (lo.abs().max(hi.abs()) / bits.sym_max(), 0.0),
        ScalarRange::Asymmetric => ((hi - lo) / bits.asym_max(), lo),
    };
    let scale = if scale.is_finite() { scale } else { f32::MAX };
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    (scale, inv, offset)
}

/// A fitted scalar quantizer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarQuantizer {
    pub(crate) opts: ScalarOptions,
    pub(crate) dim: usize,
    /// Per channel: scale, reciprocal, offset (empty when per vector).
    pub(crate) scale: Vec<f32>,
    pub(crate) inv: Vec<f32>,
    pub(crate) offset: Vec<f32>,
}

/// Training options of a [`ProductQuantizer`].
#[derive(Clone)]
#[non_exhaustive]
pub struct PqOptions {
    /// Sub-spaces (codes per row).
    pub m: usize,
    /// Bits per code, 4..=16 (`2^nbits` centroids per sub-space).
    pub nbits: u32,
    /// When the dimension is not a multiple of `m`: pad rows with zeros to
    /// the next multiple (true) or refuse (false, the default).
    pub pad: bool,
    /// k-means iterations per sub-space (default 25).
    pub iterations: usize,
    /// Seed of the initial centroids (default 0).
    pub seed: u64,
    /// Train on at most this many rows, drawn uniformly (default: all).
    pub max_training_points: Option<usize>,
    /// Called after each k-means iteration, all sub-spaces together
    /// (`inertia` sums every sub-space's squared distances, `changed` counts
    /// sub-space codes that changed, `reseeded` the empty centroids
    /// re-seeded).
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for PqOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PqOptions")
            .field("m", &self.m)
            .field("nbits", &self.nbits)
            .field("pad", &self.pad)
            .field("iterations", &self.iterations)
            .field("seed", &self.seed)
            .field("max_training_points", &self.max_training_points)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl PqOptions {
    /// `m` sub-spaces of `nbits`-bit codes, other options default.
    pub fn new(m: usize, nbits: u32) -> Self {
        Self {
            m,
            nbits,
            pad: false,
            iterations: 25,
            seed: 0,
            max_training_points: None,
            progress: None,
        }
    }
    /// Calls `f` after every k-means iteration.
    pub fn with_progress(mut self, f: impl Fn(&KMeansProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(std::sync::Arc::new(f));
        self
    }
    /// Pads a dimension that `m` does not divide.
    pub fn with_padding(mut self, on: bool) -> Self {
        self.pad = on;
        self
    }
    /// Sets the k-means iterations.
    pub fn with_iterations(mut self, n: usize) -> Self {
        self.iterations = n;
        self
    }
    /// Sets the seed.
    pub fn with_seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Trains on a uniform subsample of at most `n` rows.
    pub fn with_max_training_points(mut self, n: usize) -> Self {
        self.max_training_points = Some(n);
        self
    }
}

/// A trained product quantizer.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductQuantizer {
    pub(crate) dim: usize,
    pub(crate) m: usize,
    pub(crate) nbits: u32,
    pub(crate) dsub: usize,
    /// `m x 2^nbits x dsub` centroids.
    pub(crate) centroids: Vec<f32>,
}

/// The sub-space layout of a `dim`-dimensional quantizer.
pub(crate) fn layout(dim: usize, m: usize, nbits: u32, pad: bool) -> Result<usize> {
    if !(4..=16).contains(&nbits) {
        return Err(Error::invalid("nbits", nbits, "must be in 4..=16"));
    }
    if m == 0 || m > dim {
        return Err(Error::invalid(
            "m",
            m,
            format!("must be in 1..={dim} (the dimension)"),
        ));
    }
    if !dim.is_multiple_of(m) && !pad {
        return Err(Error::invalid(
            "m",
            m,
            format!(
                "dimension {dim} is not a multiple of m; pad to {} with PqOptions::with_padding(true) or choose m dividing {dim}",
                dim.div_ceil(m) * m
            ),
        ));
    }
    Ok(dim.div_ceil(m))
}

/// Bytes of a row of `m` codes of `nbits` bits.
pub(crate) fn pq_row_bytes(m: usize, nbits: u32) -> usize {
    (m * nbits as usize).div_ceil(8)
}

/// Code `j` (`nbits` wide) of a packed row.
#[inline]
pub(crate) fn read_code(row: &[u8], j: usize, nbits: u32) -> u32 {
    if nbits == 8 {
        return row[j] as u32;
    }
    let bit = j * nbits as usize;
    let (byte, shift) = (bit / 8, bit % 8);
    let mut w = 0u32;
    for (t, b) in row[byte..].iter().take(3).enumerate() {
        w |= (*b as u32) << (8 * t);
    }
    (w >> shift) & ((1u32 << nbits) - 1)
}

/// Packs `codes` (`m` per row) into rows of `nbits`-bit fields.
pub(crate) fn pack_codes(codes: &[u32], m: usize, nbits: u32) -> Vec<u8> {
    let rb = pq_row_bytes(m, nbits);
    let rows = codes.len() / m;
    let mut out = vec![0u8; rows * rb];
    for (r, c) in codes.chunks_exact(m).enumerate() {
        let row = &mut out[r * rb..(r + 1) * rb];
        for (j, &v) in c.iter().enumerate() {
            let bit = j * nbits as usize;
            let v = (v as u64) << (bit % 8);
            for t in 0..4 {
                let b = bit / 8 + t;
                if b < rb {
                    row[b] |= (v >> (8 * t)) as u8;
                }
            }
        }
    }
    out
}

/// Columns with no finite value get the range (0, 0).
pub(crate) fn finish_ranges(mut lo: Vec<f32>, mut hi: Vec<f32>) -> (Vec<f32>, Vec<f32>) {
    for (l, h) in lo.iter_mut().zip(hi.iter_mut()) {
        if *l > *h {
            (*l, *h) = (0.0, 0.0);
        }
    }
    (lo, hi)
}

/// The code range of a quantizer.
pub(crate) fn code_range(bits: ScalarBits, range: ScalarRange) -> (f32, f32) {
    match range {
        ScalarRange::Symmetric => (-bits.sym_max(), bits.sym_max()),
        ScalarRange::Asymmetric => (0.0, bits.asym_max()),
    }
}

/// Metrics a search over codes ranks by: squared L2 (smallest first) or
/// inner product (largest first).
pub(crate) fn code_metric(metric: Metric) -> Result<Metric> {
    match metric {
        Metric::L2 | Metric::InnerProduct => Ok(metric),
        m => Err(Error::UnsupportedMetric {
            metric: m.to_string(),
            context: "for a search over quantized codes (use l2 or ip)".into(),
        }),
    }
}

/// NumPy's default (linear) quantile of sorted values.
fn quantile(sorted: &[f32], p: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = p * (sorted.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos - pos.floor());
    let a = sorted[i] as f64;
    let b = sorted[(i + 1).min(sorted.len() - 1)] as f64;
    (a + (b - a) * f) as f32
}

/// Per-column clip range: the `1 - p` and `p` quantiles of the finite
/// values, or for the symmetric range `(-q, q)` with `q` the `p` quantile
/// of `|x|`.
pub(crate) fn column_quantiles(m: MatrixView<'_>, p: f32, symmetric: bool) -> (Vec<f32>, Vec<f32>) {
    let d = m.dim();
    let cols: Vec<(f32, f32)> = (0..d)
        .into_par_iter()
        .map(|j| {
            let mut v: Vec<f32> = (0..m.rows())
                .map(|r| m.row(r)[j])
                .filter(|x| x.is_finite())
                .map(|x| if symmetric { x.abs() } else { x })
                .collect();
            v.sort_unstable_by(f32::total_cmp);
            if symmetric {
                let q = quantile(&v, p as f64);
                (-q, q)
            } else {
                (quantile(&v, 1.0 - p as f64), quantile(&v, p as f64))
            }
        })
        .collect();
    cols.into_iter().unzip()
}

/// Exact distances of each query to its candidates (`nq x r` ids;
/// missing ids give NaN, never read).
pub(crate) fn pair_distances(
    q: MatrixView<'_>,
    x: MatrixView<'_>,
    ids: &[u64],
    r: usize,
    metric: Metric,
) -> Vec<f32> {
    let mut out = vec![f32::NAN; ids.len()];
    out.par_chunks_mut(r).enumerate().for_each(|(i, o)| {
        let qr = q.row(i);
        for (j, v) in o.iter_mut().enumerate() {
            let id = ids[i * r + j];
            if id == MISSING_ID {
                continue;
            }
            let xr = x.row(id as usize);
            *v = match metric {
                Metric::InnerProduct => qr.iter().zip(xr).map(|(a, b)| a * b).sum(),
                _ => qr
                    .iter()
                    .zip(xr)
                    .map(|(a, b)| {
                        let e = a - b;
                        e * e
                    })
                    .sum(),
            };
        }
    });
    out
}

/// Decodes packed product codes.
pub(crate) fn pq_decode(pq: &ProductQuantizer, bytes: &[u8], rows: usize) -> Matrix {
    let (d, m, ds, kc) = (pq.dim, pq.m, pq.dsub, 1usize << pq.nbits);
    let rb = crate::core::quantize::pq_row_bytes(m, pq.nbits);
    let mut out = vec![0f32; rows * d];
    out.par_chunks_mut(d).enumerate().for_each(|(r, row)| {
        let src = &bytes[r * rb..];
        for j in 0..m {
            let c = read_code(src, j, pq.nbits) as usize;
            let cv = &pq.centroids[(j * kc + c) * ds..(j * kc + c + 1) * ds];
            for t in 0..ds {
                if j * ds + t < d {
                    row[j * ds + t] = cv[t];
                }
            }
        }
    });
    Matrix::new(out, d).expect("non-empty")
}

/// Where each dimension's bit flips.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum BinaryThreshold {
    /// `x > 0`.
    #[default]
    Zero,
    /// `x > mean` of the dimension over the training data.
    Mean,
    /// `x > t[j]` for these thresholds (one per dimension).
    Given(Vec<f32>),
}

/// Training options of a [`BinaryQuantizer`].
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct BinaryOptions {
    /// Where each dimension's bit flips (default [`BinaryThreshold::Zero`]).
    pub threshold: BinaryThreshold,
}

impl BinaryOptions {
    /// Sets the thresholds.
    pub fn with_threshold(mut self, threshold: BinaryThreshold) -> Self {
        self.threshold = threshold;
        self
    }
}

/// A fitted binary quantizer.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryQuantizer {
    pub(crate) dim: usize,
    pub(crate) thresholds: Vec<f32>,
}

/// Any trained quantizer, as files hold them; a codec whose kind is
/// chosen at run time (see `quantize::Codec`).
///
/// ```
/// use vector_accelerate::quantize::{BinaryQuantizer, Quantizer};
/// let q = Quantizer::Binary(BinaryQuantizer::with_thresholds(vec![0.0, 0.5])?);
/// let bytes = q.to_bytes();
/// assert_eq!(Quantizer::from_bytes(&bytes)?, q);
/// assert!(Quantizer::from_bytes(&bytes[..bytes.len() - 1]).is_err());
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Quantizer {
    /// Scalar quantization.
    Scalar(ScalarQuantizer),
    /// Binary quantization.
    Binary(BinaryQuantizer),
    /// Product quantization.
    Product(ProductQuantizer),
}

impl Quantizer {
    /// The kind, as words (`scalar int8`, `scalar int4`, `binary`, `product`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Quantizer::Scalar(sq) if sq.options().bits.bits() == 8 => "scalar int8",
            Quantizer::Scalar(_) => "scalar int4",
            Quantizer::Binary(_) => "binary",
            Quantizer::Product(_) => "product",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_codes_read_back_for_every_width() {
        for nbits in 4..=16u32 {
            for m in [1usize, 2, 3, 7, 16] {
                let codes: Vec<u32> = (0..5 * m)
                    .map(|i| (i as u32 * 2654435761) & ((1 << nbits) - 1))
                    .collect();
                let p = pack_codes(&codes, m, nbits);
                assert_eq!(p.len(), 5 * pq_row_bytes(m, nbits));
                let rb = pq_row_bytes(m, nbits);
                for r in 0..5 {
                    for j in 0..m {
                        assert_eq!(
                            read_code(&p[r * rb..], j, nbits),
                            codes[r * m + j],
                            "{nbits} {m}"
                        );
                    }
                }
            }
        }
    }
}

//! [`Precision`]: how the CUDA k-NN of the GEMM metrics ranks pairs, and
//! the arithmetic of the matrix operations ([`linalg`](crate::ops::linalg)).

use std::fmt;
use std::str::FromStr;

use crate::core::error::Error;

/// Precision mode of a k-NN over the GEMM metrics (L2, Euclidean, cosine,
/// inner product) on CUDA.
///
/// Every mode returns fp32 distances: pairs are ranked on tensor cores and
/// the shortlist is re-scored in fp32 from the `f32` rows. `Exact` keeps
/// every pair within a proven error bound of the current k-th best, so its
/// ranking equals an fp64 reference up to ties. The 16-bit modes round
/// copies of the rows to nearest (unbiased) and keep a narrower margin (about 4 / sqrt(d) of their format's worst-case bound,
/// roughly ten standard deviations of the typical rounding error), so a
/// true neighbour is missed only when rounding moves it unusually far; a
/// query block with more candidates than fit falls back to `Exact`.
///
/// The CPU backend always computes in fp32 (every mode gives `Exact`
/// results there).
///
/// In the matrix operations ([`linalg`](crate::ops::linalg)) the modes choose
/// the arithmetic of the product instead: `Exact` is fp32 SGEMM, `Tf32`
/// TF32 tensor cores on CUDA (fp32 on the CPU), `Bf16` / `F16` round the
/// operands to 16 bits on both backends and accumulate in fp32.
///
/// ```
/// use vector_accelerate::Precision;
/// assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
/// assert_eq!(Precision::default(), Precision::Exact);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Precision {
    /// Ranking equal to an fp64 reference up to ties (TF32, then three-pass
    /// TF32 where neighbours are too close, re-scored in fp32).
    #[default]
    Exact,
    /// TF32 tensor cores: here the same passes as `Exact`, which already
    /// ranks with TF32. (The tensor cores truncate fp32 operands, a bias
    /// towards zero that a margin narrower than the proven bound cannot
    /// absorb, and the filter is compute-bound, so a narrower margin would
    /// not be faster.)
    Tf32,
    /// bf16 copies of the rows (8-bit significands): twice the TF32 rate.
    Bf16,
    /// f16 copies of the rows (11-bit significands): twice the TF32 rate.
    /// Rows or queries with a value beyond the f16 range (+-65504) are
    /// ranked with TF32 instead (nothing is clamped).
    F16,
}

impl Precision {
    /// Every mode, in order of decreasing accuracy of the ranking.
    pub const ALL: [Precision; 4] = [
        Precision::Exact,
        Precision::F16,
        Precision::Tf32,
        Precision::Bf16,
    ];

    /// The mode's name as [`FromStr`] accepts it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Exact => "exact",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "exact" | "fp32" | "f32" => Ok(Precision::Exact),
            "tf32" => Ok(Precision::Tf32),
            "bf16" => Ok(Precision::Bf16),
            "f16" | "fp16" | "half" => Ok(Precision::F16),
            _ => Err(Error::invalid(
                "precision",
                s,
                "expected one of: exact, tf32, bf16, f16",
            )),
        }
    }
}

/// How a graph index's search reads the vectors as it walks the graph on
/// CUDA. The compressed modes walk copies of the rows and re-score the
/// `ef` candidates they keep from the fp32 rows, so results carry exact
/// distances; only the ranking of the walk is approximate. The host walk
/// always reads fp32.
///
/// ```
/// use vector_accelerate::WalkPrecision;
/// assert_eq!("int8".parse::<WalkPrecision>().unwrap(), WalkPrecision::Int8);
/// assert_eq!(WalkPrecision::default(), WalkPrecision::Exact);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum WalkPrecision {
    /// The fp32 rows.
    #[default]
    Exact,
    /// f16 copies (half the bytes). Graphs with a value beyond the f16
    /// range (+-65504) walk their fp32 rows instead.
    F16,
    /// 8-bit codes (a quarter of the bytes): per dimension, the range of
    /// the rows split in 255 steps (FAISS's `SQ8`); the walk ranks by the
    /// query's distance to each code's decoded vector.
    Int8,
}

impl WalkPrecision {
    /// The mode's name as [`FromStr`] accepts it.
    pub fn name(self) -> &'static str {
        match self {
            WalkPrecision::Exact => "exact",
            WalkPrecision::F16 => "f16",
            WalkPrecision::Int8 => "int8",
        }
    }
}

impl fmt::Display for WalkPrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WalkPrecision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "exact" | "fp32" | "f32" => Ok(WalkPrecision::Exact),
            "f16" | "fp16" | "half" => Ok(WalkPrecision::F16),
            "int8" | "sq8" | "u8" => Ok(WalkPrecision::Int8),
            _ => Err(Error::invalid(
                "precision",
                s,
                "expected one of: exact, f16, int8",
            )),
        }
    }
}

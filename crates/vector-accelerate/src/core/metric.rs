//! Metrics and the distance specification ([`Distance`]) every distance and
//! k-NN function takes.

use std::fmt;
use std::str::FromStr;

use crate::core::error::{Error, Result};
use crate::core::neighbors::Order;

/// A distance (or similarity) between two vectors. See the README's metric
/// table for the exact formulas.
///
/// ```
/// use vector_accelerate::Metric;
/// let m: Metric = "minkowski:3".parse().unwrap();
/// assert_eq!(m, Metric::Minkowski(3.0));
/// assert_eq!("ip".parse::<Metric>().unwrap(), Metric::InnerProduct);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// Squared Euclidean distance `sum (q-x)^2`, smallest first.
    L2,
    /// Euclidean distance `sqrt(sum (q-x)^2)`, smallest first.
    Euclidean,
    /// Cosine distance `1 - cos(q, x)` in `[0, 2]`, smallest first; a zero vector has `cos = 0`.
    Cosine,
    /// Cosine similarity `cos(q, x)` in `[-1, 1]`, largest first.
    CosineSimilarity,
    /// Inner product `q . x`, largest first.
    InnerProduct,
    /// Absolute inner product `|q . x|`, largest first.
    AbsInnerProduct,
    /// Manhattan distance `sum |q-x|` (optionally weighted per dimension), smallest first.
    L1,
    /// Chebyshev distance `max |q-x|` (optionally weighted per dimension), smallest first.
    Linf,
    /// Minkowski distance `(sum |q-x|^p)^(1/p)` for any real `p > 0`
    /// (`p = inf` is [`Metric::Linf`]), computed with scaling so that large or
    /// small `p` neither overflows nor underflows. Smallest first.
    Minkowski(f32),
    /// Number of differing bits (bit-packed input, or `f32` input binarised
    /// at [`Distance::binarize_threshold`]), smallest first.
    Hamming,
    /// Hamming distance divided by the number of bits, smallest first.
    HammingNormalized,
    /// Jaccard distance: on binary input `1 - |a & b| / |a | b|`; on `f32`
    /// input the weighted form `1 - sum min(a, b) / sum max(a, b)` (inputs must
    /// be non-negative). Two empty sets have distance 0. Smallest first.
    Jaccard,
}

impl Metric {
    /// The order in which k-NN ranks this metric's values.
    pub fn order(&self) -> Order {
        match self {
            Metric::CosineSimilarity | Metric::InnerProduct | Metric::AbsInnerProduct => {
                Order::Largest
            }
            _ => Order::Smallest,
        }
    }

    /// Whether values come from an inner-product GEMM (L2, cosine, inner product).
    pub fn is_gemm_based(&self) -> bool {
        matches!(
            self,
            Metric::L2
                | Metric::Euclidean
                | Metric::Cosine
                | Metric::CosineSimilarity
                | Metric::InnerProduct
                | Metric::AbsInnerProduct
        )
    }

    /// Whether this metric accepts bit-packed binary input.
    pub fn accepts_binary(&self) -> bool {
        matches!(
            self,
            Metric::Hamming | Metric::HammingNormalized | Metric::Jaccard
        )
    }

    /// Minkowski with `p` equal to 1, 2 or infinity becomes L1, Euclidean or
    /// L-infinity (the exact paths); everything else is unchanged.
    pub fn canonical(self) -> Metric {
        match self {
            Metric::Minkowski(1.0) => Metric::L1,
            Metric::Minkowski(2.0) => Metric::Euclidean,
            Metric::Minkowski(p) if p == f32::INFINITY => Metric::Linf,
            m => m,
        }
    }

    fn validate(&self) -> Result<()> {
        if let Metric::Minkowski(p) = self {
            if p.is_nan() || *p <= 0.0 {
                return Err(Error::invalid(
                    "minkowski p",
                    p,
                    "p must be a number greater than 0",
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::L2 => write!(f, "l2"),
            Metric::Euclidean => write!(f, "euclidean"),
            Metric::Cosine => write!(f, "cosine"),
            Metric::CosineSimilarity => write!(f, "cosine-similarity"),
            Metric::InnerProduct => write!(f, "ip"),
            Metric::AbsInnerProduct => write!(f, "abs-ip"),
            Metric::L1 => write!(f, "l1"),
            Metric::Linf => write!(f, "linf"),
            Metric::Minkowski(p) => write!(f, "minkowski:{p}"),
            Metric::Hamming => write!(f, "hamming"),
            Metric::HammingNormalized => write!(f, "hamming-normalized"),
            Metric::Jaccard => write!(f, "jaccard"),
        }
    }
}

impl FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let m = match lower.as_str() {
            "l2" | "sqeuclidean" => Metric::L2,
            "euclidean" => Metric::Euclidean,
            "cosine" => Metric::Cosine,
            "cosine-similarity" | "cos-sim" => Metric::CosineSimilarity,
            "ip" | "inner-product" | "dot" => Metric::InnerProduct,
            "abs-ip" => Metric::AbsInnerProduct,
            "l1" | "manhattan" => Metric::L1,
            "linf" | "chebyshev" => Metric::Linf,
            "hamming" => Metric::Hamming,
            "hamming-normalized" => Metric::HammingNormalized,
            "jaccard" => Metric::Jaccard,
            other => {
                if let Some(p) = other.strip_prefix("minkowski:") {
                    let p: f32 = match p {
                        "inf" | "infinity" => f32::INFINITY,
                        _ => p.parse().map_err(|_| {
                            Error::invalid(
                                "minkowski p",
                                p,
                                "expected a number greater than 0, or inf",
                            )
                        })?,
                    };
                    let m = Metric::Minkowski(p);
                    m.validate()?;
                    m
                } else {
                    return Err(Error::UnknownMetric {
                        name: s.to_string(),
                    });
                }
            }
        };
        Ok(m)
    }
}

/// A metric plus its options. Every distance and k-NN function takes
/// `impl Into<Distance>`, so a bare [`Metric`] works where no option is needed.
///
/// ```
/// use vector_accelerate::{Distance, Metric};
/// let d = Distance::new(Metric::L1).with_weights(vec![1.0, 0.5, 2.0]);
/// assert_eq!(d.metric, Metric::L1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Distance {
    /// The metric.
    pub metric: Metric,
    /// Cosine only: the caller promises both inputs are unit-norm, so norms are not computed.
    pub inputs_normalized: bool,
    /// L1 and L-infinity only: a non-negative weight per dimension.
    pub weights: Option<Vec<f32>>,
    /// Hamming on `f32` input: a value `x` is the bit `x > threshold` (default 0).
    pub binarize_threshold: f32,
}

impl Distance {
    /// A metric with default options.
    pub fn new(metric: Metric) -> Self {
        Self {
            metric,
            inputs_normalized: false,
            weights: None,
            binarize_threshold: 0.0,
        }
    }
    /// Cosine: declare the inputs unit-norm (skips the norms).
    pub fn normalized_inputs(mut self) -> Self {
        self.inputs_normalized = true;
        self
    }
    /// L1 / L-infinity: per-dimension weights.
    pub fn with_weights(mut self, weights: Vec<f32>) -> Self {
        self.weights = Some(weights);
        self
    }
    /// Hamming on `f32` input: the binarisation threshold.
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.binarize_threshold = threshold;
        self
    }

    /// Checks the options against an input of dimension `dim` (bits for binary input)
    /// and returns the canonical metric to compute.
    pub(crate) fn validate(&self, dim: usize, binary: bool) -> Result<Metric> {
        self.metric.validate()?;
        let metric = self.metric.canonical();
        if binary && !metric.accepts_binary() {
            return Err(Error::UnsupportedMetric {
                metric: self.metric.to_string(),
                context: "on bit-packed binary input (use hamming, hamming-normalized or jaccard, or f32 input)".into(),
            });
        }
        if self.inputs_normalized && !matches!(metric, Metric::Cosine | Metric::CosineSimilarity) {
            return Err(Error::UnsupportedMetric {
                metric: self.metric.to_string(),
                context: "with the inputs_normalized option (cosine only)".into(),
            });
        }
        if let Some(w) = &self.weights {
            if !matches!(metric, Metric::L1 | Metric::Linf) {
                return Err(Error::UnsupportedMetric {
                    metric: self.metric.to_string(),
                    context: "with per-dimension weights (l1 and linf only)".into(),
                });
            }
            if w.len() != dim {
                return Err(Error::DimensionMismatch {
                    what: "weights length vs dimension",
                    expected: dim,
                    got: w.len(),
                });
            }
            if let Some((i, x)) = w
                .iter()
                .enumerate()
                .find(|(_, x)| !(x.is_finite() && **x >= 0.0))
            {
                return Err(Error::invalid(
                    "weight",
                    x,
                    format!("weight {i} must be finite and >= 0"),
                ));
            }
        }
        if self.binarize_threshold != 0.0
            && (binary || !matches!(metric, Metric::Hamming | Metric::HammingNormalized))
        {
            return Err(Error::UnsupportedMetric {
                metric: self.metric.to_string(),
                context: "with a binarize threshold (hamming on f32 input only)".into(),
            });
        }
        if self.binarize_threshold.is_nan() {
            return Err(Error::invalid(
                "binarize threshold",
                "NaN",
                "must be a number",
            ));
        }
        Ok(metric)
    }
}

impl From<Metric> for Distance {
    fn from(metric: Metric) -> Self {
        Distance::new(metric)
    }
}
impl From<&Distance> for Distance {
    fn from(d: &Distance) -> Self {
        d.clone()
    }
}

/// A validated metric with its options, ready to compute.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub metric: Metric,
    pub weights: Option<Vec<f32>>,
    pub threshold: f32,
    pub normalized: bool,
}

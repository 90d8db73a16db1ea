//! The binning vocabulary both backends share: the plan that places a value
//! in its bin exactly as the `f64` edges would, and the counts a backend
//! returns.

/// Counts of a 1-D histogram, as a backend returns them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Counts {
    pub counts: Vec<u64>,
    pub below: u64,
    pub above: u64,
    pub non_finite: u64,
}

/// Counts of a 2-D histogram, as a backend returns them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Counts2 {
    pub counts: Vec<u64>,
    pub outside: u64,
    pub non_finite: u64,
}

/// Finite values of an input (positive ones only when asked): their
/// number, extremes and sum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stats {
    pub count: u64,
    pub min: f32,
    pub max: f32,
    pub sum: f64,
}

impl Stats {
    pub(crate) const EMPTY: Stats = Stats {
        count: 0,
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
        sum: 0.0,
    };

    /// Both parts combined (`self` first: the sum's order is fixed).
    pub(crate) fn merge(self, o: Stats) -> Stats {
        Stats {
            count: self.count + o.count,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            sum: self.sum + o.sum,
        }
    }
}

/// How one axis' values find their bin; shared by both backends, so they
/// bin identically.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AxisPlan {
    /// The `bins + 1` edges (non-decreasing; strictly increasing except for
    /// adaptive bins).
    pub edges: Vec<f64>,
    /// `t[i]`: the smallest `f32` that is `>= edges[i]` (`+inf` for an
    /// edge above `f32::MAX`, `-f32::MAX` below `-f32::MAX`), so for a
    /// finite `f32` `v`,
    /// `v as f64 >= edges[i]` exactly when `v >= t[i]`: the `f64`
    /// comparison done with `f32` arithmetic.
    pub t: Vec<f32>,
    /// The largest `f32` that is `<= edges[bins]`: `v as f64 <= last edge`
    /// exactly when `v <= hi`.
    pub hi: f32,
    /// How a bin is found.
    pub mode: Mode,
    /// Estimate `((v or log2 v) - off) * scale` of the bin (corrected
    /// against `t` afterwards; only its speed depends on its accuracy).
    pub off: f32,
    /// See `off`.
    pub scale: f32,
}

/// How a bin is found: arithmetic estimate then correction, or binary
/// search. Codes shared with `kernels/histogram.cu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `(v - off) * scale`.
    Uniform = 0,
    /// `(log2 v - off) * scale`.
    Log = 1,
    /// Binary search of the threshold table.
    Search = 2,
}

impl AxisPlan {
    pub(crate) fn bins(&self) -> usize {
        self.edges.len() - 1
    }

    /// The plan of an edge table (validated by the caller), with the
    /// estimate of `mode` when it is usable in `f32`.
    pub(crate) fn new(edges: Vec<f64>, mode: Mode) -> Self {
        let bins = edges.len() - 1;
        let t: Vec<f32> = edges.iter().map(|&e| f32_at_or_above(e)).collect();
        let hi = f32_at_or_below(edges[bins]);
        let (lo_e, hi_e) = (edges[0], edges[bins]);
        let (off, width) = match mode {
            Mode::Uniform => (lo_e, hi_e - lo_e),
            Mode::Log => (lo_e.log2(), hi_e.log2() - lo_e.log2()),
            Mode::Search => (0.0, 1.0),
        };
        let (off, scale) = (off as f32, (bins as f64 / width) as f32);
        let usable = off.is_finite() && scale.is_finite() && scale > 0.0;
        Self {
            edges,
            t,
            hi,
            mode: if usable { mode } else { Mode::Search },
            off: if usable { off } else { 0.0 },
            scale: if usable { scale } else { 1.0 },
        }
    }

    /// Where a finite value goes: `Ok(bin)` or `Err(true)` below the first
    /// edge, `Err(false)` above the last.
    #[inline(always)]
    pub(crate) fn place(&self, v: f32) -> std::result::Result<usize, bool> {
        if v < self.t[0] {
            return Err(true);
        }
        if v > self.hi {
            return Err(false);
        }
        Ok(match self.mode {
            Mode::Uniform => self.correct(v, (v - self.off) * self.scale),
            Mode::Log => self.correct(v, (v.log2() - self.off) * self.scale),
            Mode::Search => self.search(v),
        })
    }

    /// The bin of `v` (with `t[0] <= v <= hi`) from an estimate: the `i`
    /// with `t[i] <= v < t[i + 1]` (the last bin for `v == hi`). The same
    /// steps as `va_hist_correct` in the kernels.
    #[inline(always)]
    pub(crate) fn correct(&self, v: f32, f: f32) -> usize {
        let last = self.t.len() - 2;
        let mut i = f.max(0.0).min(last as f32) as usize;
        while i > 0 && v < self.t[i] {
            i -= 1;
        }
        while i < last && v >= self.t[i + 1] {
            i += 1;
        }
        i
    }

    /// The last `i` with `t[i] <= v` (with `t[0] <= v <= hi`), at most the
    /// last bin: the number of thresholds `<= v`, minus one.
    #[inline(always)]
    pub(crate) fn search(&self, v: f32) -> usize {
        let n = self.t.partition_point(|&t| t <= v);
        (n - 1).min(self.t.len() - 2)
    }
}

/// The smallest `f32` at or above `e` (`+inf` above `f32::MAX`,
/// `-f32::MAX` below `-f32::MAX`).
fn f32_at_or_above(e: f64) -> f32 {
    let f = e as f32;
    if (f as f64) < e {
        f.next_up()
    } else {
        f
    }
}

/// The largest `f32` at or below `e`.
fn f32_at_or_below(e: f64) -> f32 {
    let f = e as f32;
    if (f as f64) > e {
        f.next_down()
    } else {
        f
    }
}

/// The most bins a histogram may have (for a 2-D histogram, `bins_x *
/// bins_y`): 2^24. Each bin takes 8 bytes of counts and 8 of edges on the
/// host, plus per-thread counts on the CPU; a larger request is an
/// [`Error::InvalidParameter`](crate::Error::InvalidParameter) naming this limit.
pub const MAX_BINS: usize = 1 << 24;

/// How the bin edges are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum BinSpec {
    /// `bins` equal-width bins over `range` (`lo < hi`, both finite), or
    /// over the finite values' `(min, max)` when `range` is `None` (NumPy's
    /// `(min - 0.5, max + 0.5)` when they are all equal). Edges are
    /// `lo + i * (hi - lo) / bins` (as `np.linspace`), the last one `hi`
    /// exactly.
    Uniform {
        /// Number of bins (at least 1).
        bins: usize,
        /// `(lo, hi)`, or `None` for the data's finite range.
        range: Option<(f64, f64)>,
    },
    /// `bins` logarithmic bins: edges `base^(l0 + i * (l1 - l0) / bins)`
    /// with `l0 = log_base(lo)`, `l1 = log_base(hi)` (the first and last
    /// edges are `lo` and `hi` exactly). The range must be positive. Values
    /// `<= 0` are out of range (counted in `below`, or added to the first
    /// bin with [`Outliers::Clip`]).
    ///
    /// With a given range the base does not change the edges (geometric
    /// spacing is the same in every base); it decides the default range:
    /// with `range: None` the positive finite values' `(min, max)` is
    /// widened to whole powers of the base (`base^floor(log_base(min))` ..
    /// `base^ceil(log_base(max))`, one power more when they coincide), so
    /// base 10 gives whole decades.
    Log {
        /// Number of bins (at least 1).
        bins: usize,
        /// Logarithm base: finite, positive and not 1.
        base: f64,
        /// `(lo, hi)` with `0 < lo < hi`, or `None` (see above).
        range: Option<(f64, f64)>,
    },
    /// Custom edges: at least 2, finite, strictly increasing (not
    /// necessarily evenly spaced). A value finds its bin by binary search.
    Edges(Vec<f64>),
    /// `bins` equal-frequency bins: the edges are the quantiles of the
    /// finite values at levels `i / bins`, with NumPy's default linear
    /// interpolation, as [`crate::stats::quantiles`] computes them on the
    /// context's backend (`f32` values widened to `f64`; the first edge is
    /// the minimum, the last the maximum). Repeated values can make several edges equal: a value goes
    /// into the last bin whose left edge is `<=` it, so a zero-width bin
    /// stays empty, except a zero-width last bin, which (closed) holds the
    /// values equal to the maximum.
    Adaptive {
        /// Number of bins (at least 1).
        bins: usize,
    },
}

/// What happens to finite values outside the edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Outliers {
    /// Count them in `below` / `above` (a 2-D pair outside either range in
    /// `outside`), not in any bin.
    #[default]
    Separate,
    /// Add them to the first / last bin (per coordinate in 2-D). `below`
    /// and `above` (2-D: `outside`) still say how many values were clipped.
    Clip,
}

/// Options of [`histogram`](crate::histogram::histogram) and [`histogram_2d`](crate::histogram::histogram_2d).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct HistogramOptions {
    /// Outliers counted apart (default) or clipped into the edge bins.
    pub outliers: Outliers,
    /// Also return the density `count / (total * width)` (NumPy's
    /// `density=True`), where `total` is the number of values in the bins
    /// (clipped outliers included). A zero-width bin has density 0 when
    /// empty and `+inf` when it holds values (only the closed last bin of
    /// an [`BinSpec::Adaptive`] spec can); with no value in any bin every
    /// density is 0 (never NaN).
    pub density: bool,
}

impl HistogramOptions {
    /// Sets how outliers are treated.
    pub fn with_outliers(mut self, outliers: Outliers) -> Self {
        self.outliers = outliers;
        self
    }
    /// Also returns densities.
    pub fn with_density(mut self, on: bool) -> Self {
        self.density = on;
        self
    }
}

/// A 1-D histogram.
///
/// With [`Outliers::Separate`], `sum(counts) + below + above + non_finite`
/// is the number of elements; with [`Outliers::Clip`], `sum(counts) +
/// non_finite` is.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// The `bins + 1` bin edges, increasing (`f64`).
    pub edges: Vec<f64>,
    /// Values per bin.
    pub counts: Vec<u64>,
    /// Finite values below the first edge (for logarithmic bins: also every
    /// value `<= 0`).
    pub below: u64,
    /// Finite values above the last edge.
    pub above: u64,
    /// NaN and infinite values (never binned).
    pub non_finite: u64,
    /// `count / (total * width)` per bin when [`HistogramOptions::density`]
    /// is set.
    pub density: Option<Vec<f64>>,
}

/// A 2-D histogram of pairs `(x_i, y_i)` (NumPy's `np.histogram2d`).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram2d {
    /// The `bins_x + 1` edges along x.
    pub edges_x: Vec<f64>,
    /// The `bins_y + 1` edges along y.
    pub edges_y: Vec<f64>,
    /// Pairs per cell, row-major `[bins_x x bins_y]`: cell `(i, j)` (x in
    /// bin `i`, y in bin `j`) is at `i * bins_y + j`.
    pub counts: Vec<u64>,
    /// Finite pairs outside the x range or the y range (each counted once).
    /// With [`Outliers::Clip`] they are in the edge cells, and this says how
    /// many were clipped.
    pub outside: u64,
    /// Pairs with a NaN or infinite coordinate (never binned).
    pub non_finite: u64,
    /// `count / (total * width_x * width_y)` per cell when
    /// [`HistogramOptions::density`] is set (same conventions as 1-D).
    pub density: Option<Vec<f64>>,
}

impl Histogram2d {
    /// Number of bins along x.
    pub fn bins_x(&self) -> usize {
        self.edges_x.len() - 1
    }
    /// Number of bins along y.
    pub fn bins_y(&self) -> usize {
        self.edges_y.len() - 1
    }
    /// Count of cell `(i, j)`.
    pub fn count(&self, i: usize, j: usize) -> u64 {
        self.counts[i * self.bins_y() + j]
    }
}

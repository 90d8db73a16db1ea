//! Histograms and kernel density estimation (SPEC 6): uniform, logarithmic,
//! custom-edge and adaptive (equal-frequency) bins, 2-D histograms, and a
//! Gaussian kernel density estimate on a grid.
//!
//! Every function takes a [`Context`](crate::Context) and any `f32`
//! [`Input`](crate::Input) (host rows or rows resident on the context's
//! device); all elements are used, flattened in row-major order. The CPU
//! implementation is the reference; CUDA gives identical counts.
//!
//! # Semantics (those of NumPy's `np.histogram`)
//!
//! - **Bins** are half-open `[e_i, e_{i+1})` except the last, which is closed
//!   `[e_{n-1}, e_n]`, so a value equal to the last edge is counted in the
//!   last bin. Edges are `f64`; a value `v` is in bin `i` exactly when
//!   `e_i <= v as f64 < e_{i+1}`, on both backends (uniform and logarithmic
//!   bins estimate the bin arithmetically and then correct it against the
//!   edge table, so a value on an edge is never off by one).
//! - **Non-finite values** (NaN, `+-inf`) are never binned: they are counted
//!   in `non_finite`, whatever the options.
//! - **Outliers** (finite values below the first edge or above the last):
//!   counted separately in `below` / `above` ([`Outliers::Separate`], the
//!   default) or added to the first / last bin ([`Outliers::Clip`]).
//! - **Ranges from the data** (no range given) use the finite values only:
//!   `(min, max)`, or NumPy's `(min - 0.5, max + 0.5)` when all finite values
//!   are equal.
//! - **Determinism**: counts are integers (integer atomics on CUDA), so the
//!   same input gives the same counts on every run and every backend.
//!
//! ```
//! use vector_accelerate::histogram::{histogram, BinSpec, HistogramOptions};
//! use vector_accelerate::{Context, Matrix};
//! let ctx = Context::cpu();
//! let x = Matrix::new(vec![0.0, 1.0, 1.5, 2.0, 3.0, 4.0, f32::NAN], 1).unwrap();
//! let bins = BinSpec::Uniform { bins: 4, range: Some((0.0, 4.0)) };
//! let h = histogram(&ctx, &x, &bins, &HistogramOptions::default()).unwrap();
//! assert_eq!(h.edges, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
//! assert_eq!(h.counts, vec![1, 2, 1, 2]); // 4.0 is in the closed last bin
//! assert_eq!((h.below, h.above, h.non_finite), (0, 0, 1));
//! ```

mod kde;

pub use kde::{kde, Bandwidth, Kde};

use crate::context::{Backend, Context};
use crate::cpu::histogram as cpu;
use crate::cpu::HostRows;
use crate::cuda;
use crate::error::{Error, Result};
use crate::matrix::Input;
use crate::ops::host_rows;

/// The most bins a histogram may have (for a 2-D histogram, `bins_x *
/// bins_y`): 2^24. Each bin takes 8 bytes of counts and 8 of edges on the
/// host, plus per-thread counts on the CPU; a larger request is an
/// [`Error::InvalidParameter`] naming this limit.
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

/// Options of [`histogram`] and [`histogram_2d`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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

/// Counts `x` into bins (NumPy `np.histogram`). See the [module
/// docs](self) for the semantics.
///
/// Errors: empty input; `bins == 0` or more than [`MAX_BINS`]; a range
/// with `lo >= hi` or a non-finite end; a log base `<= 0`, `== 1` or not
/// finite; a non-positive log range; custom edges fewer than 2, non-finite
/// or not strictly increasing; no finite (for logarithmic bins: positive)
/// value where the range or the adaptive edges must come from the data.
///
/// ```
/// use vector_accelerate::histogram::{histogram, BinSpec, HistogramOptions, Outliers};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let x = Matrix::new(vec![0.5, 1.0, 5.0, 10.0, 50.0, 200.0, -1.0], 1).unwrap();
/// let log = BinSpec::Log { bins: 2, base: 10.0, range: Some((1.0, 100.0)) };
/// let clip = HistogramOptions { outliers: Outliers::Clip, density: false };
/// let h = histogram(&ctx, &x, &log, &clip).unwrap();
/// assert_eq!(h.counts, vec![4, 3]); // 0.5 and -1 clipped low, 200 clipped high
/// assert_eq!((h.below, h.above), (2, 1));
/// let custom = BinSpec::Edges(vec![0.0, 1.0, 10.0, 1000.0]);
/// let h = histogram(&ctx, &x, &custom, &HistogramOptions::default()).unwrap();
/// assert_eq!(h.counts, vec![1, 2, 3]);
/// ```
pub fn histogram<'a>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    bins: &BinSpec,
    options: &HistogramOptions,
) -> Result<Histogram> {
    let x = x.into();
    check_input(ctx, &x, "values")?;
    let plan = axis_plan(ctx, &x, bins, "values")?;
    let clip = options.outliers == Outliers::Clip;
    let c = match ctx.backend() {
        Backend::Cpu => cpu::count_1d(host_f32(&x)?, &plan, clip),
        Backend::Cuda(dev) => cuda::histogram::count_1d(dev, &x, &plan, clip)?,
    };
    let density = options.density.then(|| density(&c.counts, &[&plan.edges]));
    Ok(Histogram {
        edges: plan.edges,
        counts: c.counts,
        below: c.below,
        above: c.above,
        non_finite: c.non_finite,
        density,
    })
}

/// Counts pairs `(x_i, y_i)` into a grid of cells (NumPy `np.histogram2d`):
/// `x` and `y` are flattened and must have the same number of elements.
/// Each axis has its own [`BinSpec`]; a range or adaptive edges taken from
/// the data use that coordinate's finite values (as NumPy takes each
/// coordinate's min and max). A pair with a non-finite coordinate is
/// counted in `non_finite`; a finite pair outside either range in
/// `outside` ([`Outliers::Separate`]) or clipped into the edge cells
/// ([`Outliers::Clip`]).
///
/// Errors: those of [`histogram`] per axis, `bins_x * bins_y` over
/// [`MAX_BINS`], and [`Error::DimensionMismatch`] when the element counts
/// differ.
///
/// ```
/// use vector_accelerate::histogram::{histogram_2d, BinSpec, HistogramOptions};
/// use vector_accelerate::{Context, Matrix};
/// let ctx = Context::cpu();
/// let x = Matrix::new(vec![0.1, 0.9, 0.9, 2.0], 1).unwrap();
/// let y = Matrix::new(vec![0.1, 0.1, 0.8, 0.5], 1).unwrap();
/// let spec = BinSpec::Uniform { bins: 2, range: Some((0.0, 1.0)) };
/// let h = histogram_2d(&ctx, &x, &y, &spec, &spec, &HistogramOptions::default()).unwrap();
/// assert_eq!(h.counts, vec![1, 0, 1, 1]); // [x bin 0: y bins 0, 1 | x bin 1: y bins 0, 1]
/// assert_eq!(h.outside, 1);
/// ```
pub fn histogram_2d<'a, 'b>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    y: impl Into<Input<'b>>,
    spec_x: &BinSpec,
    spec_y: &BinSpec,
    options: &HistogramOptions,
) -> Result<Histogram2d> {
    let (x, y) = (x.into(), y.into());
    check_input(ctx, &x, "x")?;
    check_input(ctx, &y, "y")?;
    let (nx, ny) = (x.rows() * x.dim(), y.rows() * y.dim());
    if nx != ny {
        return Err(Error::DimensionMismatch {
            what: "elements of y vs elements of x",
            expected: nx,
            got: ny,
        });
    }
    check_bins_2d(spec_x, spec_y)?;
    let px = axis_plan(ctx, &x, spec_x, "x")?;
    let py = axis_plan(ctx, &y, spec_y, "y")?;
    let cells = px.bins() * py.bins();
    if cells > MAX_BINS {
        return Err(too_many_bins(cells, "bins_x * bins_y"));
    }
    let clip = options.outliers == Outliers::Clip;
    let c = match ctx.backend() {
        Backend::Cpu => cpu::count_2d(host_f32(&x)?, host_f32(&y)?, &px, &py, clip),
        Backend::Cuda(dev) => cuda::histogram::count_2d(dev, &x, &y, &px, &py, clip)?,
    };
    let density = options
        .density
        .then(|| density(&c.counts, &[&px.edges, &py.edges]));
    Ok(Histogram2d {
        edges_x: px.edges,
        edges_y: py.edges,
        counts: c.counts,
        outside: c.outside,
        non_finite: c.non_finite,
        density,
    })
}

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

/// Validates an `f32` input of this family: not empty, not binary, not
/// 16-bit device rows, on the context's device.
pub(crate) fn check_input(ctx: &Context, x: &Input<'_>, what: &'static str) -> Result<()> {
    if x.rows() == 0 || x.dim() == 0 {
        return Err(Error::EmptyInput { what });
    }
    if x.is_binary() {
        return Err(Error::invalid(
            "input",
            format!("{what}: bit-packed binary rows"),
            "histograms and density estimates take f32 values",
        ));
    }
    if let Input::Resident(d) = x {
        d.check_device(ctx)?;
    }
    super::refuse_half(x, what)
}

/// The flat `f32` values of a host input (or of resident rows of a CPU
/// context).
pub(crate) fn host_f32<'a>(x: &'a Input<'a>) -> Result<&'a [f32]> {
    match host_rows(x)? {
        HostRows::F32(m) => Ok(m.as_slice()),
        HostRows::Bits(_) => Err(Error::invalid(
            "input",
            "bit-packed rows",
            "expected f32 rows",
        )),
    }
}

/// Statistics of the finite (positive when `positive`) values on the
/// context's backend (the sum only when `with_sum`; CUDA always has it).
pub(crate) fn stats(ctx: &Context, x: &Input<'_>, positive: bool, with_sum: bool) -> Result<Stats> {
    match ctx.backend() {
        Backend::Cpu => Ok(cpu::stats(host_f32(x)?, positive, with_sum)),
        Backend::Cuda(dev) => cuda::histogram::stats(dev, x, positive),
    }
}

fn too_many_bins(bins: usize, what: &str) -> Error {
    Error::invalid(
        "bins",
        bins,
        format!(
            "{what} is more than MAX_BINS = {MAX_BINS}: the counts, edges and per-thread \
             counts of that many bins would take {} MiB or more",
            bins.saturating_mul(24) >> 20
        ),
    )
}

fn check_count(bins: usize) -> Result<()> {
    if bins == 0 {
        return Err(Error::invalid("bins", 0, "at least one bin is needed"));
    }
    if bins > MAX_BINS {
        return Err(too_many_bins(bins, "the number of bins"));
    }
    Ok(())
}

fn check_range(r: (f64, f64)) -> Result<()> {
    let (lo, hi) = r;
    if !lo.is_finite() || !hi.is_finite() || lo >= hi {
        return Err(Error::invalid(
            "range",
            format!("({lo}, {hi})"),
            "needs finite lo < hi",
        ));
    }
    Ok(())
}

fn check_base(base: f64) -> Result<()> {
    if !base.is_finite() || base <= 0.0 || base == 1.0 {
        return Err(Error::invalid(
            "log base",
            base,
            "must be finite, positive and not 1",
        ));
    }
    Ok(())
}

fn check_edges(e: &[f64]) -> Result<()> {
    if e.len() < 2 {
        return Err(Error::invalid(
            "edges",
            format!("{} edge(s)", e.len()),
            "at least 2 edges (one bin) are needed",
        ));
    }
    if e.len() - 1 > MAX_BINS {
        return Err(too_many_bins(e.len() - 1, "the number of bins"));
    }
    if let Some(i) = e.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(
            "edges",
            format!("edge {i} = {}", e[i]),
            "edges must be finite",
        ));
    }
    if let Some(i) = e.windows(2).position(|w| w[0] >= w[1]) {
        return Err(Error::invalid(
            "edges",
            format!("edge {i} = {}, edge {} = {}", e[i], i + 1, e[i + 1]),
            "edges must be strictly increasing",
        ));
    }
    Ok(())
}

/// Validates a spec on its own (before any data is read).
fn check_spec(spec: &BinSpec) -> Result<()> {
    match spec {
        BinSpec::Uniform { bins, range } => {
            check_count(*bins)?;
            range.map_or(Ok(()), check_range)
        }
        BinSpec::Log { bins, base, range } => {
            check_count(*bins)?;
            check_base(*base)?;
            if let Some(r) = *range {
                check_range(r)?;
                if r.0 <= 0.0 {
                    return Err(Error::invalid(
                        "log range",
                        format!("({}, {})", r.0, r.1),
                        "logarithmic bins need a positive range (0 < lo < hi)",
                    ));
                }
            }
            Ok(())
        }
        BinSpec::Edges(e) => check_edges(e),
        BinSpec::Adaptive { bins } => check_count(*bins),
    }
}

fn spec_bins(spec: &BinSpec) -> usize {
    match spec {
        BinSpec::Uniform { bins, .. } | BinSpec::Log { bins, .. } | BinSpec::Adaptive { bins } => {
            *bins
        }
        BinSpec::Edges(e) => e.len().saturating_sub(1),
    }
}

/// Both specs valid and their cells within [`MAX_BINS`] (before any data
/// is read).
fn check_bins_2d(sx: &BinSpec, sy: &BinSpec) -> Result<()> {
    check_spec(sx)?;
    check_spec(sy)?;
    let (bx, by) = (spec_bins(sx), spec_bins(sy));
    match bx.checked_mul(by) {
        Some(c) if c <= MAX_BINS => Ok(()),
        _ => Err(too_many_bins(bx.saturating_mul(by), "bins_x * bins_y")),
    }
}

/// Edges that must be strictly increasing and finite after construction
/// (a range too narrow for the number of bins in `f64` is refused).
fn checked_edges(edges: Vec<f64>, what: &str) -> Result<Vec<f64>> {
    let bad = edges.iter().any(|e| !e.is_finite()) || edges.windows(2).any(|w| w[0] >= w[1]);
    if bad {
        let (lo, hi) = (edges[0], edges[edges.len() - 1]);
        return Err(Error::invalid(
            "range",
            format!("({lo}, {hi})"),
            format!(
                "{what}: cannot be split into {} strictly increasing finite f64 edges",
                edges.len()
            ),
        ));
    }
    Ok(edges)
}

/// `bins + 1` evenly spaced edges (as `np.linspace`: `i * step + lo`, the
/// last one `hi`).
pub(crate) fn uniform_edges(lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let step = (hi - lo) / bins as f64;
    (0..=bins)
        .map(|i| if i == bins { hi } else { i as f64 * step + lo })
        .collect()
}

/// `bins + 1` logarithmic edges `base^(l0 + i (l1 - l0) / bins)`, the ends
/// `lo` and `hi` exactly.
fn log_edges(lo: f64, hi: f64, bins: usize, base: f64) -> Vec<f64> {
    let (l0, l1) = (lo.log(base), hi.log(base));
    (0..=bins)
        .map(|i| match i {
            0 => lo,
            _ if i == bins => hi,
            _ => base.powf(l0 + i as f64 * (l1 - l0) / bins as f64),
        })
        .collect()
}

/// The default logarithmic range: positive `(min, max)` widened to whole
/// powers of `base`.
fn log_range(min: f64, max: f64, base: f64) -> (f64, f64) {
    let (a, b) = (min.log(base), max.log(base));
    // Exponents p, q with base^p <= min and base^q >= max.
    let up = base > 1.0;
    let (mut p, mut q) = if up {
        (a.floor(), b.ceil())
    } else {
        (a.ceil(), b.floor())
    };
    let step = if up { 1.0 } else { -1.0 };
    // powf may round across the data's ends: widen until they are covered.
    while base.powf(p) > min {
        p -= step;
    }
    while base.powf(q) < max {
        q += step;
    }
    if p == q {
        q += step;
    }
    (base.powf(p), base.powf(q))
}

/// The edges of `spec` for the data `x` (which must not be empty), as a
/// binning plan.
pub(crate) fn axis_plan(
    ctx: &Context,
    x: &Input<'_>,
    spec: &BinSpec,
    what: &'static str,
) -> Result<AxisPlan> {
    check_spec(spec)?;
    let no_finite = |positive: bool| {
        Error::invalid(
            "range",
            "None",
            format!(
                "{what} has no {} value to take the range from; give a range",
                if positive {
                    "positive finite"
                } else {
                    "finite"
                }
            ),
        )
    };
    Ok(match spec {
        BinSpec::Uniform { bins, range } => {
            let (lo, hi) = match *range {
                Some(r) => r,
                None => {
                    let s = stats(ctx, x, false, false)?;
                    if s.count == 0 {
                        return Err(no_finite(false));
                    }
                    let (lo, hi) = (s.min as f64, s.max as f64);
                    if lo == hi {
                        (lo - 0.5, hi + 0.5)
                    } else {
                        (lo, hi)
                    }
                }
            };
            let e = checked_edges(uniform_edges(lo, hi, *bins), "uniform bins")?;
            AxisPlan::new(e, Mode::Uniform)
        }
        BinSpec::Log { bins, base, range } => {
            let (lo, hi) = match *range {
                Some(r) => r,
                None => {
                    let s = stats(ctx, x, true, false)?;
                    if s.count == 0 {
                        return Err(no_finite(true));
                    }
                    log_range(s.min as f64, s.max as f64, *base)
                }
            };
            let e = checked_edges(log_edges(lo, hi, *bins, *base), "logarithmic bins")?;
            AxisPlan::new(e, Mode::Log)
        }
        BinSpec::Edges(e) => AxisPlan::new(e.clone(), Mode::Search),
        BinSpec::Adaptive { bins } => {
            AxisPlan::new(equal_frequency_edges(ctx, x, *bins, what)?, Mode::Search)
        }
    })
}

/// The `bins + 1` equal-frequency edges of `x`: quantiles of its finite
/// values at `i / bins` with NumPy's linear method, found on the context's
/// backend by [`crate::stats::quantiles`] (on CUDA the data stay on the
/// device), widened to `f64`.
pub(crate) fn equal_frequency_edges(
    ctx: &Context,
    x: &Input<'_>,
    bins: usize,
    what: &'static str,
) -> Result<Vec<f64>> {
    use crate::stats::{quantiles, Axis, StatsOptions};
    let levels: Vec<f64> = (0..=bins).map(|i| i as f64 / bins as f64).collect();
    match quantiles(
        ctx,
        *x,
        &levels,
        Axis::All,
        StatsOptions::skipping_non_finite(),
    ) {
        Ok(q) => Ok(q[0].iter().map(|&v| v as f64).collect()),
        Err(Error::InvalidParameter { value, .. }) if value.contains("no finite value") => {
            Err(Error::invalid(
                "adaptive bins",
                bins,
                format!("{what} has no finite value to take quantiles of"),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Density `count / (total * volume)` of each cell of a histogram with
/// `axes` edge tables (row-major cells); see [`HistogramOptions::density`].
fn density(counts: &[u64], axes: &[&Vec<f64>]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    let widths: Vec<Vec<f64>> = axes
        .iter()
        .map(|e| e.windows(2).map(|w| w[1] - w[0]).collect())
        .collect();
    let inner = if axes.len() == 2 { widths[1].len() } else { 1 };
    counts
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let vol = if axes.len() == 2 {
                widths[0][k / inner] * widths[1][k % inner]
            } else {
                widths[0][k]
            };
            if c == 0 || total == 0 {
                0.0
            } else if vol == 0.0 {
                f64::INFINITY
            } else {
                c as f64 / (total as f64 * vol)
            }
        })
        .collect()
}

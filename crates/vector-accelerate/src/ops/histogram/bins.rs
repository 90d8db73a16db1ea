//! Counting: 1-D and 2-D histograms and the binning plans they share with
//! kernel density estimation.

use crate::core::error::{Error, Result};
use crate::core::histogram::{
    AxisPlan, BinSpec, Histogram, Histogram2d, HistogramOptions, Mode, Outliers, Stats, MAX_BINS,
};
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// Counts `x` into bins (NumPy `np.histogram`). See the [module
/// docs](crate::histogram) for the semantics.
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
/// let clip = HistogramOptions::default().with_outliers(Outliers::Clip);
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
    let c = ctx.backend().count_1d(&x, &plan, clip)?;
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
/// let h = histogram_2d(&ctx, &x, &y, (&spec, &spec), &HistogramOptions::default()).unwrap();
/// assert_eq!(h.counts, vec![1, 0, 1, 1]); // [x bin 0: y bins 0, 1 | x bin 1: y bins 0, 1]
/// assert_eq!(h.outside, 1);
/// ```
pub fn histogram_2d<'a, 'b>(
    ctx: &Context,
    x: impl Into<Input<'a>>,
    y: impl Into<Input<'b>>,
    (spec_x, spec_y): (&BinSpec, &BinSpec),
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
    let c = ctx.backend().count_2d((&x, &y), (&px, &py), clip)?;
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
    crate::ops::refuse_half(x, what)
}

/// Statistics of the finite (positive when `positive`) values on the
/// context's backend (the sum only when `with_sum`; CUDA always has it).
pub(crate) fn stats(ctx: &Context, x: &Input<'_>, positive: bool, with_sum: bool) -> Result<Stats> {
    ctx.backend().finite_stats(x, positive, with_sum)
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
    use crate::core::stats::StatsOptions;
    use crate::core::vector::Axis;
    use crate::ops::stats::quantile::quantiles;
    let levels: Vec<f64> = (0..=bins).map(|i| i as f64 / bins as f64).collect();
    match quantiles(
        ctx,
        *x,
        &levels,
        Axis::All,
        &StatsOptions::default().with_skip_non_finite(true),
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

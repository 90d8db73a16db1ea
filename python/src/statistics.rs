//! Statistics and histograms with NumPy's conventions: `describe`,
//! `quantile`, `median`, `cov`, `corrcoef`, `histogram`, `histogram2d`
//! (`axis=None` every element, `0` per column, `1` per row).

use ::vector_accelerate as va;
use ::vector_accelerate::histogram::{BinSpec, Histogram, HistogramOptions};
use ::vector_accelerate::stats::{self, Axis, StatsOptions};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{f32_rows, matrix_to_numpy, with_rows};
use crate::context;
use crate::errors::to_py;

/// `x` as a 2-D array: a 1-D array becomes one column (so every axis of a
/// vector is the whole vector, as in NumPy).
fn two_d<'py>(x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let a = x.py().import("numpy")?.call_method1("asarray", (x,))?;
    match a.getattr("ndim")?.extract::<usize>()? {
        1 => a.call_method1("reshape", ((-1i64, 1i64),)),
        _ => Ok(a),
    }
}

/// NumPy's `axis` as the library's.
fn axis_of(axis: Option<usize>) -> PyResult<Axis> {
    match axis {
        None => Ok(Axis::All),
        Some(0) => Ok(Axis::PerColumn),
        Some(1) => Ok(Axis::PerRow),
        Some(a) => Err(PyValueError::new_err(format!(
            "axis {a}: expected None, 0 or 1 (2-D input)"
        ))),
    }
}

fn stats_options(skip_nonfinite: bool) -> StatsOptions {
    StatsOptions::default().with_skip_non_finite(skip_nonfinite)
}

/// Summary statistics along `axis` in one pass: a dict of float64 arrays
/// (`count`, `mean`, `var`, `std` with `ddof`, `min`, `max`, `skewness`,
/// `kurtosis` (excess, bias-corrected off)); one value each for
/// `axis=None`. Non-finite values are a ValueError unless `skip_nonfinite`.
#[pyfunction]
#[pyo3(signature = (x, axis = None, *, ddof = 1, skip_nonfinite = false))]
fn describe<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: Option<usize>,
    ddof: u64,
    skip_nonfinite: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let (ctx, axis, opts) = (&context()?, axis_of(axis)?, stats_options(skip_nonfinite));
    let m = with_rows(py, &two_d(x)?, |v| stats::describe(ctx, v, axis, &opts))?;
    let col = |f: &dyn Fn(&stats::Moments) -> Option<f64>| -> Vec<f64> {
        m.iter().map(|s| f(s).unwrap_or(f64::NAN)).collect()
    };
    let d = PyDict::new(py);
    let counts: Vec<u64> = m.iter().map(|s| s.count()).collect();
    d.set_item("count", PyArray1::from_vec(py, counts))?;
    d.set_item("mean", PyArray1::from_vec(py, col(&|s| s.mean())))?;
    d.set_item("var", PyArray1::from_vec(py, col(&|s| s.variance(ddof))))?;
    d.set_item("std", PyArray1::from_vec(py, col(&|s| s.std(ddof))))?;
    d.set_item(
        "min",
        PyArray1::from_vec(py, col(&|s| s.min().map(f64::from))),
    )?;
    d.set_item(
        "max",
        PyArray1::from_vec(py, col(&|s| s.max().map(f64::from))),
    )?;
    d.set_item(
        "skewness",
        PyArray1::from_vec(py, col(&|s| s.skewness(true))),
    )?;
    d.set_item(
        "kurtosis",
        PyArray1::from_vec(py, col(&|s| s.kurtosis(true))),
    )?;
    Ok(d)
}

/// The quantiles `q` (levels in [0, 1], linear interpolation as NumPy's
/// default) along `axis`: shape `[len(q)]` for `axis=None`, `[len(q), n]`
/// otherwise (a scalar `q` drops the first axis), as `np.quantile`.
#[pyfunction]
#[pyo3(signature = (x, q, axis = None, *, skip_nonfinite = false))]
fn quantile<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    axis: Option<usize>,
    skip_nonfinite: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let scalar = q.extract::<f64>().ok();
    let levels: Vec<f64> = match scalar {
        Some(v) => vec![v],
        None => q.extract()?,
    };
    let (ctx, ax, opts) = (&context()?, axis_of(axis)?, stats_options(skip_nonfinite));
    let per = with_rows(py, &two_d(x)?, |v| {
        stats::quantiles(ctx, v, &levels, ax, &opts)
    })?;
    // `per[segment][level]` -> `[level, segment]`.
    let (segments, nl) = (per.len(), levels.len());
    let flat: Vec<f32> = (0..nl)
        .flat_map(|l| per.iter().map(move |s| s[l]))
        .collect();
    let a = PyArray1::from_vec(py, flat);
    let shaped = match (scalar.is_some(), axis.is_none()) {
        (true, true) => a.get_item(0)?,
        (true, false) => a.into_any(),
        (false, true) => a.into_any(),
        (false, false) => a.reshape([nl, segments])?.into_any(),
    };
    Ok(shaped)
}

/// The median along `axis` (`quantile(x, 0.5, axis)`).
#[pyfunction]
#[pyo3(signature = (x, axis = None, *, skip_nonfinite = false))]
fn median<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: Option<usize>,
    skip_nonfinite: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let half = 0.5f64.into_pyobject(py)?.into_any();
    quantile(py, x, &half, axis, skip_nonfinite)
}

/// The covariance of the columns of `x` `[n, d]` (observations in rows):
/// `float32 [d, d]`, as `np.cov(x, rowvar=False, ddof=ddof)`.
#[pyfunction]
#[pyo3(signature = (x, ddof = 1))]
fn cov<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    ddof: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let ctx = &context()?;
    matrix_to_numpy(py, with_rows(py, x, |v| stats::covariance(ctx, v, ddof))?)
}

/// The Pearson correlation of the columns of `x` `[n, d]`: `float32 [d,
/// d]`, as `np.corrcoef(x, rowvar=False)`.
#[pyfunction]
fn corrcoef<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let ctx = &context()?;
    matrix_to_numpy(py, with_rows(py, x, |v| stats::correlation(ctx, v))?)
}

/// `bins` as NumPy gives it: a count (uniform over `range`, or the finite
/// data's range) or the edges.
fn bin_spec(bins: &Bound<'_, PyAny>, range: Option<(f64, f64)>) -> PyResult<BinSpec> {
    if let Ok(n) = bins.extract::<usize>() {
        return Ok(BinSpec::Uniform { bins: n, range });
    }
    if range.is_some() {
        return Err(PyValueError::new_err("range applies only to a bin count"));
    }
    Ok(BinSpec::Edges(bins.extract()?))
}

/// Counts (or, with `density`, densities) of `x` in bins, and the bin
/// edges, as `np.histogram(x, bins, range, density)`: values outside the
/// bins and non-finite values are left out.
#[pyfunction]
#[pyo3(signature = (x, bins = None, range = None, density = false))]
fn histogram<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    bins: Option<&Bound<'py, PyAny>>,
    range: Option<(f64, f64)>,
    density: bool,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyArray1<f64>>)> {
    let ten = 10usize.into_pyobject(py)?.into_any();
    let spec = bin_spec(bins.unwrap_or(&ten), range)?;
    let opts = HistogramOptions::default().with_density(density);
    let ctx = &context()?;
    let flat = py.import("numpy")?.call_method1("ravel", (x,))?;
    let h: Histogram = with_rows(py, &two_d(&flat)?, |v| {
        va::histogram::histogram(ctx, v, &spec, &opts)
    })?;
    let values = match h.density {
        Some(d) => PyArray1::from_vec(py, d).into_any(),
        None => PyArray1::from_vec(py, h.counts.into_iter().map(|c| c as i64).collect()).into_any(),
    };
    Ok((values, PyArray1::from_vec(py, h.edges)))
}

/// `(H, xedges, yedges)` of [`histogram2d`].
type Histogram2dArrays<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

/// `(H, xedges, yedges)` of the pairs `(x[i], y[i])` as `np.histogram2d`:
/// `H[i, j]` counts x bin `i`, y bin `j` (densities with `density`).
#[pyfunction]
#[pyo3(signature = (x, y, bins = None, range = None, density = false))]
fn histogram2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    bins: Option<&Bound<'py, PyAny>>,
    range: Option<[(f64, f64); 2]>,
    density: bool,
) -> PyResult<Histogram2dArrays<'py>> {
    let ten = 10usize.into_pyobject(py)?.into_any();
    let bins = bins.unwrap_or(&ten);
    let (rx, ry) = (range.map(|r| r[0]), range.map(|r| r[1]));
    let (sx, sy) = match bins.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>() {
        Ok((bx, by)) if bins.extract::<Vec<f64>>().is_err() => {
            (bin_spec(&bx, rx)?, bin_spec(&by, ry)?)
        }
        _ => (bin_spec(bins, rx)?, bin_spec(bins, ry)?),
    };
    let opts = HistogramOptions::default().with_density(density);
    let ctx = &context()?;
    let np = py.import("numpy")?;
    let fx = two_d(&np.call_method1("ravel", (x,))?)?;
    let fy = two_d(&np.call_method1("ravel", (y,))?)?;
    let (ax, ay) = (f32_rows(&fx, "x")?, f32_rows(&fy, "y")?);
    let (rx, ry) = (ax.readonly(), ay.readonly());
    let vx = va::MatrixView::new(rx.as_slice()?, 1).map_err(to_py)?;
    let vy = va::MatrixView::new(ry.as_slice()?, 1).map_err(to_py)?;
    let h = py
        .detach(|| va::histogram::histogram_2d(ctx, vx, vy, (&sx, &sy), &opts))
        .map_err(to_py)?;
    let (bx, by) = (h.bins_x(), h.bins_y());
    let values = match h.density {
        Some(d) => PyArray1::from_vec(py, d).reshape([bx, by])?.into_any(),
        None => {
            let c: Vec<i64> = h.counts.iter().map(|&c| c as i64).collect();
            PyArray1::from_vec(py, c).reshape([bx, by])?.into_any()
        }
    };
    Ok((
        values,
        PyArray1::from_vec(py, h.edges_x),
        PyArray1::from_vec(py, h.edges_y),
    ))
}

/// Adds the statistics functions to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(describe, m)?)?;
    m.add_function(wrap_pyfunction!(quantile, m)?)?;
    m.add_function(wrap_pyfunction!(median, m)?)?;
    m.add_function(wrap_pyfunction!(cov, m)?)?;
    m.add_function(wrap_pyfunction!(corrcoef, m)?)?;
    m.add_function(wrap_pyfunction!(histogram, m)?)?;
    m.add_function(wrap_pyfunction!(histogram2d, m)?)
}

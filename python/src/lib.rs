//! `vector_accelerate` for Python: exact k-NN and the vector index on NumPy
//! arrays, shaped like FAISS (`knn`, `index_factory`, `.search -> (D, I)`,
//! `write_index` / `read_index`). The GIL is released during every
//! computation; the GPU is used when one is present.

mod arrays;
mod device;
mod dlpack;
mod durable;
mod durable_multi;
mod errors;
mod families;
mod index;
mod multi;
mod quantizers;
mod statistics;

use ::vector_accelerate as va;
use pyo3::prelude::*;

use arrays::{binary_rows, neighbors_to_numpy};
pub(crate) use device::context;
use dlpack::rows_arg;
use errors::to_py;
use pyo3::exceptions::PyValueError;

/// FAISS's metric numbers, accepted beside names.
const METRIC_INNER_PRODUCT: i64 = 0;
const METRIC_L2: i64 = 1;

/// A metric from a name (`"l2"`, `"ip"`, `"cosine"`, ...) or FAISS's
/// numbers (`METRIC_L2`, `METRIC_INNER_PRODUCT`).
pub(crate) fn metric_of(m: &Bound<'_, PyAny>) -> PyResult<va::Metric> {
    if let Ok(n) = m.extract::<i64>() {
        return match n {
            METRIC_L2 => Ok(va::Metric::L2),
            METRIC_INNER_PRODUCT => Ok(va::Metric::InnerProduct),
            _ => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "metric {n}: expected METRIC_L2 (1), METRIC_INNER_PRODUCT (0) or a name"
            ))),
        };
    }
    let name: String = m.extract()?;
    name.parse::<va::Metric>().map_err(to_py)
}

/// The `k` nearest rows of `xb` for every row of `xq`: `(D, I)`, distances
/// `float32 [nq, k]` best first and row numbers `int64 [nq, k]` (-1 where
/// `xb` has fewer than `k` rows). NumPy arrays give NumPy arrays; PyTorch or
/// CuPy CUDA tensors are read in place and give tensors of the same kind
/// on the same device, never copied through the host.
#[pyfunction]
#[pyo3(signature = (xq, xb, k, metric = None))]
fn knn<'py>(
    py: Python<'py>,
    xq: &Bound<'py, PyAny>,
    xb: &Bound<'py, PyAny>,
    k: usize,
    metric: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let ctx = context()?;
    match (binary_rows(xq, "xq")?, binary_rows(xb, "xb")?) {
        (Some(q), Some(x)) => {
            let metric = metric.map_or(Ok(va::Metric::Hamming), metric_of)?;
            let nn = py.detach(|| va::knn(&ctx, q.view(), x.view(), k, metric));
            return neighbors_to_numpy(py, nn.map_err(to_py)?)
                .map(|(d, i)| (d.into_any(), i.into_any()));
        }
        (None, None) => {}
        _ => {
            return Err(PyValueError::new_err(
                "xq and xb: both or neither must be uint8 bit-packed binary vectors",
            ))
        }
    }
    let metric = metric.map_or(Ok(va::Metric::L2), metric_of)?;
    let (q, caller) = rows_arg(xq, "xq", &ctx)?;
    let (x, _) = rows_arg(xb, "xb", &ctx)?;
    let (qi, xi) = (q.input()?, x.input()?);
    let opts = va::KnnOptions::default().with_metric(metric);
    if caller.on_device() {
        let r = py.detach(|| va::knn_resident(&ctx, qi, xi, k, &opts));
        return caller.resident(py, &ctx, r.map_err(to_py)?);
    }
    let nn = py.detach(|| va::knn_with(&ctx, qi, xi, k, &opts));
    caller.neighbors(py, &ctx, nn.map_err(to_py)?)
}

/// Seconds of each of `repeats` bare library k-NN calls (squared L2) on
/// `xq` and `xb`, converted once, timed inside the library: the reference
/// the binding's overhead is measured against (`bench/python_overhead.py`).
/// `resident`: results left on the device (as for CUDA tensors).
#[pyfunction]
#[pyo3(signature = (xq, xb, k, repeats, resident = false))]
fn _knn_call_seconds(
    py: Python<'_>,
    xq: &Bound<'_, PyAny>,
    xb: &Bound<'_, PyAny>,
    k: usize,
    repeats: usize,
    resident: bool,
) -> PyResult<Vec<f64>> {
    let ctx = context()?;
    let (q, _) = rows_arg(xq, "xq", &ctx)?;
    let (x, _) = rows_arg(xb, "xb", &ctx)?;
    let (qi, xi) = (q.input()?, x.input()?);
    let opts = va::KnnOptions::default();
    let timed = || -> va::Result<f64> {
        let t = std::time::Instant::now();
        if resident {
            va::knn_resident(&ctx, qi, xi, k, &opts)?;
        } else {
            va::knn_with(&ctx, qi, xi, k, &opts)?;
        }
        Ok(t.elapsed().as_secs_f64())
    };
    py.detach(|| {
        (0..repeats)
            .map(|_| timed())
            .collect::<va::Result<Vec<f64>>>()
    })
    .map_err(to_py)
}

/// The Python module.
#[pymodule(name = "vector_accelerate")]
fn py_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("METRIC_L2", METRIC_L2)?;
    m.add("METRIC_INNER_PRODUCT", METRIC_INNER_PRODUCT)?;
    m.add(
        "VectorAccelerateError",
        m.py().get_type::<errors::VectorAccelerateError>(),
    )?;
    device::register(m)?;
    m.add_function(wrap_pyfunction!(knn, m)?)?;
    m.add_function(wrap_pyfunction!(_knn_call_seconds, m)?)?;
    m.add_class::<dlpack::DLPackTensor>()?;
    families::register(m)?;
    quantizers::register(m)?;
    statistics::register(m)?;
    durable::register(m)?;
    multi::register(m)?;
    durable_multi::register(m)?;
    index::register(m)
}

//! `vector_accelerate` for Python: exact k-NN and the vector index on NumPy
//! arrays, shaped like FAISS (`knn`, `index_factory`, `.search -> (D, I)`,
//! `write_index` / `read_index`). The GIL is released during every
//! computation; the GPU is used when one is present.

mod arrays;
mod errors;
mod families;
mod index;
mod quantizers;

use std::sync::OnceLock;

use ::vector_accelerate as va;
use numpy::PyArrayMethods;
use pyo3::prelude::*;

use arrays::{f32_rows, neighbors_to_numpy, shape, DistancesIds};
use errors::to_py;

/// FAISS's metric numbers, accepted beside names.
const METRIC_INNER_PRODUCT: i64 = 0;
const METRIC_L2: i64 = 1;

/// The module's context: the GPU when one is usable, else the CPU.
pub(crate) fn context() -> PyResult<&'static va::Context> {
    static CTX: OnceLock<va::Context> = OnceLock::new();
    if let Some(c) = CTX.get() {
        return Ok(c);
    }
    let c = va::Context::new().map_err(to_py)?;
    Ok(CTX.get_or_init(|| c))
}

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

/// The device computations run on (`"cpu"` or `"cuda:N"`).
#[pyfunction]
fn device() -> PyResult<String> {
    Ok(context()?.device().to_string())
}

/// The `k` nearest rows of `xb` for every row of `xq`: `(D, I)`, distances
/// `float32 [nq, k]` best first and row numbers `int64 [nq, k]` (-1 where
/// `xb` has fewer than `k` rows).
#[pyfunction]
#[pyo3(signature = (xq, xb, k, metric = None))]
fn knn<'py>(
    py: Python<'py>,
    xq: &Bound<'py, PyAny>,
    xb: &Bound<'py, PyAny>,
    k: usize,
    metric: Option<&Bound<'py, PyAny>>,
) -> PyResult<DistancesIds<'py>> {
    let metric = metric.map_or(Ok(va::Metric::L2), metric_of)?;
    let (q, x) = (f32_rows(xq, "xq")?, f32_rows(xb, "xb")?);
    let (qv, xv) = (q.readonly(), x.readonly());
    let (qs, xs) = (qv.as_slice()?, xv.as_slice()?);
    let (qd, xd) = (shape(&q).1, shape(&x).1);
    let ctx = context()?;
    let nn = py.detach(|| {
        let qm = va::MatrixView::new(qs, qd)?;
        let xm = va::MatrixView::new(xs, xd)?;
        va::knn(ctx, qm, xm, k, metric)
    });
    neighbors_to_numpy(py, nn.map_err(to_py)?)
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
    m.add_function(wrap_pyfunction!(device, m)?)?;
    m.add_function(wrap_pyfunction!(knn, m)?)?;
    families::register(m)?;
    quantizers::register(m)?;
    index::register(m)
}

//! The other families users reach for from Python: k-means (a function and
//! FAISS's `Kmeans` class), normalisation and matrix products.

use ::vector_accelerate as va;
use ::vector_accelerate::cluster::{kmeans as va_kmeans, KMeansOptions};
use ::vector_accelerate::linalg::{gemm as va_gemm, GemmOptions};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;

use crate::arrays::{
    f32_rows, matrix_to_numpy, neighbors_to_numpy, py_bool, shape, with_rows, DistancesIds,
};
use crate::context;
use crate::errors::to_py;

/// `(centroids, assignments, inertia)` of [`kmeans`].
type KMeansArrays<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray1<i64>>, f64);

/// k-means of the rows of `x` (k-means++ start, Lloyd iterations; cosine
/// distance on unit centroids when `spherical`): `(centroids [k, d],
/// assignments int64 [n], inertia)`.
#[pyfunction]
#[pyo3(signature = (x, k, *, niter = 25, seed = 1234, spherical = false))]
fn kmeans<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    k: usize,
    niter: usize,
    seed: u64,
    spherical: bool,
) -> PyResult<KMeansArrays<'py>> {
    let ctx = &context()?;
    let opts = KMeansOptions::new(k)
        .with_max_iterations(niter)
        .with_seed(seed)
        .with_spherical(spherical);
    let km = with_rows(py, x, |v| va_kmeans(ctx, v, &opts))?;
    let assign: Vec<i64> = km.assignments.iter().map(|&a| a as i64).collect();
    Ok((
        matrix_to_numpy(py, km.centroids)?,
        PyArray1::from_vec(py, assign),
        km.inertia,
    ))
}

/// FAISS's `Kmeans`: `Kmeans(d, k, niter=25)`, `.train(x)`, then
/// `.centroids`, `.obj` (the final inertia) and `.assign(x) -> (D, I)`.
#[pyclass(name = "Kmeans", module = "vector_accelerate")]
struct PyKmeans {
    d: usize,
    k: usize,
    niter: usize,
    seed: u64,
    spherical: bool,
    centroids: Option<va::Matrix>,
    #[pyo3(get)]
    obj: Vec<f64>,
}

#[pymethods]
impl PyKmeans {
    fn __repr__(&self) -> String {
        format!(
            "Kmeans(d={}, k={}, niter={}, spherical={}, trained={})",
            self.d,
            self.k,
            self.niter,
            py_bool(self.spherical),
            py_bool(self.centroids.is_some())
        )
    }
    #[new]
    #[pyo3(signature = (d, k, *, niter = 25, seed = 1234, spherical = false))]
    fn new(d: usize, k: usize, niter: usize, seed: u64, spherical: bool) -> Self {
        Self {
            d,
            k,
            niter,
            seed,
            spherical,
            centroids: None,
            obj: Vec::new(),
        }
    }

    /// Trains on the rows of `x` `[n, d]`.
    fn train(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let x = f32_rows(x, "x")?;
        let (_, d) = shape(&x);
        if d != self.d {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "x has {d} columns; this Kmeans has d = {}",
                self.d
            )));
        }
        let ctx = &context()?;
        let opts = KMeansOptions::new(self.k)
            .with_max_iterations(self.niter)
            .with_seed(self.seed)
            .with_spherical(self.spherical);
        let km = with_rows(py, x.as_any(), |v| va_kmeans(ctx, v, &opts))?;
        self.obj = vec![km.inertia];
        self.centroids = Some(km.centroids);
        Ok(())
    }

    /// The trained centroids `[k, d]` (None before training).
    #[getter]
    fn centroids<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray2<f32>>>> {
        self.centroids
            .clone()
            .map(|c| matrix_to_numpy(py, c))
            .transpose()
    }

    /// The nearest centroid of each row of `x`: `(D, I)` with one column.
    fn assign<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<DistancesIds<'py>> {
        let Some(c) = &self.centroids else {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "assign: the Kmeans is not trained (call train first)",
            ));
        };
        let ctx = &context()?;
        let metric = if self.spherical {
            va::Metric::Cosine
        } else {
            va::Metric::L2
        };
        let nn = with_rows(py, x, |v| va::knn(ctx, v, c, 1, metric))?;
        neighbors_to_numpy(py, nn)
    }
}

/// The rows of `x` scaled to unit length (zero rows stay zero).
#[pyfunction]
fn normalize<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let ctx = &context()?;
    let m = with_rows(py, x, |v| va::vector::normalize(ctx, v)?.into_host())?;
    matrix_to_numpy(py, m)
}

/// The matrix product `a @ b` (`a [m, k]`, `b [k, n]`, float32).
#[pyfunction]
fn gemm<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let (a, b) = (f32_rows(a, "a")?, f32_rows(b, "b")?);
    let ((_, ad), (_, bd)) = (shape(&a), shape(&b));
    let (av, bv) = (a.readonly(), b.readonly());
    let (as_, bs) = (av.as_slice()?, bv.as_slice()?);
    let ctx = &context()?;
    let m = py
        .detach(|| {
            let (am, bm) = (va::MatrixView::new(as_, ad)?, va::MatrixView::new(bs, bd)?);
            va_gemm(ctx, am, bm, None, &GemmOptions::default())?.into_host()
        })
        .map_err(to_py)?;
    matrix_to_numpy(py, m)
}

/// Adds these functions and classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKmeans>()?;
    m.add_function(wrap_pyfunction!(kmeans, m)?)?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(gemm, m)?)
}

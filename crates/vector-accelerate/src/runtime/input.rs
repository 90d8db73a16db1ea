//! [`Input`]: what every operation accepts, host rows or rows resident on a
//! device.

use crate::core::error::{Error, Result};
use crate::core::matrix::{BinaryMatrix, BinaryView, Matrix, MatrixView};
use crate::core::metric::Metric;
use crate::runtime::context::{Context, Engine};
use crate::runtime::cuda_rows::CudaRows;
use crate::runtime::tensor::{DeviceMatrix, HostData, Storage};

/// Any input an operation accepts: host data (copied to the device for the
/// call when the context is CUDA) or a [`DeviceMatrix`] already resident on
/// the context's device (used in place).
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Dense `f32` rows on the host.
    F32(MatrixView<'a>),
    /// Bit-packed binary rows on the host.
    Binary(BinaryView<'a>),
    /// Rows resident on a device (or a host copy for a CPU context).
    Resident(&'a DeviceMatrix),
}

impl<'a> Input<'a> {
    /// `|row|` of every row (summed in f64) for the cosine metrics, `None`
    /// for the others (which do not use them).
    pub(crate) fn cosine_lengths(&self, metric: Metric) -> Result<Option<Vec<f32>>> {
        if !matches!(metric, Metric::Cosine | Metric::CosineSimilarity) {
            return Ok(None);
        }
        let mut hold = None;
        let m = self.host_view(&mut hold)?;
        let len = |r: &[f32]| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
        Ok(Some((0..m.rows()).map(|r| len(m.row(r)) as f32).collect()))
    }

    /// The `f32` rows as a host view: borrowed where they are host rows
    /// (rows a CPU context holds included), else downloaded into `hold`.
    pub(crate) fn host_view(&self, hold: &'a mut Option<Matrix>) -> Result<MatrixView<'a>> {
        match *self {
            Input::F32(m) => Ok(m),
            Input::Resident(d) => {
                if let Some(Input::F32(m)) = d.host_input() {
                    return Ok(m);
                }
                Ok(hold.insert(d.to_host()?).view())
            }
            Input::Binary(_) => Err(Error::invalid(
                "input",
                "bit-packed binary rows",
                "expected f32 rows",
            )),
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            Input::F32(m) => m.rows(),
            Input::Binary(b) => b.rows(),
            Input::Resident(d) => d.rows(),
        }
    }
    /// Whether the rows are bit-packed binary.
    pub fn is_binary(&self) -> bool {
        match self {
            Input::F32(_) => false,
            Input::Binary(_) => true,
            Input::Resident(d) => d.is_binary(),
        }
    }
    /// Dimension (elements for `f32`, bits for binary).
    pub fn dim(&self) -> usize {
        match self {
            Input::F32(m) => m.dim(),
            Input::Binary(b) => b.bits(),
            Input::Resident(d) => d.dim(),
        }
    }
}

impl<'a> From<MatrixView<'a>> for Input<'a> {
    fn from(m: MatrixView<'a>) -> Self {
        Input::F32(m)
    }
}
impl<'a> From<&'a Matrix> for Input<'a> {
    fn from(m: &'a Matrix) -> Self {
        Input::F32(m.view())
    }
}
impl<'a> From<BinaryView<'a>> for Input<'a> {
    fn from(m: BinaryView<'a>) -> Self {
        Input::Binary(m)
    }
}
impl<'a> From<&'a BinaryMatrix> for Input<'a> {
    fn from(m: &'a BinaryMatrix) -> Self {
        Input::Binary(m.view())
    }
}
impl<'a> From<&'a DeviceMatrix> for Input<'a> {
    fn from(m: &'a DeviceMatrix) -> Self {
        Input::Resident(m)
    }
}

/// A resolved right operand: a scalar, or an array with the strides that
/// broadcast it (0 along a size-1 axis).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Broadcast<'a> {
    Scalar(f32),
    Array {
        b: Input<'a>,
        row_stride: usize,
        col_stride: usize,
    },
}

// Uploads are methods of the context; they live here, beside the input they
// take, so that neither the context nor the device rows depend on inputs.
impl Context {
    /// Copies rows to this context's device once, so that many calls can use
    /// them without copying again (on a CPU context, a host copy).
    ///
    /// ```
    /// use vector_accelerate::{knn, Context, Matrix, Metric};
    /// let ctx = Context::cpu();
    /// let base = Matrix::new(vec![0.0, 0.0, 1.0, 1.0, 5.0, 5.0], 2).unwrap();
    /// let resident = ctx.upload(&base).unwrap();
    /// let q = Matrix::new(vec![0.9, 1.2], 2).unwrap();
    /// let r = knn(&ctx, &q, &resident, 1, Metric::L2).unwrap();
    /// assert_eq!(r.row_ids(0), &[1]);
    /// ```
    pub fn upload<'a>(&self, data: impl Into<Input<'a>>) -> Result<DeviceMatrix> {
        DeviceMatrix::upload(self, data.into())
    }

    /// Uploads `f16` rows (`dim` values each) and keeps them in 16 bits on
    /// a CUDA device (half the memory and the bytes a k-NN reads; on the CPU
    /// they are widened to `f32`). On CUDA such a matrix is a k-NN base for
    /// L2, Euclidean, cosine and inner product: pairs are ranked with f16
    /// tensor cores and re-scored in fp32 from the stored values, so
    /// distances are the exact fp32 ones of the widened rows. It is also a
    /// GEMM operand of the [`linalg`](crate::ops::linalg) family (used without
    /// conversion under `Precision::F16`, widened otherwise); other
    /// operations refuse a 16-bit matrix on CUDA with an error.
    ///
    /// ```
    /// use vector_accelerate::{half::f16, knn, Context, Matrix, Metric};
    /// let ctx = Context::new().unwrap();
    /// let rows: Vec<f16> = [0.0f32, 0.0, 1.0, 0.0, 0.0, 3.0].iter().map(|&v| f16::from_f32(v)).collect();
    /// let base = ctx.upload_f16(&rows, 2).unwrap();
    /// let q = Matrix::new(vec![0.9, 0.1], 2).unwrap();
    /// assert_eq!(knn(&ctx, &q, &base, 2, Metric::L2).unwrap().row_ids(0), &[1, 0]);
    /// ```
    pub fn upload_f16(&self, data: &[half::f16], dim: usize) -> Result<DeviceMatrix> {
        let bits: &[u16] = bytemuck::cast_slice(data);
        DeviceMatrix::upload_half(self, bits, dim, crate::core::half::HalfKind::F16)
    }

    /// [`upload_f16`](Self::upload_f16) for `bf16` rows (ranked with bf16
    /// tensor cores).
    pub fn upload_bf16(&self, data: &[half::bf16], dim: usize) -> Result<DeviceMatrix> {
        let bits: &[u16] = bytemuck::cast_slice(data);
        DeviceMatrix::upload_half(self, bits, dim, crate::core::half::HalfKind::Bf16)
    }
}

impl DeviceMatrix {
    /// `m` kept on `ctx`'s device: taken over without a copy on a CPU
    /// context, uploaded on CUDA.
    pub(crate) fn place(ctx: &Context, m: Matrix) -> Result<Self> {
        if ctx.is_cuda() {
            return Self::upload(ctx, Input::F32(m.view()));
        }
        let dim = m.dim();
        Ok(Self::from_host_f32(m.into_vec(), dim))
    }

    /// The rows of `parts` (f32 rows of `ctx`'s device, `dim` values each)
    /// one after the other, in one new matrix on the same device.
    pub(crate) fn concat(ctx: &Context, parts: &[&DeviceMatrix], dim: usize) -> Result<Self> {
        let rows: usize = parts.iter().map(|p| p.rows()).sum();
        let Engine::Cuda(dev) = ctx.engine() else {
            let mut v = Vec::with_capacity(rows * dim);
            for p in parts {
                v.extend_from_slice(p.rows_to_host(0, p.rows())?.as_slice());
            }
            return Ok(Self::from_host_f32(v, dim));
        };
        let _g = dev.lock();
        let mut out = dev.alloc::<f32>((rows * dim).max(1))?;
        let mut at = 0;
        for p in parts {
            let src = p.cuda_f32().ok_or_else(|| {
                Error::invalid(
                    "rows",
                    "host or 16-bit rows",
                    "expected f32 rows on this device",
                )
            })?;
            let n = p.rows() * dim;
            dev.stream
                .memcpy_dtod(&src.slice(0..n), &mut out.slice_mut(at..at + n))
                .map_err(crate::core::error::cu("cuMemcpyDtoD"))?;
            at += n;
        }
        dev.sync()?;
        let negative = parts.iter().any(|p| p.has_negative());
        let storage = Storage::Cuda(dev.clone(), CudaRows::F32(out));
        Ok(Self::from_storage(storage, rows, dim, Some(negative)))
    }

    /// Copies an input to `ctx`'s device (a duplicate for resident rows).
    pub(crate) fn upload(ctx: &Context, input: Input<'_>) -> Result<Self> {
        let (rows, dim) = (input.rows(), input.dim());
        let has_negative = match input {
            Input::F32(m) => m.as_slice().iter().any(|v| *v < 0.0),
            _ => false,
        };
        if rows == 0 {
            return Err(Error::EmptyInput {
                what: "matrix to upload",
            });
        }
        let storage = match (ctx.engine(), input) {
            (_, Input::Resident(d)) => {
                d.check_device(ctx)?;
                return d.duplicate();
            }
            (Engine::Cpu, Input::F32(m)) => Storage::Host(HostData::F32(m.as_slice().to_vec())),
            (Engine::Cpu, Input::Binary(b)) => Storage::Host(HostData::Bits(b.as_words().to_vec())),
            (Engine::Cuda(dev), Input::F32(m)) => {
                Storage::Cuda(dev.clone(), CudaRows::upload_f32(dev, m.as_slice())?)
            }
            (Engine::Cuda(dev), Input::Binary(b)) => {
                Storage::Cuda(dev.clone(), CudaRows::upload_bits(dev, b.as_words())?)
            }
        };
        Ok(Self::from_storage(storage, rows, dim, Some(has_negative)))
    }

    /// Host view of the rows of a CPU-resident matrix.
    pub(crate) fn host_input(&self) -> Option<Input<'_>> {
        match &self.storage {
            Storage::Host(HostData::F32(v)) => {
                Some(Input::F32(MatrixView::new(v, self.dim()).ok()?))
            }
            Storage::Host(HostData::Mapped(m)) => {
                Some(Input::F32(MatrixView::new(m.as_slice(), self.dim()).ok()?))
            }
            Storage::Host(HostData::Bits(w)) => {
                Some(Input::Binary(BinaryView::new(w, self.dim()).ok()?))
            }
            Storage::Cuda(..) | Storage::CudaHalf(..) => None,
        }
    }
}

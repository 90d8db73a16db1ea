//! [`PinnedMatrix`]: `f32` rows in page-locked host memory.

use cudarc::driver::PinnedHostSlice;

use crate::core::error::{cu, Error, Result};
use crate::core::matrix::MatrixView;
use crate::runtime::context::{Context, Engine};
use crate::runtime::input::Input;

enum Rows {
    /// Page-locked memory of a CUDA context.
    Pinned(PinnedHostSlice<f32>),
    /// Ordinary memory (CPU contexts).
    Plain(Vec<f32>),
}

/// Dense `f32` rows in page-locked (pinned) host memory of a CUDA context,
/// zero-filled at first. A host base kept here streams to the device at the
/// full host-to-device rate: the k-NN transfers it directly instead of
/// copying each tile through its own page-locked staging buffers (which
/// costs host memory bandwidth). On a CPU context the memory is ordinary.
///
/// ```
/// use vector_accelerate::{knn, Context, Metric, Matrix};
/// let ctx = Context::cpu();
/// let mut base = ctx.alloc_pinned(3, 2).unwrap();
/// base.as_mut_slice().copy_from_slice(&[0.0, 0.0, 1.0, 1.0, 5.0, 5.0]);
/// let q = Matrix::new(vec![0.9, 1.2], 2).unwrap();
/// let r = knn(&ctx, &q, &base, 1, Metric::L2).unwrap();
/// assert_eq!(r.row_ids(0), &[1]);
/// ```
pub struct PinnedMatrix {
    rows: Rows,
    dim: usize,
}

impl std::fmt::Debug for PinnedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PinnedMatrix({} x {}, {})",
            self.rows(),
            self.dim,
            match self.rows {
                Rows::Pinned(_) => "page-locked",
                Rows::Plain(_) => "ordinary memory",
            }
        )
    }
}

impl PinnedMatrix {
    pub(crate) fn new(ctx: &Context, rows: usize, dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::ZeroDimension {
                what: "pinned matrix",
            });
        }
        let len = rows.checked_mul(dim).ok_or_else(|| {
            Error::invalid(
                "pinned matrix size",
                format!("{rows} x {dim}"),
                "the element count overflows",
            )
        })?;
        let rows = match ctx.engine() {
            Engine::Cpu => Rows::Plain(vec![0.0; len]),
            Engine::Cuda(dev) => {
                // SAFETY: zero-filled below before any read.
                let mut p = unsafe { dev.context().alloc_pinned_with_flags::<f32>(len, 0) }
                    .map_err(cu("cuMemHostAlloc (pinned matrix)"))?;
                p.as_mut_slice().map_err(cu("pinned matrix"))?.fill(0.0);
                Rows::Pinned(p)
            }
        };
        Ok(Self { rows, dim })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.as_slice().len() / self.dim
    }

    /// Dimension of each row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        match &self.rows {
            // The buffer's event is never recorded: this does not wait.
            Rows::Pinned(p) => p.as_slice().unwrap_or(&[]),
            Rows::Plain(v) => v,
        }
    }

    /// All values, row-major, for writing.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        match &mut self.rows {
            Rows::Pinned(p) => p.as_mut_slice().unwrap_or(&mut []),
            Rows::Plain(v) => v,
        }
    }

    /// A view of the rows.
    pub fn view(&self) -> MatrixView<'_> {
        MatrixView::new(self.as_slice(), self.dim).expect("whole rows of a non-zero dimension")
    }
}

impl<'a> From<&'a PinnedMatrix> for Input<'a> {
    fn from(m: &'a PinnedMatrix) -> Self {
        Input::F32(m.view())
    }
}

impl Context {
    /// A zero-filled `rows x dim` matrix in page-locked host memory of this
    /// context's device (ordinary memory on the CPU): a host base kept there
    /// streams through the device without a staging copy. See
    /// [`PinnedMatrix`](crate::PinnedMatrix).
    pub fn alloc_pinned(&self, rows: usize, dim: usize) -> Result<PinnedMatrix> {
        PinnedMatrix::new(self, rows, dim)
    }
}

//! The contract both backends keep: one trait per family, implemented by the
//! CPU backend ([`Cpu`]) and by an open CUDA device, with the same
//! arguments and result types on both sides. The operations layer validates
//! its inputs and makes one call through [`Context::backend`]; which kernel
//! or tiling runs is the backend's choice.
//!
//! [`Context::backend`]: crate::Context

use crate::core::error::Result;
use crate::core::linalg::{Epilogue, Plan};
use crate::core::vector::{Axis, Binary, Kind, Unary};
use crate::runtime::context::{Context, Engine};
use crate::runtime::input::{Broadcast, Input};
use crate::runtime::tensor::{DeviceIds, DeviceMatrix};

/// The CPU backend (all cores, SIMD); its implementations are the reference.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cpu;

// The accessor lives here, beside the traits, so that the context does not
// depend on what the backends compute.
impl Context {
    /// The backend operations run on (the one dispatch of every operation).
    pub(crate) fn backend(&self) -> &dyn Backend {
        match self.engine() {
            Engine::Cpu => &Cpu,
            Engine::Cuda(dev) => dev,
        }
    }
}

/// Every family's backend contract.
pub(crate) trait Backend: VectorBackend + LinalgBackend {}

impl<T: VectorBackend + LinalgBackend> Backend for T {}

/// A validated reduction: what is accumulated, along which axis, and how
/// each result is finished (`finish` codes shared with the kernels:
/// 0 sum, 1 mean, 2 variance, 3 min, 4 max, 5 argmin, 6 argmax).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReducePlan {
    /// The accumulator kind.
    pub kind: Kind,
    /// Along which axis.
    pub axis: Axis,
    /// The finishing code.
    pub finish: u32,
    /// Delta degrees of freedom of a variance.
    pub ddof: usize,
}

/// The vector utilities. Element-wise work may run in place on rows the
/// context holds; results are rows on the context's device.
pub(crate) trait VectorBackend {
    /// `chain` applied to every element of `x`.
    fn map(&self, x: &Input<'_>, chain: &[Unary]) -> Result<DeviceMatrix>;
    /// `chain` applied to every element of `x`, in place.
    fn map_in_place(&self, x: &mut DeviceMatrix, chain: &[Unary]) -> Result<()>;
    /// `then(op(a, b))` with `b` broadcast.
    fn binary(
        &self,
        a: &Input<'_>,
        b: &Broadcast<'_>,
        op: Binary,
        then: &[Unary],
    ) -> Result<DeviceMatrix>;
    /// `then(op(a, b))` written over `a`.
    fn binary_in_place(
        &self,
        a: &mut DeviceMatrix,
        b: &Broadcast<'_>,
        op: Binary,
        then: &[Unary],
    ) -> Result<()>;
    /// Rows divided by their norms, and the norms (`[rows x 1]`).
    fn normalize(&self, x: &Input<'_>) -> Result<(DeviceMatrix, DeviceMatrix)>;
    /// Rows divided by their norms in place; returns the norms.
    fn normalize_in_place(&self, x: &mut DeviceMatrix) -> Result<DeviceMatrix>;
    /// A value reduction (`plan.finish` 0..=4), shaped as NumPy's
    /// `keepdims=True`.
    fn reduce(&self, x: &Input<'_>, plan: ReducePlan) -> Result<DeviceMatrix>;
    /// An index reduction (`plan.finish` 5 or 6).
    fn arg_reduce(&self, x: &Input<'_>, plan: ReducePlan) -> Result<DeviceIds>;
    /// Row softmax (`[rows x dim]`) or, with `softmax` false, row
    /// log-sum-exp (`[rows x 1]`).
    fn softmax(&self, x: &Input<'_>, softmax: bool) -> Result<DeviceMatrix>;
    /// Row softmax in place.
    fn softmax_in_place(&self, x: &mut DeviceMatrix) -> Result<()>;
}

/// One validated product: the operands, `C` (read only when `plan.beta` is
/// not 0), the plan, and the bias and activation applied to the result.
#[derive(Clone, Copy)]
pub(crate) struct GemmJob<'a> {
    /// `A` (`batch` matrices stacked by rows).
    pub a: &'a Input<'a>,
    /// `B` (`batch` matrices stacked by rows).
    pub b: &'a Input<'a>,
    /// `C`, stacked like the result.
    pub c: Option<&'a Input<'a>>,
    /// Shapes, transposes, scales and precision.
    pub plan: &'a Plan,
    /// Bias and activation of the result.
    pub epilogue: Option<Epilogue<'a>>,
}

/// The matrix operations.
pub(crate) trait LinalgBackend {
    /// The job's `batch` products, `(batch * m) x n`.
    fn gemm(&self, job: GemmJob<'_>) -> Result<DeviceMatrix>;
    /// The transpose (`dim x rows`).
    fn transpose(&self, a: &Input<'_>) -> Result<DeviceMatrix>;
    /// Transposes a square matrix in place.
    fn transpose_in_place(&self, a: &mut DeviceMatrix) -> Result<()>;
}

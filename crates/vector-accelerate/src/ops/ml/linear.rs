//! [`Linear`]: `y = act(x W^T + b)` with the weight resident on a device.

use std::sync::Arc;

use crate::core::error::{Error, Result};
use crate::core::linalg::{Activation, GemmOptions};
use crate::core::matrix::Matrix;
use crate::core::precision::Precision;
use crate::core::rng::Rng;
use crate::ops::linalg::gemm_fused;
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// A linear map `y = x W^T + b` from `d_in` to `d_out` values: `W` is
/// `d_out x d_in` (row `o` holds the weights of output `o`, as PyTorch's
/// `nn.Linear.weight`), `b` an optional `d_out` bias. The weight lives on
/// the device of the context it was made with (host memory on a CPU
/// context), uploaded once; maps made by a
/// [`WeightStore`](super::WeightStore) share the store's cached copy.
///
/// ```
/// use vector_accelerate::ml::Linear;
/// use vector_accelerate::linalg::Activation;
/// use vector_accelerate::{Context, Matrix, Precision};
/// let ctx = Context::cpu();
/// // 3 -> 2: y0 = x0 + x2, y1 = 2 x1, bias (0, 1).
/// let w = Matrix::new(vec![1.0, 0.0, 1.0, 0.0, 2.0, 0.0], 3)?;
/// let lin = Linear::new(&ctx, &w, Some(&[0.0, 1.0]))?;
/// let x = Matrix::new(vec![1.0, 2.0, 3.0], 3)?;
/// let y = lin.apply(&ctx, &x, Activation::None, Precision::Exact)?;
/// assert_eq!(y.to_host()?.as_slice(), &[4.0, 5.0]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
#[derive(Debug)]
pub struct Linear {
    weight: Arc<DeviceMatrix>,
    bias: Option<Vec<f32>>,
}

impl Linear {
    /// A map with weight `weight` (`d_out x d_in`: `d_out` rows of `d_in`)
    /// and an optional bias of `d_out` values, uploaded to `ctx`'s device.
    /// Non-finite weights or bias values are an error.
    pub fn new<'a>(
        ctx: &Context,
        weight: impl Into<Input<'a>>,
        bias: Option<&[f32]>,
    ) -> Result<Self> {
        let weight = weight.into();
        if weight.rows() == 0 {
            return Err(Error::EmptyInput { what: "weight" });
        }
        if weight.is_binary() {
            return Err(Error::invalid(
                "weight",
                "bit-packed rows",
                "a linear map takes f32 weights",
            ));
        }
        if let Some(b) = bias {
            check_bias(b, weight.rows())?;
        }
        if let Input::F32(m) = &weight {
            if let Some(i) = m.as_slice().iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(
                    "weight",
                    m.as_slice()[i],
                    format!("element ({}, {}) is not finite", i / m.dim(), i % m.dim()),
                ));
            }
        }
        Ok(Self {
            weight: Arc::new(ctx.upload(weight)?),
            bias: bias.map(<[f32]>::to_vec),
        })
    }

    /// A map sharing a weight already on a device (`d_out x d_in` f32 or
    /// 16-bit rows whose values were checked finite by the caller).
    pub(crate) fn from_shared(weight: Arc<DeviceMatrix>, bias: Option<Vec<f32>>) -> Result<Self> {
        if weight.is_binary() {
            return Err(Error::invalid(
                "weight",
                "bit-packed rows",
                "a linear map takes f32 weights",
            ));
        }
        if let Some(b) = &bias {
            check_bias(b, weight.rows())?;
        }
        Ok(Self { weight, bias })
    }

    /// A map with Xavier (Glorot) uniform weights, `U(-a, a)` with
    /// `a = sqrt(6 / (d_in + d_out))` (PyTorch's `xavier_uniform_`), drawn
    /// from a seeded generator (same seed, same weights on every backend),
    /// and no bias.
    ///
    /// ```
    /// use vector_accelerate::ml::Linear;
    /// use vector_accelerate::Context;
    /// let ctx = Context::cpu();
    /// let a = Linear::xavier(&ctx, 768, 128, 7)?;
    /// assert_eq!((a.d_in(), a.d_out()), (768, 128));
    /// # Ok::<(), vector_accelerate::Error>(())
    /// ```
    pub fn xavier(ctx: &Context, d_in: usize, d_out: usize, seed: u64) -> Result<Self> {
        let w = xavier_uniform(d_in, d_out, seed)?;
        Self::new(ctx, &w, None)
    }

    /// Input width.
    pub fn d_in(&self) -> usize {
        self.weight.dim()
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.weight.rows()
    }

    /// The weight (`d_out x d_in`), resident on the context's device.
    pub fn weight(&self) -> &DeviceMatrix {
        &self.weight
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    fn check(&self, x: &Input<'_>) -> Result<()> {
        if x.dim() != self.d_in() {
            return Err(Error::DimensionMismatch {
                what: "columns of the input vs d_in of the linear map",
                expected: self.d_in(),
                got: x.dim(),
            });
        }
        Ok(())
    }

    fn opts(precision: Precision, act: Activation) -> GemmOptions {
        GemmOptions::default()
            .with_trans_b(true)
            .with_precision(precision)
            .with_activation(act)
    }

    /// `act(x W^T + b)` for every row of `x` (`rows x d_in`): `rows x d_out`
    /// on the context's device, from one (fused) GEMM in `precision` (see
    /// [`linalg`](crate::linalg) for the modes).
    pub fn apply<'a>(
        &self,
        ctx: &Context,
        x: impl Into<Input<'a>>,
        act: Activation,
        precision: Precision,
    ) -> Result<DeviceMatrix> {
        let x = x.into();
        self.check(&x)?;
        let opts = Self::opts(precision, act);
        gemm_fused(ctx, x, &*self.weight, self.bias(), &opts)
    }
}

/// A bias must have `d_out` finite values.
fn check_bias(b: &[f32], d_out: usize) -> Result<()> {
    if b.len() != d_out {
        return Err(Error::DimensionMismatch {
            what: "bias length vs rows of the weight (d_out)",
            expected: d_out,
            got: b.len(),
        });
    }
    if let Some(i) = b.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(
            "bias",
            b[i],
            format!("element {i} is not finite"),
        ));
    }
    Ok(())
}

/// Xavier (Glorot) uniform `d_out x d_in` weights: `U(-a, a)`,
/// `a = sqrt(6 / (d_in + d_out))`, from a seeded generator; every value lies
/// in `[-a, a)` after rounding to f32.
pub(crate) fn xavier_uniform(d_in: usize, d_out: usize, seed: u64) -> Result<Matrix> {
    if d_in == 0 || d_out == 0 {
        return Err(Error::invalid(
            "shape",
            format!("{d_in} -> {d_out}"),
            "a linear map needs d_in >= 1 and d_out >= 1",
        ));
    }
    let a = (6.0 / (d_in + d_out) as f64).sqrt();
    // The f32 values of [-a, a): rounding a draw to f32 must not leave it.
    let mut hi = a as f32;
    while hi as f64 >= a {
        hi = hi.next_down();
    }
    let mut lo = -(a as f32);
    while (lo as f64) < -a {
        lo = lo.next_up();
    }
    let mut rng = Rng::new(seed);
    let w = (0..d_in * d_out)
        .map(|_| (((2.0 * rng.next_f64() - 1.0) * a) as f32).clamp(lo, hi))
        .collect();
    Matrix::new(w, d_in)
}

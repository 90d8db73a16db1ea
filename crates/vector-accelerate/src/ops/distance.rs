//! Distances: one pair, one query against many rows, and the full
//! `[nq x nb]` matrix, for every [`Metric`](crate::Metric).

use crate::core::error::{Error, Result};
use crate::core::matrix::{BinaryView, Matrix, MatrixView};
use crate::core::metric::Distance;
use crate::cpu::distance::{pair_bits, pair_f32};
use crate::ops::prepare;
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// Distance between two `f32` vectors (computed on the CPU).
///
/// ```
/// use vector_accelerate::{distance::distance, Metric};
/// let d = distance(&[0.0, 3.0], &[4.0, 0.0], Metric::Euclidean).unwrap();
/// assert_eq!(d, 5.0);
/// ```
pub fn distance(a: &[f32], b: &[f32], dist: impl Into<Distance>) -> Result<f32> {
    let dist = dist.into();
    if a.len() != b.len() {
        return Err(Error::DimensionMismatch {
            what: "second vector length vs first",
            expected: a.len(),
            got: b.len(),
        });
    }
    let (qa, qb) = (
        MatrixView::new(a, a.len().max(1))?,
        MatrixView::new(b, b.len().max(1))?,
    );
    if a.is_empty() {
        return Err(Error::EmptyInput { what: "vector" });
    }
    let p = prepare(&Context::cpu(), &Input::F32(qa), &Input::F32(qb), &dist)?;
    Ok(pair_f32(a, b, &p))
}

/// Distance between two bit-packed vectors of `bits` bits (Hamming or Jaccard).
///
/// ```
/// use vector_accelerate::{distance::distance_bits, Metric};
/// assert_eq!(distance_bits(&[0b1011], &[0b0110], 4, Metric::Hamming).unwrap(), 3.0);
/// ```
pub fn distance_bits(a: &[u64], b: &[u64], bits: usize, dist: impl Into<Distance>) -> Result<f32> {
    let dist = dist.into();
    let (va, vb) = (BinaryView::new(a, bits)?, BinaryView::new(b, bits)?);
    for v in [va, vb] {
        if v.rows() != 1 {
            return Err(Error::DimensionMismatch {
                what: "words for one binary vector",
                expected: va.words_per_row(),
                got: v.as_words().len(),
            });
        }
    }
    let p = prepare(
        &Context::cpu(),
        &Input::Binary(va),
        &Input::Binary(vb),
        &dist,
    )?;
    Ok(pair_bits(a, b, bits, p.metric))
}

/// The `[nq x nb]` matrix of distances between every query and every base
/// row, on the context's device. CUDA computes it in tiles that fit the
/// memory budget.
///
/// ```
/// use vector_accelerate::{distance::pairwise, Context, Matrix, Metric};
/// let ctx = Context::cpu();
/// let q = Matrix::new(vec![1.0, 0.0], 2).unwrap();
/// let x = Matrix::new(vec![1.0, 0.0, 0.0, 2.0], 2).unwrap();
/// let d = pairwise(&ctx, &q, &x, Metric::L1).unwrap();
/// assert_eq!(d.as_slice(), &[0.0, 3.0]);
/// ```
pub fn pairwise<'a, 'b>(
    ctx: &Context,
    queries: impl Into<Input<'a>>,
    base: impl Into<Input<'b>>,
    dist: impl Into<Distance>,
) -> Result<Matrix> {
    let (q, x, dist) = (queries.into(), base.into(), dist.into());
    let p = prepare(ctx, &q, &x, &dist)?;
    super::refuse_half(&x, "base")?;
    ctx.backend().pairwise(&q, &x, &p, ctx.memory_budget())
}

/// Distances from one query to every base row (the 1-vs-N form).
pub fn distances_to<'b>(
    ctx: &Context,
    query: &[f32],
    base: impl Into<Input<'b>>,
    dist: impl Into<Distance>,
) -> Result<Vec<f32>> {
    if query.is_empty() {
        return Err(Error::EmptyInput { what: "query" });
    }
    let q = MatrixView::new(query, query.len())?;
    Ok(pairwise(ctx, q, base, dist)?.into_vec())
}

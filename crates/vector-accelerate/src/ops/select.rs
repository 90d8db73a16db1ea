//! Selection: row-wise top-k, streaming top-k with `u64` ids, and
//! merging of partial lists. Results are [`Neighbors`].
//!
//! Ordering is total and identical on every backend: values compare by
//! their number (with `-0 == +0`), NaN ranks after every number in both
//! orders, and equal values are broken by the smaller id.

use crate::core::error::{Error, Result};
use crate::core::matrix::MatrixView;
pub use crate::core::neighbors::{missing_value, Neighbors, Order, MISSING_ID};
use crate::runtime::backend::TopKState;
use crate::runtime::context::Context;
use crate::runtime::input::Input;

fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::InvalidK { k });
    }
    Ok(())
}

/// Top-`k` of every row of `values`, best first; ids are column indices.
/// Any `k >= 1`: when `k` exceeds the row length the tail is missing.
///
/// ```
/// use vector_accelerate::{select::topk, Context, MatrixView, Order};
/// let ctx = Context::cpu();
/// let v = [3.0f32, 1.0, 2.0, 1.0];
/// let r = topk(&ctx, MatrixView::new(&v, 4).unwrap(), 3, Order::Smallest).unwrap();
/// assert_eq!(r.row_ids(0), &[1, 3, 2]); // tie at 1.0 broken by the smaller index
/// ```
///
/// `values` may be a host matrix or `f32` rows already on the context's
/// device ([`Context::upload`]), which are selected in place.
pub fn topk<'a>(
    ctx: &Context,
    values: impl Into<Input<'a>>,
    k: usize,
    order: Order,
) -> Result<Neighbors> {
    check_k(k)?;
    let values = values.into();
    if values.rows() == 0 {
        return Err(Error::EmptyInput { what: "values" });
    }
    let binary = || {
        Error::invalid(
            "values",
            "bit-packed binary rows",
            "top-k selects among f32 values",
        )
    };
    if values.is_binary() {
        return Err(binary());
    }
    if let Input::Resident(d) = &values {
        d.check_device(ctx)?;
    }
    super::refuse_half(&values, "values")?;
    ctx.backend().topk(&values, k, order)
}

/// Merges partial top-k lists of the same rows (from tiles, shards or
/// devices) into one list of `k` per row. Lists must share the row count and
/// order; their `k` may differ. Duplicate ids are kept as separate results.
pub fn merge(ctx: &Context, lists: &[Neighbors], k: usize) -> Result<Neighbors> {
    check_k(k)?;
    let first = lists.first().ok_or(Error::EmptyInput {
        what: "lists to merge",
    })?;
    for l in lists {
        if l.rows() != first.rows() {
            return Err(Error::DimensionMismatch {
                what: "rows of the lists to merge",
                expected: first.rows(),
                got: l.rows(),
            });
        }
        if l.order() != first.order() {
            return Err(Error::invalid(
                "order",
                format!("{:?}", l.order()),
                "all lists must share one order",
            ));
        }
    }
    ctx.backend().merge(lists, k, first.order())
}

/// Streaming top-k: feed chunks of candidate values with their global `u64`
/// ids, then [`finish`](StreamingTopK::finish).
///
/// ```
/// use vector_accelerate::{select::StreamingTopK, Context, MatrixView, Order};
/// let ctx = Context::cpu();
/// let mut s = StreamingTopK::new(&ctx, 1, 2, Order::Smallest).unwrap();
/// s.push(MatrixView::new(&[5.0, 1.0], 2).unwrap(), &[100, 101]).unwrap();
/// s.push(MatrixView::new(&[0.5, 9.0], 2).unwrap(), &[7, 8]).unwrap();
/// let r = s.finish().unwrap();
/// assert_eq!(r.row_ids(0), &[7, 101]);
/// ```
pub struct StreamingTopK {
    rows: usize,
    state: Box<dyn TopKState>,
}

impl StreamingTopK {
    /// A state of `rows` rows keeping `k` results each.
    pub fn new(ctx: &Context, rows: usize, k: usize, order: Order) -> Result<Self> {
        check_k(k)?;
        if rows == 0 {
            return Err(Error::EmptyInput {
                what: "streaming top-k rows",
            });
        }
        let state = ctx.backend().streaming_topk(rows, k, order)?;
        Ok(Self { rows, state })
    }

    /// Offers a chunk `[rows x c]` of values whose column `j` has id `ids[j]`
    /// (ids must not be [`MISSING_ID`]).
    pub fn push(&mut self, values: MatrixView<'_>, ids: &[u64]) -> Result<()> {
        if values.rows() != self.rows {
            return Err(Error::DimensionMismatch {
                what: "chunk rows",
                expected: self.rows,
                got: values.rows(),
            });
        }
        if ids.len() != values.dim() {
            return Err(Error::DimensionMismatch {
                what: "ids per chunk column",
                expected: values.dim(),
                got: ids.len(),
            });
        }
        if ids.contains(&MISSING_ID) {
            return Err(Error::invalid(
                "id",
                MISSING_ID,
                "u64::MAX is reserved for missing results",
            ));
        }
        self.state.push(values, ids)
    }

    /// The best `k` per row seen so far, best first.
    pub fn finish(self) -> Result<Neighbors> {
        self.state.finish()
    }
}

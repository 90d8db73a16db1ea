//! Selection: row-wise top-k, streaming top-k with `u64` ids, and
//! merging of partial lists. Results are [`Neighbors`].
//!
//! Ordering is total and identical on every backend: values compare by
//! their number (with `-0 == +0`), NaN ranks after every number in both
//! orders, and equal values are broken by the smaller id.

use crate::core::error::{Error, Result};
use crate::core::matrix::MatrixView;
pub use crate::core::neighbors::{missing_value, Neighbors, Order, MISSING_ID};
use crate::cpu::select::TopKBuffer;
use crate::cpu::{host_rows, HostRows};
use crate::runtime::context::{Context, Engine};
use crate::runtime::input::Input;
use crate::{cpu, cuda};

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
    match (ctx.engine(), &values) {
        (Engine::Cuda(dev), Input::Resident(d)) => cuda::select::topk_resident(dev, d, k, order),
        (Engine::Cuda(dev), Input::F32(m)) => cuda::select::topk_rows(dev, *m, k, order),
        (Engine::Cpu, _) => match host_rows(&values)? {
            HostRows::F32(m) => Ok(cpu::select::topk_rows(m.as_slice(), m.dim(), k, order)),
            HostRows::Bits(_) => Err(binary()),
        },
        (Engine::Cuda(_), _) => Err(binary()),
    }
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
    match ctx.engine() {
        Engine::Cpu => Ok(cpu::select::merge(
            &lists.iter().collect::<Vec<_>>(),
            k,
            first.order(),
        )),
        Engine::Cuda(dev) => cuda::select::merge(dev, lists, k, first.order()),
    }
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
    k: usize,
    order: Order,
    state: StreamState,
}

enum StreamState {
    Cpu(Vec<TopKBuffer>),
    Cuda(cuda::select::DeviceTopK),
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
        let state = match ctx.engine() {
            Engine::Cpu => StreamState::Cpu((0..rows).map(|_| TopKBuffer::new(k, order)).collect()),
            Engine::Cuda(dev) => {
                StreamState::Cuda(cuda::select::DeviceTopK::new(dev, rows, k, order)?)
            }
        };
        Ok(Self {
            rows,
            k,
            order,
            state,
        })
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
        match &mut self.state {
            StreamState::Cpu(bufs) => {
                use rayon::prelude::*;
                let n = values.dim();
                bufs.par_iter_mut().enumerate().for_each(|(r, b)| {
                    for (&v, &id) in values.as_slice()[r * n..(r + 1) * n].iter().zip(ids) {
                        b.push(v, id);
                    }
                });
                Ok(())
            }
            StreamState::Cuda(d) => d.push(values, ids),
        }
    }

    /// The best `k` per row seen so far, best first.
    pub fn finish(self) -> Result<Neighbors> {
        match self.state {
            StreamState::Cpu(bufs) => {
                let mut out = Neighbors::missing(self.rows, self.k, self.order);
                let k = self.k;
                let (ids, dists) = out.parts_mut();
                for (r, b) in bufs.into_iter().enumerate() {
                    b.finish_into(&mut ids[r * k..(r + 1) * k], &mut dists[r * k..(r + 1) * k]);
                }
                Ok(out)
            }
            StreamState::Cuda(d) => d.finish(),
        }
    }
}

//! Vector indexes: Flat and IVF against exact k-NN, ids, filters,
//! removals, range search, save/load and bad input.

mod appends;
mod coded;
mod durable;
mod errors;
mod filters;
mod flat;
mod graph;
mod ivf;
mod multi;
mod props;
mod storage;

use vector_accelerate::index::Index;
use vector_accelerate::{knn, Context, Distance, Matrix, Neighbors, MISSING_ID};

/// The rows `rs` of `m`.
pub fn rows_of(m: &Matrix, rs: &[usize]) -> Matrix {
    let mut v = Vec::new();
    for &r in rs {
        v.extend_from_slice(m.row(r));
    }
    Matrix::new(v, m.dim()).unwrap()
}

/// Exact k-NN of `q` over the rows `rs` of `base`, named by `ids[row]`.
pub fn exact_over(
    ctx: &Context,
    q: &Matrix,
    base: &Matrix,
    rs: &[usize],
    ids: &[u64],
    k: usize,
    dist: impl Into<Distance>,
) -> Neighbors {
    let sub = rows_of(base, rs);
    let nn = knn(ctx, q, &sub, k, dist).unwrap();
    let (mut i, d) = nn.clone().into_parts();
    for v in i.iter_mut().filter(|v| **v != MISSING_ID) {
        *v = ids[rs[*v as usize]];
    }
    Neighbors::from_parts(nn.rows(), k, nn.order(), i, d).unwrap()
}

/// A Flat or IVF index holding `base` under `ids`.
pub fn build(
    ctx: &Context,
    factory: &str,
    base: &Matrix,
    ids: &[u64],
    dist: impl Into<Distance>,
) -> Index {
    let mut index = Index::new(ctx, base.dim(), factory, dist).unwrap();
    index.train(base).unwrap();
    index.add_with_ids(base, ids).unwrap();
    index
}

/// Recall@k of `got` against `want` (ids of each row's present results).
pub fn recall(got: &Neighbors, want: &Neighbors) -> f64 {
    let (mut hit, mut total) = (0usize, 0usize);
    for r in 0..want.rows() {
        let g = got.row_ids(r);
        for id in want.row_ids(r).iter().filter(|&&i| i != MISSING_ID) {
            total += 1;
            hit += usize::from(g.contains(id));
        }
    }
    hit as f64 / total.max(1) as f64
}

/// A tolerance per row of `nn` for results computed in another order of
/// operations (a direct sum against a GEMM form): relative to the row's
/// largest value.
pub fn tol_of(nn: &Neighbors) -> impl Fn(usize) -> f64 + '_ {
    move |r| {
        let big = nn
            .row_distances(r)
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs() as f64));
        1e-5 * (1.0 + big)
    }
}

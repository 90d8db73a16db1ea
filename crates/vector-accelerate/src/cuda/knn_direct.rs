//! Exact k-NN of a few queries over a resident `f32` base in two launches:
//! every (query, row) value as the fused path's re-score computes it (one
//! warp per row, `direct_values`), then the row-wise top-k of those values.
//! No tiles and no host round trips, so a one-query call is two launches
//! and a download; the values are the ones the tiled path keeps, so both
//! give the same lists.

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use crate::core::error::{cu, Result};
use crate::core::metric::Prepared;
use crate::cuda::distance::{metric_code, resident, resident_norms, sq_norms, whole};
use crate::cuda::select::{select_rows_into, ListsMut};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{f32_rows, CudaRows};
use crate::runtime::input::Input;

/// Queries up to which a call over a resident base takes the direct path
/// (each query costs every row another warp reduction).
const MAX_QUERIES: usize = 4;
/// Shared memory the queries may take.
const MAX_QUERY_BYTES: usize = 48 << 10;

/// One direct call's inputs.
pub(crate) struct DirectJob<'a> {
    pub q: &'a Input<'a>,
    pub x: &'a Input<'a>,
    pub k: usize,
    pub p: &'a Prepared,
    pub budget: usize,
}

/// Whether `job` takes the direct path: at most [`MAX_QUERIES`] queries,
/// a resident f32 base, a metric of the re-score (the GEMM metrics, no
/// weights), and the values within half the budget.
pub(crate) fn takes(job: &DirectJob<'_>) -> bool {
    let (nq, nx, dim) = (job.q.rows(), job.x.rows(), job.x.dim());
    let f32_base = matches!(resident(job.x), Some(CudaRows::F32(_)));
    let metric = job.p.metric.is_gemm_based() && job.p.weights.is_none();
    nq <= MAX_QUERIES
        && !job.q.is_binary()
        && f32_base
        && metric
        && nq * dim * 4 <= MAX_QUERY_BYTES
        && nq * nx * 4 <= job.budget / 2
}

/// The `k` best of every query (`nq x k` distances and ids on the device,
/// sorted; the caller holds the lock and has checked [`takes`]).
pub(crate) fn search(
    dev: &CudaDevice,
    job: &DirectJob<'_>,
) -> Result<(CudaSlice<f32>, CudaSlice<u64>)> {
    let (nq, nx, dim, k) = (job.q.rows(), job.x.rows(), job.x.dim(), job.k);
    let q = whole(dev, job.q)?;
    let q_rows = f32_rows(q.rows())?;
    let x_rows = f32_rows(resident(job.x).expect("checked by takes"))?;
    let mut qn = dev.alloc::<f32>(nq)?;
    sq_norms(dev, &q_rows.as_view(), nq, dim, &mut qn)?;
    let xn = resident_norms(dev, job.x)?.expect("a resident f32 base has norms");
    let mut values = dev.alloc::<f32>(nq * nx)?;
    let f = dev.func("knn", "direct_values")?;
    let (ld, m, n, d) = (dim as i64, nq as i32, nx as i64, dim as i32);
    let (code, norm) = (metric_code(job.p.metric), i32::from(job.p.normalized));
    let mut b = dev.stream.launch_builder(&f);
    b.arg(q_rows)
        .arg(&ld)
        .arg(&m)
        .arg(x_rows)
        .arg(&ld)
        .arg(&n)
        .arg(&d)
        .arg(&qn)
        .arg(xn)
        .arg(&code)
        .arg(&norm)
        .arg(&mut values);
    let cfg = LaunchConfig {
        grid_dim: (nx.div_ceil(8).min(dev.sm_count() * 8).max(1) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: (nq * dim * 4) as u32,
    };
    // SAFETY: q holds nq x dim floats, x nx x dim, the norms nq and nx,
    // values nq x nx; the shared queries nq x dim floats (<= 48 KiB).
    unsafe { b.launch(cfg) }.map_err(cu("direct_values launch"))?;
    let mut dist = dev.alloc::<f32>(nq * k)?;
    let mut ids = dev.alloc::<u64>(nq * k)?;
    let mut out = ListsMut {
        dist: dist.as_view_mut(),
        ids: ids.as_view_mut(),
    };
    let order = job.p.metric.order();
    select_rows_into(dev, &values.as_view(), (nq, nx), k, order, &mut out)?;
    Ok((dist, ids))
}

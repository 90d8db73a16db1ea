//! CUDA exact k-NN: distance tiles (GEMM or direct kernels) feed a row-wise
//! top-k; each tile's lists are merged into a running state kept on the
//! device, so the full distance matrix never exists. A host base is streamed
//! tile by tile; a resident base is used in place.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, DevicePtr};

use super::cu;
use super::device::CudaDevice;
use super::distance::{
    metric_code, per_row, query_norms, resident, resident_norms, staging, tile, upload_rows, whole,
    DistPlan,
};
use super::select::{
    candidate_cap, launch_filter, launch_merge, launch_topk, scratch_words, Epi, Fallback, Ids,
};
use crate::cpu::distance::Prepared;
use crate::error::{Error, Result};
use crate::matrix::Input;
use crate::ops::select::Neighbors;

/// Tile sizes chosen for a memory budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tiling {
    /// Queries per distance tile.
    pub query_block: usize,
    /// Base rows per distance tile.
    pub base_tile: usize,
    /// Queries whose running lists stay on the device during one pass over the base.
    pub super_block: usize,
    /// (row, part) lists that fit when few query rows are split across blocks.
    pub part_rows: usize,
}

#[allow(clippy::too_many_arguments)]
/// Picks tile sizes so that the workspace fits in `budget` bytes, or says
/// how much even the smallest tile needs.
pub(crate) fn plan_tiles(
    nq: usize,
    nx: usize,
    k: usize,
    row_bytes: usize,
    base_resident: bool,
    queries_resident: bool,
    budget: usize,
    sms: usize,
) -> Result<Tiling> {
    let need = |qb: usize, bt: usize| -> usize {
        qb * bt * 4                                   // distance tile
            + qb * k * 12 * 2                         // tile lists + merge output
            + scratch_words(qb, k, bt.max(candidate_cap(k))) * 8 // select scratch for large k
            + qb * (candidate_cap(k) * 12 + 4)        // filtered candidates
            + if base_resident { 0 } else { bt * row_bytes }
            + (qb + bt) * 4 // norms
            + 4096
    };
    // Each query in a super-block keeps k (value, id) pairs and, when the
    // queries are on the host, its row.
    let per_query = k * 12 + if queries_resident { 0 } else { row_bytes } + 4;
    let mut bt = nx.min(1 << 16);
    let mut qb = nq.min(4096);
    while need(qb, bt) + qb * per_query > budget {
        if qb > 256 {
            qb /= 2;
        } else if bt > 1024 {
            bt /= 2;
        } else if qb > 1 {
            qb /= 2;
        } else if bt > 1 {
            bt /= 2;
        } else {
            return Err(Error::OutOfDeviceMemory {
                what: "one k-NN tile (1 query x 1 base row)",
                requested: need(1, 1) + per_query,
                available: budget,
            });
        }
    }
    let spare = budget - need(qb, bt);
    // With few query rows, a row's first tile is selected in parts by
    // separate blocks, each keeping a list: reserve room for those lists.
    let per_part = k * 12 + scratch_words(1, k, bt) * 8;
    let want = if qb < 2 * sms { 2 * sms + qb } else { 0 };
    let reserve = (want * per_part).min(spare / 2);
    let part_rows = reserve / per_part;
    let spare = spare - reserve;
    let sb = (spare / per_query).min(nq).max(qb);
    let sb = if sb >= nq { nq } else { sb / qb * qb };
    Ok(Tiling {
        query_block: qb,
        base_tile: bt,
        super_block: sb,
        part_rows,
    })
}

/// Blocks per row for the select and filter kernels: with few rows, each
/// row is cut into parts of at least 4,096 values so that about two blocks
/// per multiprocessor run.
pub(crate) fn row_split(rows: usize, n: usize, sms: usize) -> usize {
    let target = 2 * sms;
    if rows >= target {
        1
    } else {
        target.div_ceil(rows).min(n / 4096).max(1)
    }
}

pub(crate) fn run(
    dev: &Arc<CudaDevice>,
    q: &Input<'_>,
    x: &Input<'_>,
    k: usize,
    p: &Prepared,
    budget: usize,
) -> Result<Neighbors> {
    let dev = &**dev;
    let _g = dev.lock();
    let order = p.metric.order();
    let (nq, nx, dim) = (q.rows(), x.rows(), x.dim());
    let pr = per_row(x);
    let row_bytes = pr * if x.is_binary() { 8 } else { 4 };
    let x_res = resident(x);
    let q_res = resident(q).is_some();
    let t = plan_tiles(
        nq,
        nx,
        k,
        row_bytes,
        x_res.is_some(),
        q_res,
        budget,
        dev.sm_count(),
    )?;
    let plan = DistPlan::new(dev, p, dim)?;
    // A resident base keeps its squared norms between calls.
    let x_norms = if plan.needs_norms() {
        resident_norms(dev, x)?
    } else {
        None
    };

    let mut dbuf = dev.alloc::<f32>(t.query_block * t.base_tile)?;
    let mut xn = dev.alloc::<f32>(t.base_tile)?;
    let mut tmp_d = dev.alloc::<f32>(t.query_block * k)?;
    let mut tmp_i = dev.alloc::<u64>(t.query_block * k)?;
    let mut mrg_d = dev.alloc::<f32>(t.query_block * k)?;
    let mut mrg_i = dev.alloc::<u64>(t.query_block * k)?;
    let cap = candidate_cap(k);
    let mut cand_d = dev.alloc::<f32>(t.query_block * cap)?;
    let mut cand_i = dev.alloc::<u64>(t.query_block * cap)?;
    let mut counts = dev.alloc::<i32>(t.query_block)?;
    let mut scratch = None;
    let (mut part_d, mut part_i): (Option<CudaSlice<f32>>, Option<CudaSlice<u64>>) = (None, None);
    let mut xstage = if x_res.is_none() {
        Some(staging(dev, x, t.base_tile)?)
    } else {
        None
    };

    let mut result: Option<Neighbors> = None;
    for s0 in (0..nq).step_by(t.super_block) {
        let s1 = (s0 + t.super_block).min(nq);
        let sn = s1 - s0;
        // The super-block's queries on the device.
        let q_all = if q_res { Some(whole(dev, q)?) } else { None };
        let q_own = if q_res {
            None
        } else {
            let mut st = staging(dev, q, sn)?;
            upload_rows(dev, q, s0, s1, &mut st)?;
            Some(st)
        };
        let (q_rows, q_first) = match (&q_all, &q_own) {
            (Some(a), _) => (a.rows(), s0),
            (None, Some(o)) => (o, 0),
            _ => unreachable!("queries are either resident or staged"),
        };
        // The super-block's query norms, once for the whole pass over the base.
        let qn_all = query_norms(dev, &plan, &q_rows.rows(q_first, q_first + sn, pr), sn)?;
        let mut st_d = dev.alloc::<f32>(sn * k)?;
        let mut st_i = dev.alloc::<u64>(sn * k)?;
        for (ti, x0) in (0..nx).step_by(t.base_tile).enumerate() {
            let x1 = (x0 + t.base_tile).min(nx);
            let n = x1 - x0;
            let xr = match (x_res, &mut xstage) {
                (Some(r), _) => r.rows(x0, x1, pr),
                (None, Some(st)) => {
                    upload_rows(dev, x, x0, x1, st)?;
                    st.rows(0, n, pr)
                }
                _ => unreachable!("base is either resident or staged"),
            };
            for b0 in (0..sn).step_by(t.query_block) {
                let b1 = (b0 + t.query_block).min(sn);
                let m = b1 - b0;
                let qr = q_rows.rows(q_first + b0, q_first + b1, pr);
                let qn = qn_all.as_ref().map(|s| s.slice(b0..b1));
                // Later tiles of GEMM metrics stay raw dot products: the
                // filter (and its fallback) apply the epilogue while reading.
                let raw = ti > 0 && p.metric.is_gemm_based();
                let cached = x_norms.map(|c| c.slice(x0..x1));
                tile(
                    dev,
                    &plan,
                    &qr,
                    m,
                    qn.as_ref(),
                    &xr,
                    n,
                    &mut xn,
                    cached.as_ref(),
                    &mut dbuf,
                    !raw,
                )?;
                let dview = dbuf.slice(..m * n);
                let xn_view = cached.unwrap_or_else(|| xn.as_view());
                let (qn_ptr, _qg) = match &qn {
                    Some(v) => {
                        let (p, g) = v.device_ptr(&dev.stream);
                        (p, Some(g))
                    }
                    None => (0, None),
                };
                let (xn_ptr, _xg) = xn_view.device_ptr(&dev.stream);
                let epi = Epi {
                    on: raw as i32,
                    metric: metric_code(p.metric),
                    normalized: !plan.needs_norms() as i32,
                    qn: qn_ptr,
                    xn: xn_ptr,
                };
                let split = row_split(m, n, dev.sm_count());
                // The first tile's parts need lists of their own.
                let first_split = split.min((t.part_rows / m).max(1));
                if ti == 0 && first_split == 1 {
                    launch_topk(
                        dev,
                        &dview,
                        n,
                        m,
                        n,
                        k,
                        order,
                        Ids::Offset(x0 as u64),
                        &mut st_d.slice_mut(b0 * k..b1 * k),
                        &mut st_i.slice_mut(b0 * k..b1 * k),
                        &mut scratch,
                        None,
                        Epi::default(),
                        1,
                    )?;
                } else if ti == 0 {
                    // Few rows: `split` blocks per row each select from one
                    // part, then one block per row selects among their lists.
                    let split = first_split;
                    let parts = m * split * k;
                    if part_d.as_ref().is_none_or(|p| p.len() < parts) {
                        part_d = Some(dev.alloc::<f32>(parts)?);
                        part_i = Some(dev.alloc::<u64>(parts)?);
                    }
                    let (pd, pi) = (part_d.as_mut().unwrap(), part_i.as_mut().unwrap());
                    launch_topk(
                        dev,
                        &dview,
                        n,
                        m,
                        n,
                        k,
                        order,
                        Ids::Offset(x0 as u64),
                        &mut pd.slice_mut(..parts),
                        &mut pi.slice_mut(..parts),
                        &mut scratch,
                        None,
                        Epi::default(),
                        split,
                    )?;
                    launch_topk(
                        dev,
                        &pd.slice(..parts),
                        split * k,
                        m,
                        split * k,
                        k,
                        order,
                        Ids::Explicit(&pi.slice(..parts), (split * k) as i64),
                        &mut st_d.slice_mut(b0 * k..b1 * k),
                        &mut st_i.slice_mut(b0 * k..b1 * k),
                        &mut scratch,
                        None,
                        Epi::default(),
                        1,
                    )?;
                } else {
                    // Only entries that beat a row's current k-th best can
                    // enter it: filter them, then select among the few.
                    launch_filter(
                        dev,
                        &dview,
                        m,
                        n,
                        order,
                        x0 as u64,
                        (&st_d.slice(b0 * k..b1 * k), &st_i.slice(b0 * k..b1 * k), k),
                        (
                            &mut cand_d.slice_mut(..m * cap),
                            &mut cand_i.slice_mut(..m * cap),
                            cap,
                        ),
                        &mut counts,
                        epi,
                        split,
                    )?;
                    launch_topk(
                        dev,
                        &cand_d.slice(..m * cap),
                        cap,
                        m,
                        cap,
                        k,
                        order,
                        Ids::Explicit(&cand_i.slice(..m * cap), cap as i64),
                        &mut tmp_d.slice_mut(..m * k),
                        &mut tmp_i.slice_mut(..m * k),
                        &mut scratch,
                        Some(Fallback {
                            counts: &counts,
                            cap,
                            full: &dview,
                            full_n: n,
                            full_offset: x0 as u64,
                        }),
                        epi,
                        1,
                    )?;
                    launch_merge(
                        dev,
                        m,
                        (&st_d.slice(b0 * k..b1 * k), &st_i.slice(b0 * k..b1 * k), k),
                        (&tmp_d.slice(..m * k), &tmp_i.slice(..m * k), k),
                        k,
                        order,
                        &mut mrg_d.slice_mut(..m * k),
                        &mut mrg_i.slice_mut(..m * k),
                    )?;
                    dev.stream
                        .memcpy_dtod(&mrg_d.slice(..m * k), &mut st_d.slice_mut(b0 * k..b1 * k))
                        .map_err(cu("cuMemcpyDtoD"))?;
                    dev.stream
                        .memcpy_dtod(&mrg_i.slice(..m * k), &mut st_i.slice_mut(b0 * k..b1 * k))
                        .map_err(cu("cuMemcpyDtoD"))?;
                }
            }
        }
        let ds = dev
            .stream
            .clone_dtoh(&st_d)
            .map_err(cu("download (cuMemcpyDtoH)"))?;
        let is = dev
            .stream
            .clone_dtoh(&st_i)
            .map_err(cu("download (cuMemcpyDtoH)"))?;
        dev.sync()?;
        let part = Neighbors::from_parts(sn, k, order, is, ds)?;
        match &mut result {
            None => result = Some(part),
            Some(r) => r.append_rows(part),
        }
    }
    result.ok_or(Error::EmptyInput { what: "queries" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_fit_the_budget_or_fail_with_numbers() {
        let t = plan_tiles(10_000, 1_000_000, 10, 512, true, false, 8 << 30, 132).unwrap();
        assert!(t.query_block >= 256 && t.base_tile >= 1024);
        let small = plan_tiles(10_000, 1_000_000, 10, 512, false, false, 1 << 20, 132).unwrap();
        assert!(small.query_block * small.base_tile * 4 < 1 << 20);
        match plan_tiles(10, 10, 1_000_000, 512, false, false, 1000, 132) {
            Err(Error::OutOfDeviceMemory { available, .. }) => assert_eq!(available, 1000),
            other => panic!("expected OutOfDeviceMemory, got {other:?}"),
        }
    }

    #[test]
    fn few_rows_are_split_across_blocks() {
        assert_eq!(row_split(10_000, 65_536, 132), 1);
        assert_eq!(row_split(1, 65_536, 132), 16);
        assert_eq!(row_split(16, 65_536, 132), 16);
        assert_eq!(row_split(64, 65_536, 132), 5);
        assert_eq!(row_split(1, 1000, 132), 1);
    }
}

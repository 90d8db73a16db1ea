//! CUDA selection: row-wise top-k for any k (radix select + bitonic sort in
//! one block per row), a merge of sorted partial lists, streaming top-k.

use cudarc::driver::{CudaSlice, CudaView, CudaViewMut, DeviceRepr, LaunchConfig, PushKernelArg};

use crate::core::error::{cu, Error, Result};
use crate::core::matrix::MatrixView;
use crate::core::neighbors::{Neighbors, Order};
use std::sync::Arc;

use crate::runtime::backend::{SelectBackend, TopKState};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{upload_slice, CudaRows};
use crate::runtime::input::Input;
use crate::runtime::tensor::{DeviceMatrix, Storage};

/// Items a block sorts in shared memory (`VA_SMEM_ITEMS` in select.cu).
const SMEM_ITEMS: usize = 2048;

/// Items per row of global select scratch for rows of up to `n` candidates
/// (0 when the kernel sorts in shared memory).
pub(crate) fn scratch_stride(k: usize, n: usize) -> usize {
    let kpad = k.min(n).next_power_of_two();
    if kpad > SMEM_ITEMS {
        kpad
    } else {
        0
    }
}

/// Global scratch (in u64 words, two per item) the select kernel needs for `rows` rows.
pub(crate) fn scratch_words(rows: usize, k: usize, n: usize) -> usize {
    rows * scratch_stride(k, n) * 2
}

/// Kernel argument (`VaEpi` in common.cuh): when `on`, tile values are raw dot
/// products that the kernel turns into the metric's values itself.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Epi {
    pub on: i32,
    pub metric: i32,
    pub normalized: i32,
    pub qn: u64,
    pub xn: u64,
}

// SAFETY: plain old data with the C layout of `VaEpi`.
unsafe impl DeviceRepr for Epi {}

/// Candidates kept per row by the filter before a row falls back to a full select.
pub(crate) fn candidate_cap(k: usize) -> usize {
    (8 * k).max(512)
}

/// Where candidate ids come from.
#[derive(Clone, Copy)]
pub(crate) enum Ids<'a> {
    /// `offset + column`.
    Offset(u64),
    /// `ids[row * ld + column]` (ld = 0: one id per column).
    Explicit(&'a CudaView<'a, u64>, i64),
}

/// Candidate lists with per-row counts (made by [`launch_filter`] or the
/// fused filter): a row selects from its first `counts[row]` entries, or,
/// when its count exceeds `cap` and full rows are given, from its full
/// distance row (`full_n` values, ids from `full_offset`) instead.
#[derive(Clone, Copy)]
pub(crate) struct Fallback<'a> {
    pub counts: &'a CudaSlice<i32>,
    pub cap: usize,
    pub full: Option<&'a CudaView<'a, f32>>,
    pub full_n: usize,
    /// Leading dimension of the full rows (0: `full_n`).
    pub full_ld: usize,
    pub full_offset: u64,
}

/// Sorted lists of `k` (value, id) pairs per row, as the filter and merge
/// kernels read them.
#[derive(Clone, Copy)]
pub(crate) struct ListsRef<'a> {
    /// Values, `k` per row, best first.
    pub dist: &'a CudaView<'a, f32>,
    /// Ids of the values.
    pub ids: &'a CudaView<'a, u64>,
    /// Entries per row.
    pub k: usize,
}

/// (value, id) lists a kernel writes: `k` per row for a select or merge,
/// `cap` per row for a candidate filter.
pub(crate) struct ListsMut<'a> {
    /// Values.
    pub dist: CudaViewMut<'a, f32>,
    /// Ids of the values.
    pub ids: CudaViewMut<'a, u64>,
}

/// One row-wise top-k launch ([`launch_topk`]).
#[derive(Clone, Copy)]
pub(crate) struct TopK<'a> {
    /// The values, `rows` rows `ld` apart.
    pub vals: &'a CudaView<'a, f32>,
    /// Leading dimension of `vals`.
    pub ld: usize,
    /// Rows to select in.
    pub rows: usize,
    /// Values per row to select from.
    pub n: usize,
    /// Entries kept per row.
    pub k: usize,
    /// Which values are best.
    pub order: Order,
    /// Where the ids of the values come from.
    pub ids: Ids<'a>,
    /// Per-row candidate counts, for lists made by a filter.
    pub fallback: Option<Fallback<'a>>,
    /// The metric's epilogue, when the values are raw dot products.
    pub epi: Epi,
    /// Blocks per row, each keeping a list of its part (1: one list per row).
    pub split: usize,
}

/// Best `job.k` of each row into `out` (`rows x split x k`), sorted best
/// first. With `split > 1`, each row is cut into `split` parts selected by
/// separate blocks, giving `rows x split` lists of `k` (a second pass merges
/// them). `scratch` grows to what large `k` needs and is kept for the next
/// launch.
pub(crate) fn launch_topk(
    dev: &CudaDevice,
    job: &TopK<'_>,
    out: &mut ListsMut<'_>,
    scratch: &mut Option<CudaSlice<u64>>,
) -> Result<()> {
    if let Some(offset) = warp_select(dev, job) {
        return launch_warp_topk(dev, job, offset, out);
    }
    let (rows, n, k, split) = (job.rows, job.n, job.k, job.split);
    let f = dev.func("select", "topk_rows_f32")?;
    let widest = job.fallback.as_ref().map_or(n, |fb| n.max(fb.full_n));
    let stride = scratch_stride(k, widest);
    let need = rows * split * stride * 2;
    if need > 0 && scratch.as_ref().is_none_or(|s| s.len() < need) {
        *scratch = Some(dev.alloc::<u64>(need)?);
    }
    let dummy;
    let scr: &CudaSlice<u64> = match scratch {
        Some(s) => s,
        None => {
            dummy = dev.alloc::<u64>(2)?;
            &dummy
        }
    };
    let (ld_i, n_i, k_i, desc) = (
        job.ld as i64,
        n as i32,
        k as i32,
        (job.order == Order::Largest) as i32,
    );
    let stride_i = stride as i64;
    let null: u64 = 0;
    let zero_ld: i64 = 0;
    let split_i = split as i32;
    let cfg = LaunchConfig {
        grid_dim: ((rows * split) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut b = dev.stream.launch_builder(&f);
    b.arg(job.vals).arg(&ld_i).arg(&n_i).arg(&k_i).arg(&desc);
    let offset;
    match &job.ids {
        Ids::Offset(o) => {
            offset = *o;
            b.arg(&null).arg(&zero_ld).arg(&offset);
        }
        Ids::Explicit(s, l) => {
            offset = 0;
            b.arg(*s).arg(l).arg(&offset);
        }
    }
    b.arg(&mut out.dist)
        .arg(&mut out.ids)
        .arg(scr)
        .arg(&stride_i);
    let (cap, full_ld, full_n, full_off);
    match &job.fallback {
        Some(fb) => {
            cap = fb.cap as i32;
            full_ld = if fb.full_ld == 0 {
                fb.full_n
            } else {
                fb.full_ld
            } as i64;
            full_n = fb.full_n as i32;
            full_off = fb.full_offset;
            b.arg(fb.counts).arg(&cap);
            match fb.full {
                Some(v) => b.arg(v),
                None => b.arg(&null),
            };
            b.arg(&full_ld).arg(&full_n).arg(&full_off);
        }
        None => {
            cap = 0;
            full_ld = 0;
            full_n = 0;
            full_off = 0;
            b.arg(&null)
                .arg(&cap)
                .arg(&null)
                .arg(&full_ld)
                .arg(&full_n)
                .arg(&full_off);
        }
    }
    b.arg(&job.epi).arg(&split_i);
    // SAFETY: vals holds rows*ld floats with n <= ld; outputs hold rows*split*k;
    // scratch rows*stride items when used; the fallback rows hold full_n floats.
    unsafe { b.launch(cfg) }.map_err(cu("topk_rows_f32 launch"))?;
    Ok(())
}

/// One candidate filter launch ([`launch_filter`]) over a distance tile.
pub(crate) struct TileFilter<'a> {
    /// The tile's values, `rows` rows `ld` apart.
    pub vals: &'a CudaView<'a, f32>,
    /// Rows of the tile.
    pub rows: usize,
    /// Values per row.
    pub n: usize,
    /// Leading dimension of `vals`.
    pub ld: usize,
    /// Which values are best.
    pub order: Order,
    /// Id of the tile's first column.
    pub offset: u64,
    /// Each row's current best, whose k-th entry a candidate must beat.
    pub lists: ListsRef<'a>,
    /// Candidates kept per row.
    pub cap: usize,
    /// The metric's epilogue, when the values are raw dot products.
    pub epi: Epi,
    /// Blocks per row.
    pub split: usize,
}

/// Copies, per row of a distance tile, the entries that beat the row's
/// current k-th best into `cand` (`cap` per row) and counts them in
/// `counts`.
pub(crate) fn launch_filter(
    dev: &CudaDevice,
    job: &TileFilter<'_>,
    cand: &mut ListsMut<'_>,
    counts: &mut CudaSlice<i32>,
) -> Result<()> {
    let f = dev.func("select", "filter_candidates")?;
    dev.stream.memset_zeros(counts).map_err(cu("cuMemsetD8"))?;
    let split_i = job.split as i32;
    let (ld, n_i, desc, k, cap) = (
        job.ld as i64,
        job.n as i32,
        (job.order == Order::Largest) as i32,
        job.lists.k as i32,
        job.cap as i32,
    );
    let cfg = LaunchConfig {
        grid_dim: ((job.rows * job.split) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut b = dev.stream.launch_builder(&f);
    b.arg(job.vals)
        .arg(&ld)
        .arg(&n_i)
        .arg(&desc)
        .arg(&job.offset)
        .arg(job.lists.dist)
        .arg(job.lists.ids)
        .arg(&k);
    b.arg(&mut cand.dist)
        .arg(&mut cand.ids)
        .arg(&cap)
        .arg(counts)
        .arg(&job.epi)
        .arg(&split_i);
    // SAFETY: vals rows*n, lists rows*k, candidates rows*cap, counts rows.
    unsafe { b.launch(cfg) }.map_err(cu("filter_candidates launch"))?;
    Ok(())
}

/// Merges sorted lists `a` and `b` of `rows` rows into the best `k` per row.
pub(crate) struct Merge<'a> {
    /// Rows of both lists.
    pub rows: usize,
    /// First lists.
    pub a: ListsRef<'a>,
    /// Second lists.
    pub b: ListsRef<'a>,
    /// Entries kept per row.
    pub k: usize,
    /// Which values are best.
    pub order: Order,
}

/// The merge of `job` into `out` (`rows x k`).
pub(crate) fn launch_merge(
    dev: &CudaDevice,
    job: &Merge<'_>,
    out: &mut ListsMut<'_>,
) -> Result<()> {
    let f = dev.func("select", "merge_sorted")?;
    let (ka, kb, k_i, desc) = (
        job.a.k as i32,
        job.b.k as i32,
        job.k as i32,
        (job.order == Order::Largest) as i32,
    );
    let cfg = LaunchConfig {
        grid_dim: (job.rows as u32, 1, 1),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut l = dev.stream.launch_builder(&f);
    l.arg(job.a.dist)
        .arg(job.a.ids)
        .arg(&ka)
        .arg(job.b.dist)
        .arg(job.b.ids)
        .arg(&kb)
        .arg(&k_i)
        .arg(&desc)
        .arg(&mut out.dist)
        .arg(&mut out.ids);
    // SAFETY: inputs rows*ka / rows*kb, outputs rows*k.
    unsafe { l.launch(cfg) }.map_err(cu("merge_sorted launch"))?;
    Ok(())
}

pub(crate) fn download(
    dev: &CudaDevice,
    d: &CudaSlice<f32>,
    i: &CudaSlice<u64>,
    rows: usize,
    k: usize,
    order: Order,
) -> Result<Neighbors> {
    let dist = dev
        .stream
        .clone_dtoh(d)
        .map_err(cu("download (cuMemcpyDtoH)"))?;
    let ids = dev
        .stream
        .clone_dtoh(i)
        .map_err(cu("download (cuMemcpyDtoH)"))?;
    dev.sync()?;
    Neighbors::from_parts(
        rows,
        k,
        order,
        ids[..rows * k].to_vec(),
        dist[..rows * k].to_vec(),
    )
}

/// Row-wise top-k of a host matrix on the device.
pub(crate) fn topk_rows(
    dev: &CudaDevice,
    values: MatrixView<'_>,
    k: usize,
    order: Order,
) -> Result<Neighbors> {
    let _g = dev.lock();
    let v = upload_slice(dev, values.as_slice())?;
    select_rows(dev, &v.as_view(), values.rows(), values.dim(), k, order)
}

/// Row-wise top-k of `f32` rows resident on the device, selected in place.
pub(crate) fn topk_device_rows(
    dev: &CudaDevice,
    values: &DeviceMatrix,
    k: usize,
    order: Order,
) -> Result<Neighbors> {
    let _g = dev.lock();
    let Storage::Cuda(_, CudaRows::F32(v)) = &values.storage else {
        return Err(Error::invalid(
            "values",
            "bit-packed binary rows",
            "top-k selects among f32 values",
        ));
    };
    select_rows(dev, &v.as_view(), values.rows(), values.dim(), k, order)
}

/// Columns of the sample whose k-th best bounds a long row's k-th best in
/// the two-pass select, or None when one pass suits the rows better.
fn sample_columns(n: usize, k: usize) -> Option<usize> {
    let s = (128 * k).max(4096);
    (k <= 2048 && n >= 4 * s).then_some(s)
}

/// Top-k of `rows` device rows of `n` values (the caller holds the lock).
///
/// Long rows take two passes over their values instead of the radix
/// select's five or six (see [`select_sampled`]).
pub(crate) fn select_rows(
    dev: &CudaDevice,
    v: &CudaView<'_, f32>,
    rows: usize,
    n: usize,
    k: usize,
    order: Order,
) -> Result<Neighbors> {
    let mut od = dev.alloc::<f32>(rows * k)?;
    let mut oi = dev.alloc::<u64>(rows * k)?;
    let mut out = ListsMut {
        dist: od.as_view_mut(),
        ids: oi.as_view_mut(),
    };
    select_rows_into(dev, v, (rows, n), k, order, &mut out)?;
    download(dev, &od, &oi, rows, k, order)
}

/// Top-k of `rows` device rows of `n` values into `out` (`rows x k`, on
/// the device; the caller holds the lock).
pub(crate) fn select_rows_into(
    dev: &CudaDevice,
    v: &CudaView<'_, f32>,
    (rows, n): (usize, usize),
    k: usize,
    order: Order,
    out: &mut ListsMut<'_>,
) -> Result<()> {
    let mut scratch = None;
    let job = TopK {
        vals: v,
        ld: n,
        rows,
        n,
        k,
        order,
        ids: Ids::Offset(0),
        fallback: None,
        epi: Epi::default(),
        split: 1,
    };
    match sample_columns(n, k) {
        Some(sample) => select_sampled(dev, &job, sample, out, &mut scratch),
        None => launch_topk(dev, &job, out, &mut scratch),
    }
}

/// Largest `k` the one-warp-per-row select keeps (a list entry per lane).
const WARP_K: usize = 32;

/// The id offset of `job` when the one-warp-per-row select takes it: `k`
/// at most [`WARP_K`], plain rows (column ids, one list per row, no
/// fallback or epilogue), and rows short enough or many enough for a warp
/// each (a warp reads its row alone, 128 values a step). Measured on an
/// H100 (10,000 rows of 3,000 values, k 10, the IVF scan's select): the
/// radix select, whose five or more passes over a row each end in a block
/// barrier, took 0.9 ms.
fn warp_select(dev: &CudaDevice, job: &TopK<'_>) -> Option<u64> {
    let Ids::Offset(offset) = job.ids else {
        return None;
    };
    let plain = job.split == 1 && job.fallback.is_none() && job.epi.on == 0;
    let fits = job.n <= 8192 || job.rows >= 16 * dev.sm_count();
    (job.k <= WARP_K && plain && fits).then_some(offset)
}

/// The best `job.k` of each row of `job`, one warp per row (see
/// [`warp_select`]).
fn launch_warp_topk(
    dev: &CudaDevice,
    job: &TopK<'_>,
    offset: u64,
    out: &mut ListsMut<'_>,
) -> Result<()> {
    let f = dev.func("select", "topk_warp_f32")?;
    let (ld, rows, n, k) = (job.ld as i64, job.rows as i32, job.n as i32, job.k as i32);
    let desc = i32::from(job.order == Order::Largest);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(job.vals)
        .arg(&ld)
        .arg(&rows)
        .arg(&n)
        .arg(&k)
        .arg(&desc)
        .arg(&offset)
        .arg(&mut out.dist)
        .arg(&mut out.ids);
    let cfg = LaunchConfig {
        grid_dim: (job.rows.div_ceil(8) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: vals holds rows rows of ld >= n values; the outputs rows * k.
    unsafe { b.launch(cfg) }.map_err(cu("topk_warp_f32 launch"))?;
    Ok(())
}

/// The two-pass select of `job` (plain rows, one list per row) into `out`:
/// the top-k of the first `sample` columns of each row gives a k-th best
/// that the whole row's can only improve on; one pass over the rest keeps
/// the values that beat it (about k (n - s) / s per row for rows in no
/// particular order), and a select among those, merged with the sample's
/// list, is the answer. A row with more candidates than fit (e.g. sorted
/// rows) is selected from its full remainder instead.
fn select_sampled(
    dev: &CudaDevice,
    job: &TopK<'_>,
    sample: usize,
    out: &mut ListsMut<'_>,
    scratch: &mut Option<CudaSlice<u64>>,
) -> Result<()> {
    let TopK {
        vals,
        rows,
        n,
        k,
        order,
        ..
    } = *job;
    let rest = n - sample;
    let cap = 2 * k * rest / sample + 1024;
    let (mut sample_d, mut sample_i) = (dev.alloc::<f32>(rows * k)?, dev.alloc::<u64>(rows * k)?);
    let sample_job = TopK { n: sample, ..*job };
    let mut sample_out = ListsMut {
        dist: sample_d.as_view_mut(),
        ids: sample_i.as_view_mut(),
    };
    launch_topk(dev, &sample_job, &mut sample_out, scratch)?;
    let (mut cand_d, mut cand_i) = (dev.alloc::<f32>(rows * cap)?, dev.alloc::<u64>(rows * cap)?);
    let mut counts = dev.alloc::<i32>(rows)?;
    let tail = vals.slice(sample..);
    let sample_lists = ListsRef {
        dist: &sample_d.as_view(),
        ids: &sample_i.as_view(),
        k,
    };
    let filter = TileFilter {
        vals: &tail,
        rows,
        n: rest,
        ld: n,
        order,
        offset: sample as u64,
        lists: sample_lists,
        cap,
        epi: Epi::default(),
        split: row_split(rows, rest, dev.sm_count()),
    };
    let mut cand = ListsMut {
        dist: cand_d.as_view_mut(),
        ids: cand_i.as_view_mut(),
    };
    launch_filter(dev, &filter, &mut cand, &mut counts)?;
    let (mut tail_d, mut tail_i) = (dev.alloc::<f32>(rows * k)?, dev.alloc::<u64>(rows * k)?);
    let tail_job = TopK {
        vals: &cand_d.as_view(),
        ld: cap,
        rows,
        n: cap,
        k,
        order,
        ids: Ids::Explicit(&cand_i.as_view(), cap as i64),
        fallback: Some(Fallback {
            counts: &counts,
            cap,
            full: Some(&tail),
            full_n: rest,
            full_ld: n,
            full_offset: sample as u64,
        }),
        epi: Epi::default(),
        split: 1,
    };
    let mut tail_out = ListsMut {
        dist: tail_d.as_view_mut(),
        ids: tail_i.as_view_mut(),
    };
    launch_topk(dev, &tail_job, &mut tail_out, scratch)?;
    let merge = Merge {
        rows,
        a: sample_lists,
        b: ListsRef {
            dist: &tail_d.as_view(),
            ids: &tail_i.as_view(),
            k,
        },
        k,
        order,
    };
    launch_merge(dev, &merge, out)
}

/// Merge of partial lists (any order within each list): all candidates of a
/// row are selected at once with their ids.
pub(crate) fn merge(
    dev: &CudaDevice,
    lists: &[Neighbors],
    k: usize,
    order: Order,
) -> Result<Neighbors> {
    let _g = dev.lock();
    let rows = lists[0].rows();
    let total: usize = lists.iter().map(|l| l.k()).sum();
    let mut vals = Vec::with_capacity(rows * total);
    let mut ids = Vec::with_capacity(rows * total);
    for r in 0..rows {
        for l in lists {
            vals.extend_from_slice(l.row_distances(r));
            ids.extend_from_slice(l.row_ids(r));
        }
    }
    let v = upload_slice(dev, &vals)?;
    let id = upload_slice(dev, &ids)?;
    let mut od = dev.alloc::<f32>(rows * k)?;
    let mut oi = dev.alloc::<u64>(rows * k)?;
    let mut scratch = None;
    let job = TopK {
        vals: &v.as_view(),
        ld: total,
        rows,
        n: total,
        k,
        order,
        ids: Ids::Explicit(&id.as_view(), total as i64),
        fallback: None,
        epi: Epi::default(),
        split: 1,
    };
    let mut out = ListsMut {
        dist: od.as_view_mut(),
        ids: oi.as_view_mut(),
    };
    launch_topk(dev, &job, &mut out, &mut scratch)?;
    download(dev, &od, &oi, rows, k, order)
}

/// Streaming top-k state kept on the device.
pub(crate) struct DeviceTopK {
    dev: std::sync::Arc<CudaDevice>,
    rows: usize,
    k: usize,
    order: Order,
    d: CudaSlice<f32>,
    i: CudaSlice<u64>,
    pushed: bool,
}

impl DeviceTopK {
    pub(crate) fn new(
        dev: &std::sync::Arc<CudaDevice>,
        rows: usize,
        k: usize,
        order: Order,
    ) -> Result<Self> {
        let _g = dev.lock();
        Ok(Self {
            dev: dev.clone(),
            rows,
            k,
            order,
            d: dev.alloc::<f32>(rows * k)?,
            i: dev.alloc::<u64>(rows * k)?,
            pushed: false,
        })
    }
}

impl TopKState for DeviceTopK {
    fn push(&mut self, values: MatrixView<'_>, ids: &[u64]) -> Result<()> {
        let dev = &*self.dev;
        let _g = dev.lock();
        let (rows, n, k) = (self.rows, values.dim(), self.k);
        let v = upload_slice(dev, values.as_slice())?;
        let id = upload_slice(dev, ids)?;
        let mut scratch = None;
        let mut td = dev.alloc::<f32>(rows * k)?;
        let mut ti = dev.alloc::<u64>(rows * k)?;
        let job = TopK {
            vals: &v.as_view(),
            ld: n,
            rows,
            n,
            k,
            order: self.order,
            ids: Ids::Explicit(&id.as_view(), 0),
            fallback: None,
            epi: Epi::default(),
            split: 1,
        };
        let mut out = ListsMut {
            dist: td.as_view_mut(),
            ids: ti.as_view_mut(),
        };
        launch_topk(dev, &job, &mut out, &mut scratch)?;
        if self.pushed {
            let mut md = dev.alloc::<f32>(rows * k)?;
            let mut mi = dev.alloc::<u64>(rows * k)?;
            let merge = Merge {
                rows,
                a: ListsRef {
                    dist: &self.d.as_view(),
                    ids: &self.i.as_view(),
                    k,
                },
                b: ListsRef {
                    dist: &td.as_view(),
                    ids: &ti.as_view(),
                    k,
                },
                k,
                order: self.order,
            };
            let mut merged = ListsMut {
                dist: md.as_view_mut(),
                ids: mi.as_view_mut(),
            };
            launch_merge(dev, &merge, &mut merged)?;
            self.d = md;
            self.i = mi;
        } else {
            self.d = td;
            self.i = ti;
            self.pushed = true;
        }
        dev.sync()
    }

    fn finish(self: Box<Self>) -> Result<Neighbors> {
        if !self.pushed {
            return Ok(Neighbors::missing(self.rows, self.k, self.order));
        }
        let _g = self.dev.lock();
        download(&self.dev, &self.d, &self.i, self.rows, self.k, self.order)
    }
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

impl SelectBackend for Arc<CudaDevice> {
    fn topk(&self, values: &Input<'_>, k: usize, order: Order) -> Result<Neighbors> {
        match values {
            Input::Resident(d) => topk_device_rows(self, d, k, order),
            Input::F32(m) => topk_rows(self, *m, k, order),
            Input::Binary(_) => Err(Error::invalid(
                "values",
                "bit-packed binary rows",
                "top-k selects among f32 values",
            )),
        }
    }

    fn merge(&self, lists: &[Neighbors], k: usize, order: Order) -> Result<Neighbors> {
        merge(self, lists, k, order)
    }

    fn streaming_topk(&self, rows: usize, k: usize, order: Order) -> Result<Box<dyn TopKState>> {
        Ok(Box::new(DeviceTopK::new(self, rows, k, order)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_rows_are_split_across_blocks() {
        assert_eq!(row_split(10_000, 65_536, 132), 1);
        assert_eq!(row_split(1, 65_536, 132), 16);
        assert_eq!(row_split(16, 65_536, 132), 16);
        assert_eq!(row_split(64, 65_536, 132), 5);
        assert_eq!(row_split(1, 1000, 132), 1);
    }
}

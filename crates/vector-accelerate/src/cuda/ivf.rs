//! CUDA host side of IVF list scans (`kernels/ivf.cu`): one launch computes
//! the distances of a chunk of queries to every row of their probed lists
//! (`[queries x nprobe * width]`, `width` the longest probed list), the
//! row-wise top-k selects the best, and the columns are mapped back to
//! slots on the host. Lists hold exact rows, scalar codes (decoded in the
//! scan) or 8-bit product codes (lookup tables per query and list).

use std::sync::Arc;

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use rayon::prelude::*;

use crate::core::error::{cu, Result};
use crate::core::metric::{Metric, Prepared};
use crate::core::neighbors::{missing_value, Neighbors, Order, MISSING_ID};
use crate::core::quantize::ScalarBits;
use crate::core::trace;
use crate::cuda::distance::{metric_code, whole};
use crate::runtime::backend::{IvfBackend, IvfScanJob, ListData, ListLayout, SelectBackend};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{f32_rows, upload_slice, CudaRows};
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

const MODULE: &str = "ivf";
/// The query is kept in shared memory: at most this many values.
const MAX_DIM: usize = 8192;
const NO_LIST: u32 = u32::MAX;
/// Scalar-coded scans keep four arrays of `dim` floats in shared memory.
const MAX_SQ_DIM: usize = 3072;
/// Shared memory of a product-coded scan at most (its lookup table of
/// `m x 256` floats and the query).
const MAX_PQ_SMEM: usize = 96 << 10;

/// The lists' offsets and slots on the device, kept with the packed lists,
/// and the codec's arrays (scales then offsets, or the codebooks).
struct DeviceLists {
    offsets: CudaSlice<u64>,
    slots: CudaSlice<u64>,
    params: Option<CudaSlice<f32>>,
}

/// The codec arrays a coded scan reads.
fn codec_params(rows: &ListData<'_>) -> Option<Vec<f32>> {
    match rows {
        ListData::F32(_) => None,
        ListData::Sq { sq, .. } => Some([sq.scales(), sq.offsets()].concat()),
        ListData::Pq { pq, .. } => Some(pq.centroids().to_vec()),
    }
}

/// Whether the coded scans compute `metric` (the coded lists' metrics).
fn coded_metric(metric: Metric) -> bool {
    matches!(
        metric,
        Metric::L2
            | Metric::Euclidean
            | Metric::InnerProduct
            | Metric::Cosine
            | Metric::CosineSimilarity
    )
}

impl IvfBackend for Arc<CudaDevice> {
    /// Measured on an H100 (1M x 128, 4,096 lists, nprobe 4, 10,000
    /// queries): the filtered scans took 33 ms at 10% of the rows allowed
    /// and 44 ms at 50%, against 5.6 and 15.1 ms for the exact search over
    /// the allowed rows; 256 sends filters passing up to half the rows to
    /// the exact search.
    fn filtered_scan_cost(&self) -> f64 {
        256.0
    }

    fn scans_packed_lists(&self, metric: &Prepared, layout: &ListLayout) -> bool {
        if metric.weights.is_some() {
            return false;
        }
        match *layout {
            ListLayout::F32 { dim } => f32_metric(metric.metric) && dim <= MAX_DIM,
            ListLayout::Sq { dim, .. } => coded_metric(metric.metric) && dim <= MAX_SQ_DIM,
            ListLayout::Pq { dim, m, nbits } => {
                coded_metric(metric.metric)
                    && nbits == 8
                    && pq_smem(dim, m, metric.metric) <= MAX_PQ_SMEM
            }
        }
    }

    fn ivf_scan(&self, job: IvfScanJob<'_>) -> Result<Option<Neighbors>> {
        if !self.scans_packed_lists(job.metric, &job.rows.layout()) {
            return Ok(None);
        }
        let lists = job.cache.find_or_make(
            |_: &DeviceLists| true,
            || {
                let _g = self.lock();
                let l = DeviceLists {
                    offsets: upload_slice(self, job.offsets)?,
                    slots: upload_slice(self, job.slots)?,
                    params: codec_params(&job.rows)
                        .map(|p| upload_slice(self, &p))
                        .transpose()?,
                };
                self.sync()?;
                Ok(Some(l))
            },
        )?;
        let lists = lists.expect("made above");
        let nq = job.queries.rows();
        let width = widest(&job);
        let per_query = (job.nprobe * width).max(1) * 4;
        let chunk = (job.budget / 2 / per_query).clamp(1, nq);
        if chunk >= nq {
            return Ok(Some(scan_chunk(
                self,
                &job,
                &lists,
                (job.queries, 0),
                width,
            )?));
        }
        let mut out = Vec::with_capacity(nq.div_ceil(chunk));
        let mut hold = None;
        let qv = job.queries.host_view(&mut hold)?;
        for q0 in (0..nq).step_by(chunk) {
            let q1 = (q0 + chunk).min(nq);
            let part = Input::F32(qv.slice_rows(q0, q1));
            out.push(scan_chunk(self, &job, &lists, (&part, q0), width)?);
        }
        let mut nn = out.remove(0);
        for part in out {
            nn.append_rows(part);
        }
        Ok(Some(nn))
    }
}

/// Whether the exact-row scans compute `metric`.
fn f32_metric(metric: Metric) -> bool {
    metric.is_gemm_based() || matches!(metric, Metric::L1 | Metric::Linf)
}

/// Shared memory bytes of a product-coded scan (a second table for the
/// rows' lengths under the cosine metrics).
fn pq_smem(dim: usize, m: usize, metric: Metric) -> usize {
    let tables = match metric {
        Metric::Cosine | Metric::CosineSimilarity => 2,
        _ => 1,
    };
    (tables * m * 256 + dim) * 4
}

/// The longest list any query probes.
fn widest(job: &IvfScanJob<'_>) -> usize {
    let len = |l: u32| {
        let l = l as usize;
        (job.offsets[l + 1] - job.offsets[l]) as usize
    };
    job.probes
        .iter()
        .filter(|&&l| l != NO_LIST)
        .map(|&l| len(l))
        .max()
        .unwrap_or(0)
        .max(1)
}

/// The shape of a grouped scan's work items (the kernel's `GQ` queries
/// by `GR` rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// 64 queries by 64 rows.
    Many,
    /// 16 queries by 256 rows.
    Few,
}

impl Shape {
    /// Queries per work item.
    fn queries(self) -> u32 {
        match self {
            Shape::Many => 64,
            Shape::Few => 16,
        }
    }
    /// The shape for `avg` queries per probed list (`None`: one block per
    /// (query, probe) pair).
    fn for_average(avg: f64) -> Option<Self> {
        if avg >= MANY_FROM {
            Some(Shape::Many)
        } else if avg >= FEW_FROM {
            Some(Shape::Few)
        } else {
            None
        }
    }
}

/// Average queries per probed list from which 64-query work items are used.
/// Measured on an H100 (1M x 128, 10,000 queries, each shape forced): with
/// lists of about 244 rows (4,096 lists) one block per (query, probe) took
/// 5.18 / 5.97 / 12.6 ms at nprobe 2 / 4 / 16 (about 5 / 10 / 39 queries
/// per list), 16-query items 5.08 / 5.20 / 8.0 ms and 64-query items
/// 5.74 / 5.86 / 8.6 ms; with lists of about 980 rows (1,024 lists) at
/// nprobe 1 / 8 (10 / 78 queries per list): 6.2 / 38.3, 4.9 / 11.0 and
/// 5.3 / 11.2 ms. The 64-query items never won up to 78; they are kept for
/// larger groups, where 16-query items read each list many times.
const MANY_FROM: f64 = 96.0;
/// Average queries per probed list from which 16-query work items are used
/// (level with one block per pair at about 5).
const FEW_FROM: f64 = 4.0;

/// The scan of queries `q0..q0 + part.rows()`.
fn scan_chunk(
    dev: &Arc<CudaDevice>,
    job: &IvfScanJob<'_>,
    lists: &DeviceLists,
    (part, q0): (&Input<'_>, usize),
    width: usize,
) -> Result<Neighbors> {
    let (nq, np) = (part.rows(), job.nprobe);
    let order = job.metric.metric.order();
    let probes = &job.probes[q0 * np..(q0 + nq) * np];
    // Read before the device lock: resident queries are downloaded for it.
    let norms = part.cosine_lengths(job.metric.metric)?;
    let values = {
        let _g = dev.lock();
        let q = whole(dev, part)?;
        let qnorm = norms.map(|n| upload_slice(dev, &n)).transpose()?;
        let allowed = job.allowed.map(|a| upload_slice(dev, a)).transpose()?;
        let mut out = dev.alloc::<f32>(nq * np * width)?;
        let scan = Scan {
            dev,
            job,
            lists,
            q: f32_rows(q.rows())?,
            qnorm: qnorm.as_ref(),
            allowed: allowed.as_ref(),
            probes,
            width,
        };
        match (job.rows, Groups::of(probes, np, job.offsets)) {
            (ListData::F32(_), Some(g)) => scan.grouped(&g, &mut out)?,
            (ListData::F32(rows), None) => scan.per_pair(rows, nq, &mut out)?,
            (coded, _) => scan.coded(&coded, nq, &mut out)?,
        }
        trace::mark("scan", || drop(dev.sync()));
        DeviceMatrix::from_cuda(dev, CudaRows::F32(out), nq, np * width, true)
    };
    let best = dev.topk(&Input::Resident(&values), job.k.min(np * width), order)?;
    trace::mark("topk", || drop(dev.sync()));
    let nn = to_slots(job, probes, &best, width);
    trace::mark("slots", || {});
    Ok(nn)
}

/// The queries of a chunk grouped by list, in work items of at most
/// [`Shape::queries`] queries of one list.
struct Groups {
    shape: Shape,
    /// List, first entry in `query`/`rank`, and count of each work item.
    list: Vec<u32>,
    start: Vec<u32>,
    count: Vec<u32>,
    /// Query (within the chunk) and its probe rank, list after list.
    query: Vec<u32>,
    rank: Vec<u32>,
}

impl Groups {
    /// The groups, when lists are probed by enough queries on average.
    fn of(probes: &[u32], np: usize, offsets: &[u64]) -> Option<Self> {
        // Counts first (cheap), the groups only when they are used.
        let mut count = vec![0u32; offsets.len() - 1];
        for &l in probes.iter().filter(|&&l| l != NO_LIST) {
            count[l as usize] += 1;
        }
        let probed = || count.iter().enumerate().filter(|(_, &c)| c > 0);
        let lists = probed().count();
        let pairs: usize = probed().map(|(_, &c)| c as usize).sum();
        if lists == 0 {
            return None;
        }
        let shape = Shape::for_average(pairs as f64 / lists as f64)?;
        // Entries of each list start where the lists before it end.
        let mut first = vec![0u32; count.len() + 1];
        for (l, &c) in count.iter().enumerate() {
            first[l + 1] = first[l] + c;
        }
        let (mut query, mut rank) = (vec![0u32; pairs], vec![0u32; pairs]);
        let mut next = first.clone();
        for (i, &l) in probes.iter().enumerate().filter(|(_, &l)| l != NO_LIST) {
            let at = next[l as usize] as usize;
            (query[at], rank[at]) = ((i / np) as u32, (i % np) as u32);
            next[l as usize] += 1;
        }
        let mut g = Groups {
            shape,
            list: Vec::new(),
            start: Vec::new(),
            count: Vec::new(),
            query,
            rank,
        };
        for (l, &c) in count.iter().enumerate().filter(|(_, &c)| c > 0) {
            for t in (0..c).step_by(shape.queries() as usize) {
                g.list.push(l as u32);
                g.start.push(first[l] + t);
                g.count.push((c - t).min(shape.queries()));
            }
        }
        Some(g)
    }
}

/// One chunk's scan launches (the caller holds the device lock).
struct Scan<'a> {
    dev: &'a Arc<CudaDevice>,
    job: &'a IvfScanJob<'a>,
    lists: &'a DeviceLists,
    q: &'a CudaSlice<f32>,
    qnorm: Option<&'a CudaSlice<f32>>,
    allowed: Option<&'a CudaSlice<u64>>,
    probes: &'a [u32],
    width: usize,
}

impl Scan<'_> {
    /// One block per (query, probe), a warp per list row.
    fn per_pair(&self, rows: &DeviceMatrix, nq: usize, out: &mut CudaSlice<f32>) -> Result<()> {
        let (dev, job) = (self.dev, self.job);
        let np = job.nprobe;
        let probes_d = upload_slice(dev, self.probes)?;
        let dim = rows.dim();
        let rows = rows.cuda_f32().expect("packed f32 rows on this device");
        let f = dev.func(MODULE, "va_ivf_scan")?;
        let (np_i, dim_i, width_i) = (np as i64, dim as i64, self.width as i64);
        let (code, missing) = (
            metric_code(job.metric.metric),
            missing_value(job.metric.metric.order()),
        );
        let null = 0u64;
        let mut b = dev.stream.launch_builder(&f);
        b.arg(self.q);
        match self.qnorm {
            Some(n) => b.arg(n),
            None => b.arg(&null),
        };
        b.arg(rows)
            .arg(&self.lists.offsets)
            .arg(&probes_d)
            .arg(&self.lists.slots);
        match self.allowed {
            Some(a) => b.arg(a),
            None => b.arg(&null),
        };
        b.arg(&np_i)
            .arg(&dim_i)
            .arg(&width_i)
            .arg(&code)
            .arg(&missing);
        b.arg(out);
        let cfg = LaunchConfig {
            grid_dim: ((nq * np) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: (dim * 4) as u32,
        };
        // SAFETY: q holds nq*dim floats, probes nq*np lists of the packed
        // rows, out nq*np*width floats; the shared query holds dim floats.
        unsafe { b.launch(cfg) }.map_err(cu("va_ivf_scan launch"))?;
        Ok(())
    }

    /// Every entry set to the missing value, then one block per work item
    /// of `g` (a list and up to 64 of its queries).
    fn grouped(&self, g: &Groups, out: &mut CudaSlice<f32>) -> Result<()> {
        let (dev, job) = (self.dev, self.job);
        let missing = missing_value(job.metric.metric.order());
        let fill = dev.func(MODULE, "va_ivf_fill")?;
        let n = out.len() as i64;
        let blocks = (out.len().div_ceil(256)).clamp(1, dev.sm_count() * 32) as u32;
        let mut b = dev.stream.launch_builder(&fill);
        b.arg(&mut *out).arg(&n).arg(&missing);
        // SAFETY: out holds n floats.
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        unsafe { b.launch(cfg) }.map_err(cu("va_ivf_fill launch"))?;
        let arrays = [&g.list, &g.start, &g.count, &g.query, &g.rank]
            .map(|a| upload_slice(dev, a))
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        let ListData::F32(rows) = job.rows else {
            unreachable!("grouped scans read exact rows")
        };
        let dim = rows.dim();
        let rows = rows.cuda_f32().expect("packed f32 rows on this device");
        let f = dev.func(MODULE, grouped_kernel(job.metric.metric, g.shape))?;
        let (np_i, dim_i, width_i) = (job.nprobe as i64, dim as i64, self.width as i64);
        let code = metric_code(job.metric.metric);
        let null = 0u64;
        let mut b = dev.stream.launch_builder(&f);
        b.arg(self.q);
        match self.qnorm {
            Some(n) => b.arg(n),
            None => b.arg(&null),
        };
        b.arg(rows).arg(&self.lists.offsets).arg(&self.lists.slots);
        match self.allowed {
            Some(a) => b.arg(a),
            None => b.arg(&null),
        };
        for a in &arrays {
            b.arg(a);
        }
        b.arg(&np_i)
            .arg(&dim_i)
            .arg(&width_i)
            .arg(&code)
            .arg(&missing);
        b.arg(out);
        let cfg = LaunchConfig {
            grid_dim: (g.list.len() as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the work items name lists of the packed rows and queries
        // of this chunk; out holds queries*nprobe*width floats.
        unsafe { b.launch(cfg) }.map_err(cu("va_ivf_scan_grouped launch"))?;
        Ok(())
    }
}

impl Scan<'_> {
    /// One block per (query, probe) over scalar or product codes.
    fn coded(&self, rows: &ListData<'_>, nq: usize, out: &mut CudaSlice<f32>) -> Result<()> {
        let (dev, job) = (self.dev, self.job);
        let dim = rows.layout().dim();
        let (name, codes, centroids, extra, smem) = match *rows {
            ListData::Sq {
                codes,
                sq,
                centroids,
            } => {
                let name = match sq.options().bits {
                    ScalarBits::Int8 => "va_ivf_scan_sq8",
                    ScalarBits::Int4 => "va_ivf_scan_sq4",
                };
                (name, codes, centroids, None, 4 * dim * 4)
            }
            ListData::Pq {
                codes,
                pq,
                centroids,
            } => {
                let m = pq.m() as i64;
                (
                    "va_ivf_scan_pq8",
                    codes,
                    centroids,
                    Some(m),
                    pq_smem(dim, pq.m(), job.metric.metric),
                )
            }
            ListData::F32(_) => unreachable!("coded rows"),
        };
        let codes = codes.cuda().expect("packed codes on this device");
        let cent = centroids.cuda_f32().expect("centroids on this device");
        let params = self.lists.params.as_ref().expect("codec arrays");
        let probes_d = upload_slice(dev, self.probes)?;
        let f = dev.func(MODULE, name)?;
        if smem > 48 << 10 {
            f.set_attribute(
                CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                smem as i32,
            )
            .map_err(cu("cuFuncSetAttribute"))?;
        }
        let (np_i, dim_i, width_i) = (job.nprobe as i64, dim as i64, self.width as i64);
        let (code, missing) = (
            metric_code(job.metric.metric),
            missing_value(job.metric.metric.order()),
        );
        let null = 0u64;
        let mut b = dev.stream.launch_builder(&f);
        b.arg(self.q);
        match self.qnorm {
            Some(n) => b.arg(n),
            None => b.arg(&null),
        };
        b.arg(codes).arg(cent).arg(params).arg(&self.lists.offsets);
        b.arg(&probes_d).arg(&self.lists.slots);
        match self.allowed {
            Some(a) => b.arg(a),
            None => b.arg(&null),
        };
        b.arg(&np_i).arg(&dim_i);
        if let Some(m) = &extra {
            b.arg(m);
        }
        b.arg(&width_i).arg(&code).arg(&missing);
        b.arg(out);
        let cfg = LaunchConfig {
            grid_dim: ((nq * job.nprobe) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: smem as u32,
        };
        // SAFETY: codes hold every packed row, probes nq*np lists, out
        // nq*np*width floats; shared memory as the kernel lays it out.
        unsafe { b.launch(cfg) }.map_err(cu("va_ivf coded scan launch"))?;
        Ok(())
    }
}

/// The grouped scan's kernel for a metric (the dot-product metrics share one).
fn grouped_kernel(m: Metric, shape: Shape) -> &'static str {
    let many = shape == Shape::Many;
    match m {
        Metric::L2 | Metric::Euclidean if many => "va_ivf_scan_grouped_l2",
        Metric::L1 if many => "va_ivf_scan_grouped_l1",
        Metric::Linf if many => "va_ivf_scan_grouped_linf",
        _ if many => "va_ivf_scan_grouped_dot",
        Metric::L2 | Metric::Euclidean => "va_ivf_scan_few_l2",
        Metric::L1 => "va_ivf_scan_few_l1",
        Metric::Linf => "va_ivf_scan_few_linf",
        _ => "va_ivf_scan_few_dot",
    }
}

/// The selected columns as slots: padding, missing probes and rows that
/// are not allowed become missing results.
fn to_slots(job: &IvfScanJob<'_>, probes: &[u32], best: &Neighbors, width: usize) -> Neighbors {
    let (k, np) = (job.k, job.nprobe);
    let order: Order = best.order();
    let mut ids = vec![MISSING_ID; best.rows() * k];
    let mut dist = vec![missing_value(order); best.rows() * k];
    // Rows in parallel: the slot lookups are scattered reads.
    ids.par_chunks_mut(k)
        .zip(dist.par_chunks_mut(k))
        .enumerate()
        .with_min_len(64)
        .for_each(|(r, (ids, dist))| {
            let mut j = 0;
            for (&col, &d) in best.row_ids(r).iter().zip(best.row_distances(r)) {
                if let Some(slot) = slot_of(job, probes, (r * np, col), width) {
                    ids[j] = slot;
                    dist[j] = d;
                    j += 1;
                }
            }
        });
    Neighbors::from_parts(best.rows(), k, order, ids, dist).expect("rows * k results")
}

/// The slot behind column `col` of query row `base / nprobe`, if any.
fn slot_of(
    job: &IvfScanJob<'_>,
    probes: &[u32],
    (base, col): (usize, u64),
    width: usize,
) -> Option<u64> {
    if col == MISSING_ID {
        return None;
    }
    let (j, p) = (col as usize / width, col as usize % width);
    let list = *probes.get(base + j)?;
    if list == NO_LIST {
        return None;
    }
    let (start, end) = (job.offsets[list as usize], job.offsets[list as usize + 1]);
    if p as u64 >= end - start {
        return None;
    }
    let slot = job.slots[(start + p as u64) as usize];
    let pass = job.allowed.is_none_or(|a| {
        a.get(slot as usize / 64)
            .is_some_and(|w| w >> (slot % 64) & 1 == 1)
    });
    pass.then_some(slot)
}

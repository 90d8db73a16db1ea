//! CUDA host side of clustering: the exact nearest-centroid assignment of
//! k-means on tensor cores (`kernels/cluster.cu`). A pass over every
//! centroid (TF32 products kept on chip) collects, per point, the centroids
//! within the proven TF32 error bound of its running minimum, and a last
//! kernel re-scores those exactly in fp32 (every centroid when more than
//! [`CAP`] qualify). The running minimum starts from the minimum of a
//! first TF32 pass, or, in k-means iterations, from the previous
//! iteration's centroid (one pass instead of two).

#[cfg(feature = "debug-hooks")]
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{CudaSlice, CudaView, CudaViewMut, LaunchConfig, PushKernelArg};

use crate::core::cluster::LloydStep;
use crate::core::error::{cu, Error, Result};
use crate::core::matrix::MatrixView;
use crate::cuda::knn_filter::{error_bound, Pass};
use crate::runtime::backend::{Assigned, ClusterBackend, LloydJob};
use crate::runtime::codes::Store;
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::upload_slice;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

const MODULE: &str = "cluster";
/// Points per block of the ranking kernel (`VA_FM`).
const TILE: usize = 128;
/// Dynamic shared memory of the ranking kernel: three pipeline stages of a
/// 128 x 36 float tile for the points and one for the centroids.
const SMEM_BYTES: usize = 3 * 2 * TILE * 36 * 4;
/// Points per launch (bounds the per-point temporaries).
const CHUNK_POINTS: usize = 1 << 21;
/// Candidates kept per point (`VA_ACAP`); more send the point to a full
/// exact scan.
const CAP: usize = 32;
/// Bytes of host points uploaded per step.
const UPLOAD_BYTES: usize = 1 << 30;
/// A null device pointer argument.
const NULL: u64 = 0;
/// Points per block of the k-means statistics kernel (`VA_STATS_SPAN`).
const STATS_SPAN: usize = 4096;

/// (points assigned, points that needed the full exact scan) since the
/// process started, for tests.
#[cfg(feature = "debug-hooks")]
pub(crate) static ASSIGN_STATS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Centroids as the kernels use them, on the device.
struct Centroids {
    rows: CudaSlice<f32>,
    /// `|c|^2 / 2` (squared L2) or 0 (cosine: unit centroids).
    h: CudaSlice<f32>,
    k: usize,
    dim: usize,
    /// The largest centroid norm, rounded up.
    max_norm: f32,
}

fn prepare(dev: &CudaDevice, c: MatrixView<'_>, cosine: bool) -> Result<Centroids> {
    let (k, d) = (c.rows(), c.dim());
    let mut rows = c.as_slice().to_vec();
    let mut h = vec![0f32; k];
    let mut max_norm = 0f64;
    for (j, r) in rows.chunks_exact_mut(d).enumerate() {
        let sq: f64 = r.iter().map(|&v| v as f64 * v as f64).sum();
        if cosine {
            // Cosine ranks by x.c / |c|: unit centroids (a zero centroid
            // stays zero, similarity 0 to everything).
            if sq > 0.0 {
                let inv = 1.0 / sq.sqrt();
                r.iter_mut().for_each(|v| *v = (*v as f64 * inv) as f32);
            }
            let unit: f64 = r.iter().map(|&v| v as f64 * v as f64).sum();
            max_norm = max_norm.max(unit.sqrt());
        } else {
            h[j] = (0.5 * sq) as f32;
            max_norm = max_norm.max(sq.sqrt());
        }
    }
    Ok(Centroids {
        rows: upload_slice(dev, &rows)?,
        h: upload_slice(dev, &h)?,
        k,
        dim: d,
        max_norm: (max_norm * (1.0 + 1e-6)) as f32,
    })
}

/// The nearest centroid of every point and its exact distance (squared L2,
/// or cosine distance when `cosine`), ties to the smaller index. Points are
/// finite `f32` rows (host or resident); host rows are uploaded in steps.
/// `hint`: a centroid id per point (any valid id gives the same result; one
/// near the nearest saves work).
pub(crate) fn assign(
    dev: &Arc<CudaDevice>,
    points: &Input<'_>,
    centroids: MatrixView<'_>,
    cosine: bool,
    hint: Option<&[u32]>,
) -> Result<(Vec<u32>, Vec<f32>)> {
    let _g = dev.lock();
    let (n, d) = (points.rows(), points.dim());
    if d != centroids.dim() {
        return Err(Error::DimensionMismatch {
            what: "centroid dimension",
            expected: d,
            got: centroids.dim(),
        });
    }
    if centroids.rows() > i32::MAX as usize {
        return Err(Error::invalid(
            "centroids",
            centroids.rows(),
            "at most 2^31 - 1 centroids",
        ));
    }
    let c = prepare(dev, centroids, cosine)?;
    let hint = match hint {
        Some(h) if h.len() != n => {
            return Err(Error::invalid(
                "hint",
                h.len(),
                format!("expected one centroid id per point ({n})"),
            ))
        }
        Some(h) => Some(upload_slice(dev, h)?),
        None => None,
    };
    let hint = hint.as_ref().map(|h| h.as_view());
    match points {
        Input::Resident(m) => {
            let rows = device_rows(m)?;
            let (ids, dist) = assign_all(dev, (rows, n, d), &c, cosine, hint)?;
            let down = cu("download (cuMemcpyDtoH)");
            let hi = dev.stream.clone_dtoh(&ids).map_err(&down)?;
            let hd = dev.stream.clone_dtoh(&dist).map_err(&down)?;
            dev.sync()?;
            Ok((hi, hd))
        }
        Input::F32(m) => {
            let (mut ids, mut dist) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let step = (UPLOAD_BYTES / (4 * d)).clamp(1, CHUNK_POINTS);
            let mut a = 0;
            while a < n {
                let b = (a + step).min(n);
                let part = upload_slice(dev, &m.as_slice()[a * d..b * d])?;
                let h = hint.as_ref().map(|h| h.slice(a..b));
                let (pi, pd) = assign_all(dev, (&part, b - a, d), &c, cosine, h)?;
                let down = cu("download (cuMemcpyDtoH)");
                ids.extend(dev.stream.clone_dtoh(&pi).map_err(&down)?);
                dist.extend(dev.stream.clone_dtoh(&pd).map_err(&down)?);
                dev.sync()?;
                a = b;
            }
            Ok((ids, dist))
        }
        Input::Binary(_) => Err(Error::invalid(
            "points",
            "bit-packed binary rows",
            "expected f32 rows",
        )),
    }
}

/// The f32 rows of a device matrix.
fn device_rows(m: &DeviceMatrix) -> Result<&CudaSlice<f32>> {
    m.cuda_f32()
        .ok_or_else(|| Error::invalid("points", "binary or 16-bit rows", "expected f32 rows"))
}

/// Assigns `n` device points in chunks; the ids and distances stay on the
/// device. `hint`: a centroid id per point near its nearest (k-means: the
/// previous assignment), which saves the first TF32 pass.
fn assign_all(
    dev: &CudaDevice,
    (rows, n, d): (&CudaSlice<f32>, usize, usize),
    c: &Centroids,
    cosine: bool,
    hint: Option<CudaView<'_, u32>>,
) -> Result<(CudaSlice<u32>, CudaSlice<f32>)> {
    let mut ids = dev.alloc::<u32>(n)?;
    let mut dist = dev.alloc::<f32>(n)?;
    let mut scans = dev.alloc::<u64>(1)?;
    dev.stream
        .memset_zeros(&mut scans)
        .map_err(cu("cuMemsetD8"))?;
    let mut a = 0;
    while a < n {
        let b = (a + CHUNK_POINTS).min(n);
        let x = rows.slice(a * d..b * d);
        let mut oi = ids.slice_mut(a..b);
        let mut od = dist.slice_mut(a..b);
        let h = hint.as_ref().map(|h| h.slice(a..b));
        let out = (&mut oi, &mut od, &mut scans);
        run(dev, (&x, b - a, d), c, cosine, h.as_ref(), out)?;
        a = b;
    }
    #[cfg(feature = "debug-hooks")]
    {
        let hs = dev
            .stream
            .clone_dtoh(&scans)
            .map_err(cu("download (cuMemcpyDtoH)"))?;
        ASSIGN_STATS[0].fetch_add(n as u64, Relaxed);
        ASSIGN_STATS[1].fetch_add(hs[0], Relaxed);
    }
    Ok((ids, dist))
}

/// Nearest centroid per (row, sub-space) of device rows `x` (`ld` columns,
/// the first `dv` of them data): `rows x m` codes and distances, left on
/// the device (the caller holds the device lock).
pub(crate) fn subspace_nearest(
    dev: &CudaDevice,
    (x, n, ld, dv): (&CudaSlice<f32>, usize, usize, usize),
    cent: &CudaSlice<f32>,
    (m, ds, kc): (usize, usize, usize),
) -> Result<(CudaSlice<u32>, CudaSlice<f32>)> {
    let mut codes = dev.alloc::<u32>(n * m)?;
    let mut dist = dev.alloc::<f32>(n * m)?;
    let tile = (12 * 1024 / ds).clamp(1, kc);
    let f = dev.func(MODULE, "va_nearest_centroid")?;
    let cfg = LaunchConfig {
        grid_dim: (n.div_ceil(256) as u32, m as u32, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: (tile * ds * 4) as u32,
    };
    let n_i = n as i64;
    let (ld_i, dv_i, m_i) = (ld as i32, dv as i32, m as i32);
    let (ds_i, kc_i, t_i) = (ds as i32, kc as i32, tile as i32);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(x).arg(&n_i).arg(&ld_i).arg(&dv_i).arg(&m_i);
    b.arg(&ds_i).arg(&kc_i).arg(&t_i);
    b.arg(cent).arg(&mut codes).arg(&mut dist);
    // SAFETY: x holds n*ld floats, cent m*kc*ds, outputs n*m; shared tile*ds floats.
    unsafe { b.launch(cfg) }.map_err(cu("va_nearest_centroid launch"))?;
    Ok((codes, dist))
}

/// A power-of-two scale that keeps `n` values of magnitude up to `max_abs`
/// summed in 64-bit fixed point away from overflow.
pub(crate) fn fixed_scale(n: usize, max_abs: f32) -> f32 {
    let headroom = 61.0 - (n.max(1) as f64).log2().ceil();
    let mag = if max_abs > 0.0 && max_abs.is_finite() {
        (max_abs as f64).log2().ceil()
    } else {
        0.0
    };
    2f32.powi((headroom - mag).clamp(-120.0, 120.0) as i32)
}

impl ClusterBackend for Arc<CudaDevice> {
    fn lloyd_step(&self, job: LloydJob<'_>) -> Result<LloydStep<Assigned>> {
        let Input::Resident(points) = job.points else {
            return Err(Error::invalid(
                "points",
                "host rows",
                "a Lloyd step on CUDA takes rows resident on the device",
            ));
        };
        let _g = self.lock();
        let (n, width) = (points.rows(), points.dim());
        let rows = device_rows(points)?;
        let prev = job
            .prev
            .and_then(|p| p.ids.cuda())
            .filter(|p| p.len() == n * job.groups);
        let (ids, dist) = if job.groups == 1 {
            let c = MatrixView::new(job.centroids, job.group_dim)?;
            let c = prepare(self, c, job.cosine)?;
            let hint = prev.map(|h| h.as_view());
            assign_all(self, (rows, n, width), &c, job.cosine, hint)?
        } else {
            let cent = upload_slice(self, job.centroids)?;
            let shape = (job.groups, job.group_dim, job.k);
            subspace_nearest(self, (rows, n, width, width), &cent, shape)?
        };
        let totals = member_totals(self, (rows, n, width), (&ids, &dist, prev), &job)?;
        Ok(LloydStep {
            assigned: Assigned {
                ids: Store::Cuda(self.clone(), ids),
                dist: Store::Cuda(self.clone(), dist),
            },
            sums: totals.sums,
            counts: totals.counts,
            inertia: totals.inertia,
            changed: prev.map(|_| totals.changed),
            nonfinite: totals.nonfinite,
        })
    }

    fn nearest(
        &self,
        points: &Input<'_>,
        centroids: MatrixView<'_>,
        cosine: bool,
    ) -> Result<(Vec<u32>, Vec<f32>)> {
        assign(self, points, centroids, cosine, None)
    }
}

/// What a Lloyd step reads back from the device besides the assignment.
struct Totals {
    sums: Vec<f64>,
    counts: Vec<u64>,
    inertia: f64,
    changed: usize,
    nonfinite: NonFinite,
}

/// Member sums (64-bit fixed point, exact and order-independent), counts,
/// inertia, changed ids and the first non-finite distance of an assignment
/// on the device (`ids`, `dist` and `prev` hold one value per element).
fn member_totals(
    dev: &CudaDevice,
    (rows, n, width): (&CudaSlice<f32>, usize, usize),
    (ids, dist, prev): (&CudaSlice<u32>, &CudaSlice<f32>, Option<&CudaSlice<u32>>),
    job: &LloydJob<'_>,
) -> Result<Totals> {
    let (sums, counts) = grouped_sums(dev, (rows, n, width), ids, job)?;
    let (inertia, changed, nonfinite) = lloyd_stats(dev, ids, dist, prev)?;
    Ok(Totals {
        sums,
        counts,
        inertia,
        changed,
        nonfinite,
    })
}

/// The member sums (`groups x k x group_dim`, from fixed point) and counts
/// of an assignment: elements grouped by cluster (counting sort), then
/// summed a contiguous range per block.
fn grouped_sums(
    dev: &CudaDevice,
    (rows, n, width): (&CudaSlice<f32>, usize, usize),
    ids: &CudaSlice<u32>,
    job: &LloydJob<'_>,
) -> Result<(Vec<f64>, Vec<u64>)> {
    let (groups, k, d) = (job.groups, job.k, job.group_dim);
    let elements = n * groups;
    let mut counts = dev.alloc::<u64>(groups * k)?;
    dev.stream
        .memset_zeros(&mut counts)
        .map_err(cu("cuMemsetD8"))?;
    let (e_i, g_i, k_i) = (elements as i64, groups as i32, k as i32);
    let per_element = LaunchConfig {
        grid_dim: (elements.div_ceil(256) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let f = dev.func(MODULE, "va_count_members")?;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(ids).arg(&e_i).arg(&g_i).arg(&k_i).arg(&mut counts);
    // SAFETY: ids holds `elements` values below k; counts groups * k.
    unsafe { b.launch(per_element) }.map_err(cu("va_count_members launch"))?;
    let down = cu("download (cuMemcpyDtoH)");
    let hc = dev.stream.clone_dtoh(&counts).map_err(&down)?;
    dev.sync()?;
    let offsets: Vec<u64> = hc
        .iter()
        .scan(0u64, |at, &c| {
            let o = *at;
            *at += c;
            Some(o)
        })
        .collect();
    let mut cursor = upload_slice(dev, &offsets)?;
    let mut perm = dev.alloc::<i64>(elements)?;
    let f = dev.func(MODULE, "va_scatter_members")?;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(ids).arg(&e_i).arg(&g_i).arg(&k_i);
    b.arg(&mut cursor).arg(&mut perm);
    // SAFETY: cursor holds groups * k offsets whose ranges tile 0..elements.
    unsafe { b.launch(per_element) }.map_err(cu("va_scatter_members launch"))?;
    let scale = fixed_scale(n, job.max_abs);
    let mut sums = dev.alloc::<u64>(groups * k * d)?;
    dev.stream
        .memset_zeros(&mut sums)
        .map_err(cu("cuMemsetD8"))?;
    const SPAN: usize = 512;
    let f = dev.func(MODULE, "va_grouped_sums")?;
    let cfg = LaunchConfig {
        grid_dim: (elements.div_ceil(SPAN) as u32, 1, 1),
        block_dim: (d.clamp(32, 256).div_ceil(32) as u32 * 32, 1, 1),
        shared_mem_bytes: 0,
    };
    let (ld, d_i, span) = (width as i64, d as i32, SPAN as i32);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(rows).arg(&ld).arg(&d_i).arg(&e_i).arg(&span);
    b.arg(&perm)
        .arg(ids)
        .arg(&g_i)
        .arg(&k_i)
        .arg(&scale)
        .arg(&mut sums);
    // SAFETY: rows n*width floats (groups*d <= width); perm and ids
    // `elements`; sums groups*k*d.
    unsafe { b.launch(cfg) }.map_err(cu("va_grouped_sums launch"))?;
    let hs = dev.stream.clone_dtoh(&sums).map_err(&down)?;
    dev.sync()?;
    let inv = 1.0 / scale as f64;
    let sums = hs.into_iter().map(|v| v as i64 as f64 * inv).collect();
    Ok((sums, hc))
}

/// The first element with a non-finite distance, and that distance.
type NonFinite = Option<(usize, f32)>;

/// Inertia (per-block f64 partials added in order on the host), elements
/// whose id changed since `prev`, and the first non-finite distance.
fn lloyd_stats(
    dev: &CudaDevice,
    ids: &CudaSlice<u32>,
    dist: &CudaSlice<f32>,
    prev: Option<&CudaSlice<u32>>,
) -> Result<(f64, usize, NonFinite)> {
    let elements = ids.len();
    let blocks = elements.div_ceil(STATS_SPAN);
    let mut partial = dev.alloc::<f64>(blocks)?;
    let mut changed = dev.alloc::<u64>(1)?;
    dev.stream
        .memset_zeros(&mut changed)
        .map_err(cu("cuMemsetD8"))?;
    let mut bad = upload_slice(dev, &[u64::MAX])?;
    let f = dev.func(MODULE, "va_lloyd_stats")?;
    let cfg = LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let e_i = elements as i64;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(ids);
    match prev {
        Some(h) => b.arg(h),
        None => b.arg(&NULL),
    };
    b.arg(dist).arg(&e_i).arg(&mut partial);
    b.arg(&mut changed).arg(&mut bad);
    // SAFETY: ids, dist and prev hold `elements` values; partial one per
    // block of STATS_SPAN elements; changed and bad one counter each.
    unsafe { b.launch(cfg) }.map_err(cu("va_lloyd_stats launch"))?;
    let down = cu("download (cuMemcpyDtoH)");
    let hp = dev.stream.clone_dtoh(&partial).map_err(&down)?;
    let hch = dev.stream.clone_dtoh(&changed).map_err(&down)?;
    let hbad = dev.stream.clone_dtoh(&bad).map_err(&down)?;
    dev.sync()?;
    let nonfinite = match hbad[0] {
        u64::MAX => None,
        r => {
            let r = r as usize;
            let v = dev
                .stream
                .clone_dtoh(&dist.slice(r..r + 1))
                .map_err(&down)?;
            dev.sync()?;
            Some((r, v[0]))
        }
    };
    Ok((hp.iter().sum(), hch[0] as usize, nonfinite))
}

/// Device outputs of [`run`]: ids, distances and the full-scan counter.
type Outputs<'a, 'b> = (
    &'a mut CudaViewMut<'b, u32>,
    &'a mut CudaViewMut<'b, f32>,
    &'a mut CudaSlice<u64>,
);

/// Assigns `n` points (`n x d` on the device) into `out`.
fn run(
    dev: &CudaDevice,
    (x, n, d): (&CudaView<'_, f32>, usize, usize),
    c: &Centroids,
    cosine: bool,
    hint: Option<&CudaView<'_, u32>>,
    out: Outputs<'_, '_>,
) -> Result<()> {
    let (out_ids, out_dist, scans) = out;
    let mut cand = dev.alloc::<i32>(n * CAP)?;
    let mut count = dev.alloc::<i32>(n)?;

    let (ld, n_i, k_i, d_i) = (d as i64, n as i32, c.k as i32, d as i32);
    let v = if d.is_multiple_of(4) { "v4" } else { "v1" };
    let warps = LaunchConfig {
        grid_dim: ((n * 32).div_ceil(256) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // The start of each point's running minimum: from the hint, or the
    // minimum itself from a first TF32 pass.
    let mut bound = dev.alloc::<f32>(n)?;
    let cb = error_bound(d, Pass::Tf32);
    let scan = Tf32Scan {
        x,
        ld,
        n: n_i,
        centroids: c,
        bound_scale: cb,
        width: v,
    };
    match hint {
        Some(hint) => {
            let f = dev.func(MODULE, "va_assign_hint")?;
            let mut b = dev.stream.launch_builder(&f);
            b.arg(x).arg(&ld).arg(&n_i).arg(&c.rows).arg(&k_i).arg(&d_i);
            b.arg(&c.h)
                .arg(&cb)
                .arg(&c.max_norm)
                .arg(hint)
                .arg(&mut bound);
            // SAFETY: x n*d floats, centroids k*d, h k; hint and bound n.
            unsafe { b.launch(warps) }.map_err(cu("va_assign_hint launch"))?;
        }
        None => tf32_pass(dev, &scan, "min", &mut bound, None)?,
    }
    let out_cand = Some((&mut cand, &mut count));
    tf32_pass(dev, &scan, "emit", &mut bound, out_cand)?;
    // Exact re-score.
    let f = dev.func(MODULE, "va_assign_finish")?;
    let cos_i = cosine as i32;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(x)
        .arg(&ld)
        .arg(&n_i)
        .arg(&c.rows)
        .arg(&k_i)
        .arg(&d_i)
        .arg(&cos_i);
    b.arg(&cand).arg(&count);
    b.arg(out_ids).arg(out_dist).arg(scans);
    // SAFETY: as above; outputs n each, scans one counter.
    unsafe { b.launch(warps) }.map_err(cu("va_assign_finish launch"))?;

    Ok(())
}

/// Points and centroids as the TF32 ranking passes read them.
struct Tf32Scan<'a> {
    /// The points, `ld` floats apart.
    x: &'a CudaView<'a, f32>,
    /// Leading dimension of the points.
    ld: i64,
    /// Number of points.
    n: i32,
    /// The centroids.
    centroids: &'a Centroids,
    /// The TF32 error bound relative to the norms.
    bound_scale: f32,
    /// The kernels' load width: "v4" (rows 16-byte aligned) or "v1".
    width: &'a str,
}

/// One TF32 pass of `scan` over every centroid
/// (`va_assign_tf32_{pass}_{width}`): "min" writes the minima to `bound`;
/// "emit" starts from `bound` and writes the candidates.
fn tf32_pass(
    dev: &CudaDevice,
    scan: &Tf32Scan<'_>,
    pass: &str,
    bound: &mut CudaSlice<f32>,
    out: Option<(&mut CudaSlice<i32>, &mut CudaSlice<i32>)>,
) -> Result<()> {
    let Tf32Scan {
        x,
        ld,
        n,
        centroids: c,
        bound_scale: cb,
        width: v,
    } = *scan;
    let f = dev.func(MODULE, &format!("va_assign_tf32_{pass}_{v}"))?;
    f.set_attribute(
        CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
        SMEM_BYTES as i32,
    )
    .map_err(cu("cuFuncSetAttribute"))?;
    let cfg = LaunchConfig {
        grid_dim: ((n as usize).div_ceil(TILE) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: SMEM_BYTES as u32,
    };
    let (k_i, d_i) = (c.k as i32, c.dim as i32);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(x).arg(&ld).arg(&n).arg(&c.rows).arg(&k_i).arg(&d_i);
    b.arg(&c.h).arg(&cb).arg(&c.max_norm).arg(bound);
    match out {
        Some((cand, count)) => b.arg(cand).arg(count),
        None => b.arg(&NULL).arg(&NULL),
    };
    // SAFETY: x holds n*d floats (16-byte aligned rows for v4: d is a
    // multiple of 4 and device buffers start aligned), the centroids k*d,
    // h k, bound n; for "emit" count n (each written) and cand n*CAP ("min"
    // writes neither).
    unsafe { b.launch(cfg) }.map_err(cu("va_assign_tf32 launch"))?;
    Ok(())
}

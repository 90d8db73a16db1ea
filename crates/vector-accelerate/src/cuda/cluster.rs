//! CUDA host side of clustering: the exact nearest-centroid assignment of
//! k-means on tensor cores (`kernels/cluster.cu`). A pass over every
//! centroid (TF32 products kept on chip) collects, per point, the centroids
//! within the proven TF32 error bound of its running minimum, and a last
//! kernel re-scores those exactly in fp32 (every centroid when more than
//! [`CAP`] qualify). The running minimum starts from the minimum of a
//! first TF32 pass, or, in k-means iterations, from the previous
//! iteration's centroid (one pass instead of two).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{CudaSlice, CudaView, CudaViewMut, LaunchConfig, PushKernelArg};

use crate::core::cluster::LloydStep;
use crate::core::error::{cu, Error, Result};
use crate::core::matrix::MatrixView;
use crate::cuda::knn_filter::{error_bound, Pass};
use crate::cuda::quantize::fixed_scale;
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
/// process started, for tests and benchmarks.
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
            let (ids, dist) = assign_all(dev, rows, n, d, &c, cosine, hint)?;
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
                let (pi, pd) = assign_all(dev, &part, b - a, d, &c, cosine, h)?;
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
    rows: &CudaSlice<f32>,
    n: usize,
    d: usize,
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
    let hs = dev
        .stream
        .clone_dtoh(&scans)
        .map_err(cu("download (cuMemcpyDtoH)"))?;
    ASSIGN_STATS[0].fetch_add(n as u64, Relaxed);
    ASSIGN_STATS[1].fetch_add(hs[0], Relaxed);
    Ok((ids, dist))
}

/// An assignment kept on the device between k-means iterations.
pub(crate) struct DeviceAssignment {
    dev: Arc<CudaDevice>,
    ids: CudaSlice<u32>,
    dist: CudaSlice<f32>,
}

impl DeviceAssignment {
    /// The ids and distances on the host.
    pub(crate) fn to_host(&self) -> Result<(Vec<u32>, Vec<f32>)> {
        let _g = self.dev.lock();
        let down = cu("download (cuMemcpyDtoH)");
        let ids = self.dev.stream.clone_dtoh(&self.ids).map_err(&down)?;
        let dist = self.dev.stream.clone_dtoh(&self.dist).map_err(&down)?;
        self.dev.sync()?;
        Ok((ids, dist))
    }
}

/// One Lloyd step on resident points: the exact assignment (started from
/// the previous one, `prev`, when given), then member sums (64-bit fixed
/// point, exact and order-independent; `max_abs` bounds the values),
/// counts, inertia and changed ids, all from the assignment on the device
/// (which stays there).
pub(crate) fn lloyd_step(
    dev: &Arc<CudaDevice>,
    points: &DeviceMatrix,
    centroids: MatrixView<'_>,
    cosine: bool,
    max_abs: f32,
    prev: Option<&DeviceAssignment>,
) -> Result<LloydStep<DeviceAssignment>> {
    let _g = dev.lock();
    let (n, d, k) = (points.rows(), points.dim(), centroids.rows());
    let rows = device_rows(points)?;
    let c = prepare(dev, centroids, cosine)?;
    let hint = prev.filter(|p| p.ids.len() == n).map(|p| &p.ids);
    let (ids, dist) = assign_all(dev, rows, n, d, &c, cosine, hint.map(|h| h.as_view()))?;
    let members = Members {
        rows,
        n,
        d,
        k,
        ids: &ids,
    };
    let (hc, perm) = sort_by_cluster(dev, &members)?;
    let scale = fixed_scale(n, max_abs);
    let sums = grouped_sums(dev, &members, &perm, scale)?;
    let stats = lloyd_stats(dev, &members, hint, &dist)?;
    let down = cu("download (cuMemcpyDtoH)");
    let hs = dev.stream.clone_dtoh(&sums).map_err(&down)?;
    let hp = dev.stream.clone_dtoh(&stats.partial).map_err(&down)?;
    let hch = dev.stream.clone_dtoh(&stats.changed).map_err(&down)?;
    let hbad = dev.stream.clone_dtoh(&stats.bad).map_err(&down)?;
    dev.sync()?;
    let nonfinite = match hbad[0] {
        u64::MAX => None,
        r => {
            let v = dev
                .stream
                .clone_dtoh(&dist.slice(r as usize..r as usize + 1))
                .map_err(&down)?;
            dev.sync()?;
            Some((r as usize, v[0]))
        }
    };
    let inv = 1.0 / scale as f64;
    Ok(LloydStep {
        assigned: DeviceAssignment {
            dev: dev.clone(),
            ids,
            dist,
        },
        sums: hs.into_iter().map(|v| v as i64 as f64 * inv).collect(),
        counts: hc.into_iter().map(|v| v as u64).collect(),
        inertia: hp.iter().sum(),
        changed: hint.map(|_| hch[0] as usize),
        nonfinite,
    })
}

/// Resident points and their cluster ids, as the Lloyd step's kernels read them.
struct Members<'a> {
    /// The points, `n x d` floats.
    rows: &'a CudaSlice<f32>,
    /// Number of points.
    n: usize,
    /// Values per point.
    d: usize,
    /// Number of clusters.
    k: usize,
    /// Each point's cluster.
    ids: &'a CudaSlice<u32>,
}

/// Counting sort of the points by cluster: the member counts (on the
/// host) and the point indices grouped by cluster.
fn sort_by_cluster(dev: &CudaDevice, m: &Members<'_>) -> Result<(Vec<i32>, CudaSlice<i32>)> {
    let (n, k) = (m.n, m.k);
    let mut counts = dev.alloc::<i32>(k)?;
    dev.stream
        .memset_zeros(&mut counts)
        .map_err(cu("cuMemsetD8"))?;
    let n_i = n as i64;
    let per_point = LaunchConfig {
        grid_dim: (n.div_ceil(256) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let f = dev.func(MODULE, "va_count_members")?;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(m.ids).arg(&n_i).arg(&mut counts);
    // SAFETY: ids n values below k; counts k.
    unsafe { b.launch(per_point) }.map_err(cu("va_count_members launch"))?;
    let hc = dev
        .stream
        .clone_dtoh(&counts)
        .map_err(cu("download (cuMemcpyDtoH)"))?;
    dev.sync()?;
    let mut offsets = Vec::with_capacity(k);
    let mut at = 0i32;
    for &c in &hc {
        offsets.push(at);
        at += c;
    }
    let mut cursor = upload_slice(dev, &offsets)?;
    let mut perm = dev.alloc::<i32>(n)?;
    let f = dev.func(MODULE, "va_scatter_members")?;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(m.ids).arg(&n_i).arg(&mut cursor).arg(&mut perm);
    // SAFETY: cursor k offsets whose ranges tile 0..n; perm n.
    unsafe { b.launch(per_point) }.map_err(cu("va_scatter_members launch"))?;
    Ok((hc, perm))
}

/// Per-cluster sums of the members (`k x d`, 64-bit fixed point scaled by
/// `scale`), the points read in the order `perm` groups them.
fn grouped_sums(
    dev: &CudaDevice,
    m: &Members<'_>,
    perm: &CudaSlice<i32>,
    scale: f32,
) -> Result<CudaSlice<u64>> {
    let (n, d) = (m.n, m.d);
    let mut sums = dev.alloc::<u64>(m.k * d)?;
    dev.stream
        .memset_zeros(&mut sums)
        .map_err(cu("cuMemsetD8"))?;
    const SPAN: usize = 512;
    let f = dev.func(MODULE, "va_grouped_sums")?;
    let cfg = LaunchConfig {
        grid_dim: (n.div_ceil(SPAN) as u32, 1, 1),
        block_dim: (d.clamp(32, 256).div_ceil(32) as u32 * 32, 1, 1),
        shared_mem_bytes: 0,
    };
    let (ld, d_i, n_i, span) = (d as i64, d as i32, n as i64, SPAN as i32);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(m.rows).arg(&ld).arg(&d_i).arg(&n_i).arg(&span);
    b.arg(perm).arg(m.ids).arg(&scale).arg(&mut sums);
    // SAFETY: rows n*d floats; perm and ids n; sums k*d.
    unsafe { b.launch(cfg) }.map_err(cu("va_grouped_sums launch"))?;
    Ok(sums)
}

/// The Lloyd step's statistics on the device.
struct Stats {
    /// Inertia partials, one per block (added in order on the host).
    partial: CudaSlice<f64>,
    /// Points whose id differs from the hint's.
    changed: CudaSlice<u64>,
    /// The first point of non-finite distance (`u64::MAX`: none).
    bad: CudaSlice<u64>,
}

/// Inertia, ids changed since `hint` and the first non-finite distance.
fn lloyd_stats(
    dev: &CudaDevice,
    m: &Members<'_>,
    hint: Option<&CudaSlice<u32>>,
    dist: &CudaSlice<f32>,
) -> Result<Stats> {
    let blocks = m.n.div_ceil(STATS_SPAN);
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
    let n_i = m.n as i64;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(m.ids);
    match hint {
        Some(h) => b.arg(h),
        None => b.arg(&NULL),
    };
    b.arg(dist).arg(&n_i).arg(&mut partial);
    b.arg(&mut changed).arg(&mut bad);
    // SAFETY: ids, dist and hint n each; partial one per block of
    // STATS_SPAN points; changed and bad one counter each.
    unsafe { b.launch(cfg) }.map_err(cu("va_lloyd_stats launch"))?;
    Ok(Stats {
        partial,
        changed,
        bad,
    })
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

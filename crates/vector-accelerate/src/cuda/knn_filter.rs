//! The fused k-NN filter for the GEMM metrics: tensor-core (TF32) dot
//! products of a query block against a base tile, compared on chip with each
//! query's current k-th best widened by a proven error bound; only the pairs
//! that can still enter a top-k leave the chip (as base-row indices), and
//! are then re-scored in fp32 (`kernels/knn.cu`).

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{
    CudaFunction, CudaSlice, CudaView, CudaViewMut, DevicePtr, LaunchConfig, PushKernelArg,
};

use crate::core::error::{cu, Error, Result};
use crate::core::half::{half_dim, HalfKind};
use crate::core::neighbors::Order;
use crate::cuda::select::{ListsMut, ListsRef};
use crate::runtime::cuda_device::CudaDevice;

/// Rows of a block tile along queries and along base rows (`VA_FM`, `VA_FN`).
const TILE: usize = 128;
/// Dynamic shared memory of the filter kernels: three pipeline stages
/// (`VA_FSTAGES`) of a 128 x 36 float tile for the queries and one for the
/// base rows.
const SMEM_BYTES: usize = 3 * 2 * TILE * 36 * 4;

/// Query blocks at least this large use the tensor-core filter (a block
/// tile of 128 queries would mostly idle below).
pub(crate) const MIN_QUERIES: usize = 64;

/// Query blocks at most this large whose rows fit in [`SIMT_SMEM`] use the
/// exact fp32 filter that reads the base once. The kernel takes up to 16
/// (`VA_SIMT_MAX_Q`), but each extra query costs a warp reduction per base
/// row, so beyond one query the GEMM path is faster (BENCHMARKS, design
/// measurements).
pub(crate) const SIMT_MAX_QUERIES: usize = 1;
const SIMT_SMEM: usize = 48 << 10;

/// Which filter a query block of `m` rows of `dim` floats takes, if any.
pub(crate) fn filter_for(m: usize, dim: usize) -> Option<Filter> {
    if m >= MIN_QUERIES {
        Some(Filter::TensorCore)
    } else if m <= SIMT_MAX_QUERIES && m * dim * 4 <= SIMT_SMEM {
        Some(Filter::Simt)
    } else {
        None
    }
}

/// The two filters of the fused path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filter {
    /// TF32 tensor cores with an error bound (`fused_filter_*`).
    TensorCore,
    /// Exact fp32 values, one warp per base row (`simt_filter`).
    Simt,
}

/// How the filter computes its dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// One TF32 product per pair (10-bit mantissas).
    Tf32,
    /// Three TF32 products (hi/lo split): close to fp32, three times the work.
    Tf32x3,
    /// bf16 copies of the rows (8-bit significands), twice the TF32 rate.
    Bf16,
    /// f16 copies of the rows (11-bit significands), twice the TF32 rate.
    F16,
}

/// Launches and overflows of the tensor-core filter per [`Pass`] (in
/// declaration order), for tests that must see which pass ran.
#[cfg(feature = "debug-hooks")]
pub(crate) static PASS_STATS: [[std::sync::atomic::AtomicU64; 2]; 4] = [const {
    [
        std::sync::atomic::AtomicU64::new(0),
        std::sync::atomic::AtomicU64::new(0),
    ]
}; 4];

impl Pass {
    /// Whether the pass reads 16-bit copies of the rows.
    pub(crate) fn half(self) -> Option<HalfKind> {
        match self {
            Pass::Bf16 => Some(HalfKind::Bf16),
            Pass::F16 => Some(HalfKind::F16),
            _ => None,
        }
    }
}

/// The bound `c` such that a pair's fp32 dot product (as the re-score
/// computes it) lies within `c |q| |x|` of the filter's value; see the error
/// analysis at the top of `kernels/knn.cu`. A 6% margin covers the rounding
/// of the bound itself and of the norms it is scaled by.
pub(crate) fn error_bound(dim: usize, pass: Pass) -> f32 {
    let d = dim as f64;
    let u22 = (2.0f64).powi(-22);
    // Rounding both operands to nearest with unit roundoff u (bf16 2^-8,
    // f16 2^-11) moves their product by at most (2u + u^2) |q_i x_i|.
    let c = match pass {
        Pass::Tf32 => (2.0f64).powi(-9) + (d + 32.0) * u22,
        Pass::Tf32x3 => (2.0f64).powi(-19) + (3.0 * d + 64.0) * u22,
        Pass::Bf16 => (2.0f64).powi(-7) + (2.0f64).powi(-16) + (d + 32.0) * u22,
        Pass::F16 => (2.0f64).powi(-10) + (2.0f64).powi(-22) + (d + 32.0) * u22,
    };
    (c * 1.0625) as f32
}

/// The absolute part of the bound: f16 rounds values below its normal
/// range (2^-14) to multiples of 2^-24, an error of at most 2^-25 that the
/// relative part does not cover. Summed over a row pair it stays below
/// 2^-24 sqrt(d) (|q| + |x|) (twice the first-order term, covering the
/// product of two such errors).
pub(crate) fn absolute_bound(dim: usize, pass: Pass) -> f32 {
    match pass {
        Pass::F16 => ((2.0f64).powi(-24) * (dim as f64).sqrt() * 1.0625) as f32,
        _ => 0.0,
    }
}

/// The base rows of a [`FilterRows`]: f32, or stored in 16 bits
/// ([`half_dim`] elements per row), widened exactly by the kernels that
/// read them in fp32 (re-score, single-query filter).
#[derive(Clone, Copy)]
pub(crate) enum BaseRows<'a> {
    F32(&'a CudaView<'a, f32>),
    Half(HalfKind, &'a CudaView<'a, u16>),
}

impl BaseRows<'_> {
    /// Leading dimension (elements) of rows of `dim` values.
    fn ld(&self, dim: usize) -> i64 {
        match self {
            BaseRows::F32(_) => dim as i64,
            BaseRows::Half(..) => half_dim(dim) as i64,
        }
    }
    /// The kernels' `xkind` (`VA_X_*`).
    fn code(&self) -> i32 {
        match self {
            BaseRows::F32(_) => 0,
            BaseRows::Half(HalfKind::Bf16, _) => 1,
            BaseRows::Half(HalfKind::F16, _) => 2,
        }
    }
    /// Pushes the rows' pointer.
    fn push<'b>(&'b self, b: &mut cudarc::driver::LaunchArgs<'b>) {
        match self {
            BaseRows::F32(v) => b.arg(*v),
            BaseRows::Half(_, v) => b.arg(*v),
        };
    }
}

/// 16-bit copies of the query and base rows of a [`FilterRows`]
/// ([`half_dim`] elements per row).
pub(crate) struct HalfRows<'a> {
    pub q: CudaView<'a, u16>,
    pub x: CudaView<'a, u16>,
}

/// Widens `rows` 16-bit rows ([`half_dim`] elements per row) into f32 rows
/// of `dim` in `out` (exact).
pub(crate) fn to_f32(
    dev: &CudaDevice,
    src: &CudaView<'_, u16>,
    rows: usize,
    dim: usize,
    kind: HalfKind,
    out: &mut CudaViewMut<'_, f32>,
) -> Result<()> {
    let f = dev.func("knn", "half_to_f32_rows")?;
    let total = rows * dim;
    let cfg = dev.grid_stride(total);
    let (ld, r, d, xkind) = (
        half_dim(dim) as i64,
        rows as i32,
        dim as i32,
        BaseRows::Half(kind, src).code(),
    );
    let mut b = dev.stream.launch_builder(&f);
    b.arg(src).arg(&ld).arg(&r).arg(&d).arg(&xkind).arg(out);
    // SAFETY: src rows x half_dim(dim), out rows x dim.
    unsafe { b.launch(cfg) }.map_err(cu("half_to_f32_rows launch"))?;
    Ok(())
}

/// Converts `rows` f32 rows of `dim` (leading dimension `dim`) into 16-bit
/// rows of [`half_dim`] elements in `out`. Returns false when some value
/// lies beyond the f16 range (the copy is then unusable: the caller ranks
/// those rows with TF32 instead; nothing is clamped).
pub(crate) fn to_half(
    dev: &CudaDevice,
    src: &CudaView<'_, f32>,
    rows: usize,
    dim: usize,
    kind: HalfKind,
    out: &mut CudaViewMut<'_, u16>,
) -> Result<bool> {
    let hd = half_dim(dim);
    let f = dev.func("knn", "to_half_rows")?;
    let mut too_big = dev.alloc::<u32>(1)?;
    dev.stream
        .memset_zeros(&mut too_big)
        .map_err(cu("cuMemsetD8"))?;
    let total = rows * hd;
    let cfg = dev.grid_stride(total);
    let (ld, r, d, hd_i, bf) = (
        dim as i64,
        rows as i32,
        dim as i32,
        hd as i32,
        (kind == HalfKind::Bf16) as i32,
    );
    let mut b = dev.stream.launch_builder(&f);
    b.arg(src).arg(&ld).arg(&r).arg(&d);
    b.arg(&mut *out).arg(&hd_i).arg(&bf).arg(&mut too_big);
    // SAFETY: src rows x dim, out rows x hd, too_big one word.
    unsafe { b.launch(cfg) }.map_err(cu("to_half_rows launch"))?;
    if kind == HalfKind::F16 {
        let mut flag = [0u32; 1];
        dev.stream
            .memcpy_dtoh(&too_big, &mut flag)
            .map_err(cu("download (cuMemcpyDtoH)"))?;
        dev.sync()?;
        return Ok(flag[0] == 0);
    }
    Ok(true)
}

/// Inputs of one filter launch: `m` query rows and `n` base rows of `dim`
/// floats (row-major, leading dimension `dim`) with their squared norms,
/// the metric they are ranked by and the global id of the first base row.
pub(crate) struct FilterRows<'a> {
    /// Query rows.
    pub q: &'a CudaView<'a, f32>,
    /// Number of query rows.
    pub m: usize,
    /// Squared norms of the query rows.
    pub qn: &'a CudaView<'a, f32>,
    /// Base rows.
    pub x: BaseRows<'a>,
    /// Number of base rows.
    pub n: usize,
    /// Squared norms of the base rows.
    pub xn: &'a CudaView<'a, f32>,
    /// Values per row.
    pub dim: usize,
    /// 16-bit copies, for the bf16 / f16 passes.
    pub half: Option<&'a HalfRows<'a>>,
    /// The metric as the kernels see it.
    pub metric: MetricArgs,
    /// Global id of base row 0 (a re-scored candidate's id is this plus its row).
    pub first_id: u64,
}

/// The metric as the kernels see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricArgs {
    /// The metric's code (`kernels/common.cuh`).
    pub code: i32,
    /// Whether the rows are unit length (cosine without norms).
    pub normalized: bool,
    /// Which values are best.
    pub order: Order,
}

/// A tensor-core filter pass with the factor its error bound is scaled by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScaledPass {
    /// How the dot products are computed.
    pub pass: Pass,
    /// Factor of the pass's [`error_bound`] (1: the proven bound).
    pub scale: f32,
}

/// Where a filter leaves its candidates (and where a re-score reads them).
pub(crate) struct Candidates<'a> {
    /// Base-row indices, `cap` per query.
    pub rows: CudaViewMut<'a, u32>,
    /// Room per query.
    pub cap: usize,
    /// Candidates found per query (zeroed by each pass that runs).
    pub counts: &'a mut CudaSlice<i32>,
    /// The chain's state on the device ([`STATE_LEN`] ints, zeroed once
    /// per call): which pass runs, overflows, passes skipped, statistics.
    pub state: &'a mut CudaSlice<i32>,
}

/// Ints of the filter chain's device state (`VA_ST_LEN`).
pub(crate) const STATE_LEN: usize = 18;
/// Offset of the per-pass (runs, overflows) counters in the state.
#[cfg(feature = "debug-hooks")]
const STATE_STATS: usize = 8;
/// The state's pass slot of the exact filter (after the four [`Pass`]es).
const SIMT_SLOT: i32 = 4;

/// One pass of a tile's filter chain, decided on the device: it runs only
/// while every earlier pass of the tile (`prev`, the one launched just
/// before, if any) overflowed and it has not overflowed in an earlier
/// tile; then it appends, per query, the base rows that can beat its
/// current k-th best (`lists`) to `out` and counts them. Nothing waits on
/// the host; [`launch_rescue`] completes the lists of queries that still
/// overflow.
pub(crate) fn launch_filter(
    dev: &CudaDevice,
    r: &FilterRows<'_>,
    pass: ScaledPass,
    prev: Option<Pass>,
    lists: ListsRef<'_>,
    out: &mut Candidates<'_>,
) -> Result<()> {
    let ScaledPass { pass, scale } = pass;
    let aligned = |v: &CudaView<'_, f32>| {
        let (p, _g) = v.device_ptr(&dev.stream);
        p.is_multiple_of(16)
    };
    let half = match (pass.half(), r.half) {
        (Some(_), Some(h)) => Some(h),
        (Some(_), None) => {
            return Err(Error::Cuda {
                op: "k-NN filter",
                message: "a 16-bit pass was asked for without 16-bit rows".into(),
            })
        }
        (None, _) => None,
    };
    let vec4 = match (half, r.x) {
        (Some(_), _) => true,
        (None, BaseRows::F32(x)) => r.dim.is_multiple_of(4) && aligned(r.q) && aligned(x),
        (None, BaseRows::Half(..)) => {
            return Err(Error::Cuda {
                op: "k-NN filter",
                message: "16-bit base rows need a 16-bit pass".into(),
            })
        }
    };
    // Long rows: four warps of 64 x 64 (more work per fragment load);
    // short rows: eight warps of 64 x 32 (more warps to hide the latency of
    // the few pipeline stages).
    let w4 = vec4 && r.dim > 256;
    let name = match (pass, vec4, w4) {
        (Pass::Bf16, _, false) => "fused_filter_bf16",
        (Pass::Bf16, _, true) => "fused_filter_bf16_w4",
        (Pass::F16, _, false) => "fused_filter_f16",
        (Pass::F16, _, true) => "fused_filter_f16_w4",
        (Pass::Tf32, true, true) => "fused_filter_tf32_v4_w4",
        (Pass::Tf32x3, true, true) => "fused_filter_3xtf32_v4_w4",
        (Pass::Tf32, true, _) => "fused_filter_tf32_v4",
        (Pass::Tf32, false, _) => "fused_filter_tf32_v1",
        (Pass::Tf32x3, true, _) => "fused_filter_3xtf32_v4",
        (Pass::Tf32x3, false, _) => "fused_filter_3xtf32_v1",
    };
    let kernel = FilterKernel {
        func: dev.func("knn", name)?,
        cfg: LaunchConfig {
            grid_dim: ((r.n.div_ceil(TILE) * r.m.div_ceil(TILE)) as u32, 1, 1),
            block_dim: (if w4 { 128 } else { 256 }, 1, 1),
            shared_mem_bytes: SMEM_BYTES as u32,
        },
        smem: SMEM_BYTES,
        bound: Some((
            error_bound(r.dim, pass) * scale,
            absolute_bound(r.dim, pass),
        )),
        half,
    };
    let slot = |p: Pass| p as i32;
    step(dev, slot(pass), prev.map_or(-1, slot), r.m, out)?;
    run_filter(dev, &kernel, r, lists, out)
}

/// Launches `filter_step` before the pass in state slot `pass`.
fn step(dev: &CudaDevice, pass: i32, prev: i32, m: usize, out: &mut Candidates<'_>) -> Result<()> {
    let f = dev.func("knn", "filter_step")?;
    let m_i = m as i32;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(&mut *out.state).arg(&pass).arg(&prev);
    b.arg(&mut *out.counts).arg(&m_i);
    let cfg = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: state STATE_LEN ints, counts at least m.
    unsafe { b.launch(cfg) }.map_err(cu("filter_step launch"))?;
    Ok(())
}

/// After a tile's last filter pass (`last`; `None` for the exact filter):
/// books it, and gives every query whose candidates still overflowed its
/// `min(k, n)` best rows of the tile by their fp32 value (then by row), as
/// the candidates [`launch_rescore`] reads.
pub(crate) fn launch_rescue(
    dev: &CudaDevice,
    r: &FilterRows<'_>,
    k: usize,
    last: Option<Pass>,
    out: &mut Candidates<'_>,
) -> Result<()> {
    let f = dev.func("knn", "rescue_overflow")?;
    let a = RescoreArgs::new(r);
    let (n, k_i, cap_i) = (r.n as i32, k as i32, out.cap as i32);
    let desc = (r.metric.order == Order::Largest) as i32;
    let last_i = last.map_or(SIMT_SLOT, |p| p as i32);
    let mut b = dev.stream.launch_builder(&f);
    a.push(&mut b, r);
    b.arg(&n).arg(&k_i).arg(&desc);
    b.arg(&mut out.rows).arg(&cap_i).arg(&mut *out.counts);
    b.arg(&mut *out.state).arg(&last_i);
    // SAFETY: shapes as in launch_filter; cand m x cap, counts m.
    unsafe { b.launch(RescoreArgs::config(r)) }.map_err(cu("rescue_overflow launch"))?;
    Ok(())
}

/// Adds a call's per-pass (runs, overflows) from its device state to
/// [`PASS_STATS`] (test builds only; reads the state to the host).
#[cfg(feature = "debug-hooks")]
pub(crate) fn record_stats(dev: &CudaDevice, state: &CudaSlice<i32>) -> Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let v = dev
        .stream
        .clone_dtoh(state)
        .map_err(cu("download (cuMemcpyDtoH)"))?;
    dev.sync()?;
    for (p, stats) in PASS_STATS.iter().enumerate() {
        stats[0].fetch_add(v[STATE_STATS + 2 * p] as u64, Relaxed);
        stats[1].fetch_add(v[STATE_STATS + 2 * p + 1] as u64, Relaxed);
    }
    Ok(())
}

/// A filter kernel and how it is launched.
struct FilterKernel<'a> {
    /// `fused_filter_*` or `simt_filter`.
    func: CudaFunction,
    /// Grid and block.
    cfg: LaunchConfig,
    /// Dynamic shared memory the kernel is allowed.
    smem: usize,
    /// The (relative, absolute) error bound of a tensor-core pass; `None`
    /// for the exact filter.
    bound: Option<(f32, f32)>,
    /// 16-bit rows, for the bf16 / f16 passes.
    half: Option<&'a HalfRows<'a>>,
}

/// Launches a filter kernel (which runs only if `filter_step` chose it).
fn run_filter(
    dev: &CudaDevice,
    kernel: &FilterKernel<'_>,
    r: &FilterRows<'_>,
    lists: ListsRef<'_>,
    out: &mut Candidates<'_>,
) -> Result<()> {
    let FilterKernel {
        ref func,
        cfg,
        smem,
        bound: cb,
        half,
    } = *kernel;
    let metric = r.metric;
    func.set_attribute(
        CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
        smem as i32,
    )
    .map_err(cu("cuFuncSetAttribute"))?;
    let (ld, m, n, d) = (r.dim as i64, r.m as i32, r.n as i32, r.dim as i32);
    let (hld, hd) = (half_dim(r.dim) as i64, half_dim(r.dim) as i32);
    let (xld, xkind) = (r.x.ld(r.dim), r.x.code());
    let (code, norm) = (metric.code, metric.normalized as i32);
    let (k, desc, cap_i) = (
        lists.k as i32,
        (metric.order == Order::Largest) as i32,
        out.cap as i32,
    );
    let mut b = dev.stream.launch_builder(func);
    match half {
        Some(h) => {
            b.arg(&h.q).arg(&hld).arg(&m);
            b.arg(&h.x).arg(&hld).arg(&n).arg(&hd);
        }
        None => {
            b.arg(r.q).arg(&ld).arg(&m);
            r.x.push(&mut b);
            b.arg(&xld);
            if cb.is_none() {
                // simt_filter reads f32 or 16-bit base rows.
                b.arg(&xkind);
            }
            b.arg(&n).arg(&d);
        }
    }
    b.arg(r.qn).arg(r.xn).arg(&code).arg(&norm);
    if let Some((c, a)) = &cb {
        b.arg(c).arg(a);
    }
    b.arg(lists.dist).arg(lists.ids).arg(&k).arg(&desc);
    b.arg(&mut out.rows)
        .arg(&cap_i)
        .arg(&mut *out.counts)
        .arg(&mut *out.state);
    // SAFETY: q is m x dim, x is n x dim, norms m / n, lists m x k,
    // cand m x cap, counts m, state STATE_LEN; shared memory within `smem`.
    unsafe { b.launch(cfg) }.map_err(cu("k-NN filter launch"))?;
    Ok(())
}

/// The exact filter for few queries: like [`launch_filter`] (as a chain of
/// one pass) but every candidate's test uses its fp32 value as
/// [`launch_rescore`] computes it.
pub(crate) fn launch_simt_filter(
    dev: &CudaDevice,
    r: &FilterRows<'_>,
    lists: ListsRef<'_>,
    out: &mut Candidates<'_>,
) -> Result<()> {
    let blocks = r.n.div_ceil(8).min(dev.sm_count() * 8).max(1);
    // The queries may take all of the default 48 KiB, beside the kernel's
    // static arrays: opt in to that much dynamic shared memory.
    let kernel = FilterKernel {
        func: dev.func("knn", "simt_filter")?,
        cfg: LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: (r.m * r.dim * 4) as u32,
        },
        smem: SIMT_SMEM,
        bound: None,
        half: None,
    };
    step(dev, SIMT_SLOT, -1, r.m, out)?;
    run_filter(dev, &kernel, r, lists, out)
}

/// The leading arguments both re-score kernels take (query rows, base
/// rows of either kind, norms, metric), kept alive for the launch.
struct RescoreArgs {
    ld: i64,
    xld: i64,
    xkind: i32,
    d: i32,
    code: i32,
    norm: i32,
}

impl RescoreArgs {
    fn new(r: &FilterRows<'_>) -> Self {
        Self {
            ld: r.dim as i64,
            xld: r.x.ld(r.dim),
            xkind: r.x.code(),
            d: r.dim as i32,
            code: r.metric.code,
            norm: r.metric.normalized as i32,
        }
    }

    /// `(Q, ldq, X, ldx, xkind, d, qn, xn, metric, normalized)`.
    fn push<'b>(&'b self, b: &mut cudarc::driver::LaunchArgs<'b>, r: &'b FilterRows<'_>) {
        b.arg(r.q).arg(&self.ld);
        r.x.push(b);
        b.arg(&self.xld).arg(&self.xkind).arg(&self.d);
        b.arg(r.qn).arg(r.xn).arg(&self.code).arg(&self.norm);
    }

    /// One block of 8 warps per query row.
    fn config(r: &FilterRows<'_>) -> LaunchConfig {
        LaunchConfig {
            grid_dim: (r.m as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        }
    }
}

/// Exact fp32 values (and global ids) of the candidates `cand` found by
/// [`launch_filter`], into `out` (`cap` per query).
pub(crate) fn launch_rescore(
    dev: &CudaDevice,
    r: &FilterRows<'_>,
    cand: &Candidates<'_>,
    out: &mut ListsMut<'_>,
) -> Result<()> {
    let f = dev.func("knn", "rescore_candidates")?;
    let cap_i = cand.cap as i32;
    let rows = cand.rows.as_view();
    let a = RescoreArgs::new(r);
    let mut b = dev.stream.launch_builder(&f);
    a.push(&mut b, r);
    b.arg(&rows).arg(&cap_i).arg(&*cand.counts).arg(&r.first_id);
    b.arg(&mut out.dist).arg(&mut out.ids);
    // SAFETY: shapes as in launch_filter; outputs m x cap.
    unsafe { b.launch(RescoreArgs::config(r)) }.map_err(cu("rescore_candidates launch"))?;
    Ok(())
}

/// In place: the values of the lists `vals`/`ids` (`k` per query, global
/// ids from `r.first_id`) become their fp32 re-scores, as
/// [`launch_rescore`] computes them.
pub(crate) fn launch_rescore_lists(
    dev: &CudaDevice,
    r: &FilterRows<'_>,
    ids: &CudaView<'_, u64>,
    k: usize,
    vals: &mut CudaViewMut<'_, f32>,
) -> Result<()> {
    let f = dev.func("knn", "rescore_lists")?;
    let k_i = k as i32;
    let a = RescoreArgs::new(r);
    let mut b = dev.stream.launch_builder(&f);
    a.push(&mut b, r);
    b.arg(ids).arg(&k_i).arg(&r.first_id).arg(vals);
    // SAFETY: lists m x k with ids in [offset, offset + n) or missing.
    unsafe { b.launch(RescoreArgs::config(r)) }.map_err(cu("rescore_lists launch"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_shrinks_with_three_passes_and_grows_with_dim() {
        let (a, b) = (error_bound(128, Pass::Tf32), error_bound(128, Pass::Tf32x3));
        assert!(a > 1.9e-3 && a < 2.2e-3, "{a}");
        assert!(b < a / 10.0, "{b}");
        assert!(error_bound(4096, Pass::Tf32) > a);
        // bf16 keeps 3 fewer bits than TF32's truncation bound allows, f16
        // one more (rounded rather than truncated).
        let (h, f) = (error_bound(128, Pass::Bf16), error_bound(128, Pass::F16));
        assert!(h > 3.9 * a && h < 4.1 * a, "{h} vs {a}");
        assert!(f > 0.45 * a && f < 0.6 * a, "{f} vs {a}");
        assert_eq!(absolute_bound(128, Pass::Bf16), 0.0);
        assert!(absolute_bound(128, Pass::F16) > 0.0);
        assert_eq!(half_dim(1), 8);
        assert_eq!(half_dim(128), 128);
        assert_eq!(half_dim(129), 136);
    }
}

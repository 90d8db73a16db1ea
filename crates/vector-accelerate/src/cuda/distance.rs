//! CUDA distances: cuBLAS SGEMM (exact fp32) plus an epilogue kernel for L2,
//! cosine and inner product; tiled direct kernels for the other metrics.

use cudarc::cublas::{sys::cublasOperation_t, Gemm, GemmConfig};
use cudarc::driver::{CudaSlice, CudaView, LaunchConfig, PushKernelArg};

use crate::core::error::{cu, Error, Result};
use crate::core::half::{half_dim, HalfKind};
use crate::core::metric::{Metric, Prepared};
use crate::cuda::knn_filter::{to_f32, to_half};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{upload_slice, CudaRows, RowsRef};
use crate::runtime::input::Input;
use crate::runtime::tensor::Storage;

/// Metric codes of `kernels/common.cuh`.
pub(crate) fn metric_code(m: Metric) -> i32 {
    match m {
        Metric::L2 => 0,
        Metric::Euclidean => 1,
        Metric::Cosine => 2,
        Metric::CosineSimilarity => 3,
        Metric::InnerProduct => 4,
        Metric::AbsInnerProduct => 5,
        Metric::L1 => 6,
        Metric::Linf => 7,
        Metric::Minkowski(_) => 8,
        Metric::Hamming => 9,
        Metric::HammingNormalized => 10,
        Metric::Jaccard => 11,
    }
}

/// Rows of an input on the device: borrowed when resident, else uploaded.
pub(crate) enum DevInput<'a> {
    Borrowed(&'a CudaRows),
    Owned(CudaRows),
}

impl DevInput<'_> {
    pub(crate) fn rows(&self) -> &CudaRows {
        match self {
            DevInput::Borrowed(r) => r,
            DevInput::Owned(r) => r,
        }
    }
}

/// Elements (f32 or u64 words) per row of an input.
pub(crate) fn per_row(i: &Input<'_>) -> usize {
    if i.is_binary() {
        crate::core::matrix::words_for_bits(i.dim())
    } else {
        i.dim()
    }
}

/// Whether rows are resident on the device (and so need no upload).
pub(crate) fn resident<'a>(i: &Input<'a>) -> Option<&'a CudaRows> {
    match i {
        Input::Resident(d) => match &d.storage {
            Storage::Cuda(_, r) => Some(r),
            Storage::Host(_) | Storage::CudaHalf(..) => None,
        },
        _ => None,
    }
}

/// Squared norms of a resident `f32` base, computed once and kept with it.
pub(crate) fn resident_norms<'a>(
    dev: &CudaDevice,
    i: &Input<'a>,
) -> Result<Option<&'a CudaSlice<f32>>> {
    let Input::Resident(d) = i else {
        return Ok(None);
    };
    let cell = d.norm_cache();
    if cell.get().is_none() {
        let mut n = dev.alloc::<f32>(d.rows())?;
        match &d.storage {
            Storage::Cuda(_, CudaRows::F32(rows)) => {
                sq_norms(dev, &rows.as_view(), d.rows(), d.dim(), &mut n)?
            }
            Storage::CudaHalf(_, kind, rows) => {
                // Widened in parts (exactly), then the f32 norms.
                let (dim, hd) = (d.dim(), half_dim(d.dim()));
                let part = (16usize << 20) / (dim * 4) + 1;
                let mut wide = dev.alloc::<f32>(part.min(d.rows()) * dim)?;
                let mut np = dev.alloc::<f32>(part.min(d.rows()))?;
                for r0 in (0..d.rows()).step_by(part) {
                    let r1 = (r0 + part).min(d.rows());
                    let m = r1 - r0;
                    to_f32(
                        dev,
                        &rows.slice(r0 * hd..r1 * hd),
                        m,
                        dim,
                        *kind,
                        &mut wide.slice_mut(..m * dim),
                    )?;
                    sq_norms(dev, &wide.slice(..m * dim), m, dim, &mut np)?;
                    dev.stream
                        .memcpy_dtod(&np.slice(..m), &mut n.slice_mut(r0..r1))
                        .map_err(cu("cuMemcpyDtoD"))?;
                }
            }
            _ => return Ok(None),
        }
        let _ = cell.set(n);
    }
    Ok(cell.get())
}

/// The cached 16-bit copy ([`half_dim`] elements per row) of a resident
/// f32 base, made on first use; `None` for other inputs and for rows f16
/// cannot represent.
pub(crate) fn resident_half<'a>(
    dev: &CudaDevice,
    i: &Input<'a>,
    kind: HalfKind,
) -> Result<Option<&'a CudaSlice<u16>>> {
    let Input::Resident(d) = i else {
        return Ok(None);
    };
    let Storage::Cuda(_, CudaRows::F32(rows)) = &d.storage else {
        return Ok(None);
    };
    let cell = d.half_cache(kind == HalfKind::F16);
    if cell.get().is_none() {
        let mut h = dev.alloc::<u16>(d.rows() * half_dim(d.dim()))?;
        if !to_half(
            dev,
            &rows.as_view(),
            d.rows(),
            d.dim(),
            kind,
            &mut h.as_view_mut(),
        )? {
            return Ok(None);
        }
        let _ = cell.set(h);
    }
    Ok(cell.get())
}

/// Uploads rows `start..end` of a host input into `buf` (at least that many rows).
pub(crate) fn upload_rows(
    dev: &CudaDevice,
    i: &Input<'_>,
    start: usize,
    end: usize,
    buf: &mut CudaRows,
) -> Result<()> {
    match (i, buf) {
        (Input::F32(m), CudaRows::F32(b)) => {
            let src = &m.as_slice()[start * m.dim()..end * m.dim()];
            let mut dst = b.slice_mut(..src.len());
            dev.stream
                .memcpy_htod(src, &mut dst)
                .map_err(cu("upload (cuMemcpyHtoD)"))
        }
        (Input::Binary(v), CudaRows::Bits(b)) => {
            let w = v.words_per_row();
            let src = &v.as_words()[start * w..end * w];
            let mut dst = b.slice_mut(..src.len());
            dev.stream
                .memcpy_htod(src, &mut dst)
                .map_err(cu("upload (cuMemcpyHtoD)"))
        }
        _ => Err(Error::Cuda {
            op: "upload",
            message: "input kind does not match the staging buffer".into(),
        }),
    }
}

/// A device buffer able to hold `rows` rows like input `i`.
pub(crate) fn staging(dev: &CudaDevice, i: &Input<'_>, rows: usize) -> Result<CudaRows> {
    let n = rows * per_row(i);
    Ok(if i.is_binary() {
        CudaRows::Bits(dev.alloc::<u64>(n)?)
    } else {
        CudaRows::F32(dev.alloc::<f32>(n)?)
    })
}

/// The whole input on the device (borrowed when resident).
pub(crate) fn whole<'a>(dev: &CudaDevice, i: &Input<'a>) -> Result<DevInput<'a>> {
    if let Some(r) = resident(i) {
        return Ok(DevInput::Borrowed(r));
    }
    Ok(DevInput::Owned(match i {
        Input::F32(m) => CudaRows::F32(upload_slice(dev, m.as_slice())?),
        Input::Binary(b) => CudaRows::Bits(upload_slice(dev, b.as_words())?),
        Input::Resident(_) => {
            return Err(Error::DeviceMismatch {
                data: "cpu".into(),
                context: format!("cuda:{}", dev.ordinal()),
            })
        }
    }))
}

/// Everything a distance tile needs besides the rows.
pub(crate) struct DistPlan<'p> {
    pub p: &'p Prepared,
    pub dim: usize,
    pub weights: Option<CudaSlice<f32>>,
}

impl<'p> DistPlan<'p> {
    pub(crate) fn new(dev: &CudaDevice, p: &'p Prepared, dim: usize) -> Result<Self> {
        let weights = match &p.weights {
            Some(w) => Some(upload_slice(dev, w)?),
            None => None,
        };
        Ok(Self { p, dim, weights })
    }

    /// Whether the GEMM path needs row norms.
    pub(crate) fn needs_norms(&self) -> bool {
        self.p.metric.is_gemm_based() && !self.p.normalized
    }
}

/// `out[r] = |row r|^2` for `rows` f32 rows.
pub(crate) fn sq_norms(
    dev: &CudaDevice,
    x: &CudaView<'_, f32>,
    rows: usize,
    dim: usize,
    out: &mut CudaSlice<f32>,
) -> Result<()> {
    let f = dev.func("distance", "row_sq_norms_f32")?;
    let (rows_i, dim_i) = (rows as i32, dim as i32);
    let cfg = LaunchConfig {
        grid_dim: (rows.div_ceil(8) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut b = dev.stream.launch_builder(&f);
    b.arg(x).arg(&rows_i).arg(&dim_i).arg(out);
    // SAFETY: x holds rows*dim floats and out at least rows.
    unsafe { b.launch(cfg) }.map_err(cu("row_sq_norms_f32 launch"))?;
    Ok(())
}

/// One distance tile: `queries` query rows against `base_rows` base rows.
#[derive(Clone, Copy)]
pub(crate) struct Tile<'a> {
    /// Query rows.
    pub queries: &'a RowsRef<'a>,
    /// Number of query rows.
    pub query_rows: usize,
    /// The queries' squared norms (GEMM metrics that need them).
    pub query_norms: Option<&'a CudaView<'a, f32>>,
    /// Base rows.
    pub base: &'a RowsRef<'a>,
    /// Number of base rows.
    pub base_rows: usize,
    /// The base rows' squared norms when already known.
    pub base_norms: Option<&'a CudaView<'a, f32>>,
    /// Whether GEMM metrics get their epilogue here; without it they leave
    /// raw dot products for a kernel that applies the epilogue itself (see
    /// [`super::select::Epi`]).
    pub epilogue: bool,
}

/// The distances of `t` into `out[0..nq*nx]` (row-major, leading dimension
/// `nx`). `xn` receives the base rows' norms (GEMM metrics) unless the tile
/// gives them.
pub(crate) fn tile(
    dev: &CudaDevice,
    plan: &DistPlan<'_>,
    t: &Tile<'_>,
    xn: &mut CudaSlice<f32>,
    out: &mut CudaSlice<f32>,
) -> Result<()> {
    match (t.queries, t.base) {
        (RowsRef::F32(q), RowsRef::F32(x)) if plan.p.metric.is_gemm_based() => {
            gemm_tile(dev, plan, t, (q, x), xn, out)
        }
        (RowsRef::F32(q), RowsRef::F32(x)) => pairwise_f32(dev, plan, t, (q, x), out),
        (RowsRef::Bits(q), RowsRef::Bits(x)) => pairwise_bits(dev, plan, t, (q, x), out),
        _ => Err(Error::Cuda {
            op: "distance tile",
            message: "queries and base are of different kinds".into(),
        }),
    }
}

/// A GEMM metric's tile: one SGEMM, the base norms when needed, then the
/// epilogue (unless the tile leaves raw products).
fn gemm_tile(
    dev: &CudaDevice,
    plan: &DistPlan<'_>,
    t: &Tile<'_>,
    (qv, xv): (&CudaView<'_, f32>, &CudaView<'_, f32>),
    xn: &mut CudaSlice<f32>,
    out: &mut CudaSlice<f32>,
) -> Result<()> {
    let (p, nq, nx) = (plan.p, t.query_rows, t.base_rows);
    let cfg = GemmConfig {
        transa: cublasOperation_t::CUBLAS_OP_T,
        transb: cublasOperation_t::CUBLAS_OP_N,
        m: nx as i32,
        n: nq as i32,
        k: plan.dim as i32,
        alpha: 1.0f32,
        lda: plan.dim as i32,
        ldb: plan.dim as i32,
        beta: 0.0f32,
        ldc: nx as i32,
    };
    // SAFETY: x is nx*dim, q is nq*dim, out at least nq*nx (column-major nx x nq = row-major nq x nx).
    unsafe { dev.blas.gemm(cfg, xv, qv, out) }.map_err(cu("cublasSgemm"))?;
    if plan.needs_norms() && t.base_norms.is_none() {
        sq_norms(dev, xv, nx, plan.dim, xn)?;
    }
    if !t.epilogue {
        // The caller's kernels apply the epilogue while reading.
        return Ok(());
    }
    let f = dev.func("distance", "gemm_epilogue_f32")?;
    let total = nq * nx;
    let blocks = total.div_ceil(256).clamp(1, 8192) as u32;
    let cfg = LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let (ld, code) = (nx as i64, metric_code(p.metric));
    let (nq_i, nx_i, norm) = (nq as i32, nx as i32, p.normalized as i32);
    let own;
    let xn_view: &CudaView<'_, f32> = match t.base_norms {
        Some(v) => v,
        None => {
            own = xn.as_view();
            &own
        }
    };
    let qn_ref = t.query_norms.unwrap_or(xn_view);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(out)
        .arg(&ld)
        .arg(&nq_i)
        .arg(&nx_i)
        .arg(qn_ref)
        .arg(xn_view)
        .arg(&code)
        .arg(&norm);
    // SAFETY: out is nq x nx; the norms are read only when present.
    unsafe { b.launch(cfg) }.map_err(cu("gemm_epilogue_f32 launch"))?;
    Ok(())
}

/// A direct kernel's tile of f32 rows (metrics without a GEMM form).
fn pairwise_f32(
    dev: &CudaDevice,
    plan: &DistPlan<'_>,
    t: &Tile<'_>,
    (qv, xv): (&CudaView<'_, f32>, &CudaView<'_, f32>),
    out: &mut CudaSlice<f32>,
) -> Result<()> {
    let (p, nq, nx) = (plan.p, t.query_rows, t.base_rows);
    let f = dev.func("distance", "pairwise_f32")?;
    let cfg = LaunchConfig {
        grid_dim: (nx.div_ceil(16) as u32, nq.div_ceil(16) as u32, 1),
        block_dim: (16, 16, 1),
        shared_mem_bytes: 0,
    };
    let (ld, code) = (nx as i64, metric_code(p.metric));
    let (nq_i, nx_i, dim_i) = (nq as i32, nx as i32, plan.dim as i32);
    let pw = match p.metric {
        Metric::Minkowski(pw) => pw,
        _ => 0.0f32,
    };
    let null: u64 = 0;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(qv)
        .arg(&nq_i)
        .arg(xv)
        .arg(&nx_i)
        .arg(&dim_i)
        .arg(&code)
        .arg(&pw);
    match &plan.weights {
        Some(w) => b.arg(w),
        None => b.arg(&null),
    };
    b.arg(&p.threshold).arg(out).arg(&ld);
    // SAFETY: shapes as documented; weights has dim entries when present.
    unsafe { b.launch(cfg) }.map_err(cu("pairwise_f32 launch"))?;
    Ok(())
}

/// A direct kernel's tile of bit-packed rows.
fn pairwise_bits(
    dev: &CudaDevice,
    plan: &DistPlan<'_>,
    t: &Tile<'_>,
    (qv, xv): (&CudaView<'_, u64>, &CudaView<'_, u64>),
    out: &mut CudaSlice<f32>,
) -> Result<()> {
    let (nq, nx) = (t.query_rows, t.base_rows);
    let f = dev.func("distance", "pairwise_bits")?;
    let cfg = LaunchConfig {
        grid_dim: (nx.div_ceil(16) as u32, nq.div_ceil(16) as u32, 1),
        block_dim: (16, 16, 1),
        shared_mem_bytes: 0,
    };
    let (ld, code) = (nx as i64, metric_code(plan.p.metric));
    let words = crate::core::matrix::words_for_bits(plan.dim) as i32;
    let (nq_i, nx_i, bits) = (nq as i32, nx as i32, plan.dim as i32);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(qv)
        .arg(&nq_i)
        .arg(xv)
        .arg(&nx_i)
        .arg(&words)
        .arg(&bits)
        .arg(&code)
        .arg(out)
        .arg(&ld);
    // SAFETY: shapes as documented.
    unsafe { b.launch(cfg) }.map_err(cu("pairwise_bits launch"))?;
    Ok(())
}

/// Query squared norms for the GEMM metrics that need them, or for any
/// `f32` rows when `always` (None otherwise).
pub(crate) fn query_norms(
    dev: &CudaDevice,
    plan: &DistPlan<'_>,
    q: &RowsRef<'_>,
    nq: usize,
    always: bool,
) -> Result<Option<CudaSlice<f32>>> {
    match q {
        RowsRef::F32(v) if plan.needs_norms() || always => {
            let mut n = dev.alloc::<f32>(nq)?;
            sq_norms(dev, v, nq, plan.dim, &mut n)?;
            Ok(Some(n))
        }
        _ => Ok(None),
    }
}

/// The full distance matrix, tiled to the memory budget, copied to the host.
pub(crate) fn matrix(
    dev: &CudaDevice,
    q: &Input<'_>,
    x: &Input<'_>,
    p: &Prepared,
    budget: usize,
) -> Result<Vec<f32>> {
    let _g = dev.lock();
    let (nq, nx, dim) = (q.rows(), x.rows(), x.dim());
    let plan = DistPlan::new(dev, p, dim)?;
    let qd = whole(dev, q)?;
    let xd = whole(dev, x)?;
    let pr = per_row(x);
    // Tile the output: qb x xb floats within the budget (after the inputs).
    let mut xb = nx.min(1 << 16);
    let mut qb = nq.min(4096);
    while qb * xb * 4 + (qb + xb) * 4 > budget {
        if xb > 1024 {
            xb /= 2;
        } else if qb > 1 {
            qb = qb.div_ceil(2);
        } else if xb > 1 {
            xb /= 2;
        } else {
            return Err(Error::OutOfDeviceMemory {
                what: "distance tile",
                requested: 8,
                available: budget,
            });
        }
    }
    let mut out = vec![0f32; nq * nx];
    let mut dbuf = dev.alloc::<f32>(qb * xb)?;
    let mut xn = dev.alloc::<f32>(xb)?;
    let mut host = vec![0f32; qb * xb];
    for q0 in (0..nq).step_by(qb) {
        let q1 = (q0 + qb).min(nq);
        let qr = qd.rows().rows(q0, q1, pr);
        let qn = query_norms(dev, &plan, &qr, q1 - q0, false)?;
        for x0 in (0..nx).step_by(xb) {
            let x1 = (x0 + xb).min(nx);
            let xr = xd.rows().rows(x0, x1, pr);
            let (m, n) = (q1 - q0, x1 - x0);
            let qv = qn.as_ref().map(|s| s.as_view());
            let t = Tile {
                queries: &qr,
                query_rows: m,
                query_norms: qv.as_ref(),
                base: &xr,
                base_rows: n,
                base_norms: None,
                epilogue: true,
            };
            tile(dev, &plan, &t, &mut xn, &mut dbuf)?;
            let h = &mut host[..m * n];
            dev.stream
                .memcpy_dtoh(&dbuf.slice(..m * n), h)
                .map_err(cu("download (cuMemcpyDtoH)"))?;
            dev.sync()?;
            for r in 0..m {
                out[(q0 + r) * nx + x0..(q0 + r) * nx + x1].copy_from_slice(&h[r * n..(r + 1) * n]);
            }
        }
    }
    Ok(out)
}

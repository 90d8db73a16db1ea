//! CUDA host side of quantization and clustering: column statistics,
//! scalar/binary encode and decode, nearest-centroid assignment and
//! fixed-point member sums (k-means and product-quantizer training), code
//! packing, lookup tables, the ADC scan with threshold filtering, and exact
//! re-scoring of candidates.

use std::sync::Arc;

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{CudaFunction, CudaSlice, LaunchConfig, PushKernelArg};

use crate::core::error::{cu, Error, Result};
use crate::core::matrix::MatrixView;
use crate::core::metric::Metric;
use crate::core::neighbors::{Neighbors, Order};
use crate::core::quantize::column_quantiles;
use crate::core::quantize::pq_decode;
use crate::core::quantize::pq_row_bytes;
use crate::core::quantize::{
    ProductQuantizer, ScalarBits, ScalarQuantizer, ScalarRange, ScalarScope,
};
use crate::cuda::cluster::subspace_nearest;
use crate::cuda::distance::whole;
use crate::cuda::select::{download, launch_topk, select_rows, Epi, Fallback, Ids, ListsMut, TopK};
use crate::runtime::backend::QuantizeBackend;
use crate::runtime::codes::PqCodes;
use crate::runtime::codes::{ScalarCodes, Store};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{upload_slice, CudaRows};
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

const MODULE: &str = "quantize";

fn grid(threads: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (threads.div_ceil(256).max(1) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The `f32` rows of an input on the device (borrowed when resident).
fn f32_rows(rows: &CudaRows) -> Result<&CudaSlice<f32>> {
    match rows {
        CudaRows::F32(s) => Ok(s),
        CudaRows::Bits(_) => Err(Error::invalid(
            "input",
            "bit-packed binary rows",
            "expected f32 rows",
        )),
    }
}

/// A host copy of a device buffer (ordered on the device's stream).
fn fetch<T: cudarc::driver::DeviceRepr + Default + Clone>(
    dev: &CudaDevice,
    s: &CudaSlice<T>,
) -> Result<Vec<T>> {
    dev.stream
        .clone_dtoh(s)
        .map_err(cu("download (cuMemcpyDtoH)"))
}

type ColumnStats = (Vec<f32>, Vec<f32>, Vec<f64>, Vec<u64>);

/// Per-column finite (min, max, sum, count), partials combined on the host
/// in a fixed order.
fn column_stats(dev: &CudaDevice, data: &Input<'_>) -> Result<ColumnStats> {
    let _g = dev.lock();
    let (n, d) = (data.rows(), data.dim());
    let rows = whole(dev, data)?;
    let x = f32_rows(rows.rows())?;
    let chunks = n.div_ceil(256).clamp(1, 1024);
    let rpc = n.div_ceil(chunks);
    let chunks = n.div_ceil(rpc);
    let p = chunks * d;
    let (mut lo, mut hi) = (dev.alloc::<f32>(p)?, dev.alloc::<f32>(p)?);
    let (mut sum, mut cnt) = (dev.alloc::<f64>(p)?, dev.alloc::<u64>(p)?);
    let f = dev.func(MODULE, "va_column_stats")?;
    let cfg = LaunchConfig {
        grid_dim: (d.div_ceil(256) as u32, chunks as u32, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let (n_i, d_i, rpc_i) = (n as i64, d as i32, rpc as i64);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(x).arg(&n_i).arg(&d_i).arg(&rpc_i);
    b.arg(&mut lo).arg(&mut hi).arg(&mut sum).arg(&mut cnt);
    // SAFETY: x holds n*d floats; partials chunks*d each.
    unsafe { b.launch(cfg) }.map_err(cu("va_column_stats launch"))?;
    let (lo, hi) = (fetch(dev, &lo)?, fetch(dev, &hi)?);
    let (sum, cnt) = (fetch(dev, &sum)?, fetch(dev, &cnt)?);
    dev.sync()?;
    let (mut l, mut h) = (vec![f32::INFINITY; d], vec![f32::NEG_INFINITY; d]);
    let (mut s, mut c) = (vec![0f64; d], vec![0u64; d]);
    for ch in 0..chunks {
        for j in 0..d {
            let o = ch * d + j;
            l[j] = l[j].min(lo[o]);
            h[j] = h[j].max(hi[o]);
            s[j] += sum[o];
            c[j] += cnt[o];
        }
    }
    Ok((l, h, s, c))
}

/// Per-column finite (min, max).
pub(crate) fn column_ranges(
    dev: &Arc<CudaDevice>,
    data: &Input<'_>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (lo, hi, _, _) = column_stats(dev, data)?;
    Ok(crate::core::quantize::finish_ranges(lo, hi))
}

/// Per-column means of the finite values.
pub(crate) fn column_means(dev: &Arc<CudaDevice>, data: &Input<'_>) -> Result<Vec<f32>> {
    let (_, _, s, c) = column_stats(dev, data)?;
    Ok(s.iter()
        .zip(&c)
        .map(|(s, &c)| if c > 0 { (s / c as f64) as f32 } else { 0.0 })
        .collect())
}

/// Scalar-quantizes rows into codes on the device.
pub(crate) fn sq_encode(
    dev: &Arc<CudaDevice>,
    sq: &ScalarQuantizer,
    data: &Input<'_>,
) -> Result<ScalarCodes> {
    let _g = dev.lock();
    let (n, d) = (data.rows(), data.dim());
    let rows = whole(dev, data)?;
    let x = f32_rows(rows.rows())?;
    let bits = sq.opts.bits;
    let bpr = bits.bytes_per_row(d);
    let (qmin, qmax) = crate::core::quantize::code_range(bits, sq.opts.range);
    let asym = (sq.opts.range == ScalarRange::Asymmetric) as i32;
    let per_vector = sq.opts.scope == ScalarScope::PerVector;
    let mut out = dev.alloc::<u8>(n * bpr)?;
    let (scale, inv, off) = if per_vector {
        let (mut s, mut i, mut o) = (
            dev.alloc::<f32>(n)?,
            dev.alloc::<f32>(n)?,
            dev.alloc::<f32>(n)?,
        );
        let f = dev.func(MODULE, "va_sq_row_params")?;
        let (n_i, d_i) = (n as i64, d as i32);
        let (qs, qa) = (bits.sym_max(), bits.asym_max());
        let mut b = dev.stream.launch_builder(&f);
        b.arg(x).arg(&n_i).arg(&d_i).arg(&asym).arg(&qs).arg(&qa);
        b.arg(&mut s).arg(&mut i).arg(&mut o);
        // SAFETY: x holds n*d floats, outputs n each.
        unsafe { b.launch(grid(n * 32)) }.map_err(cu("va_sq_row_params launch"))?;
        (Some(s), i, o)
    } else {
        (
            None,
            upload_slice(dev, &sq.inv)?,
            upload_slice(dev, &sq.offset)?,
        )
    };
    let (n_i, d_i, bpr_i) = (n as i64, d as i32, bpr as i32);
    if bits == ScalarBits::Int8 && !per_vector && d % 16 == 0 {
        let f = dev.func(MODULE, "va_sq8_encode16")?;
        let groups = d / 16;
        let g_i = groups as i32;
        // Enough threads to fill the device, a whole number of rows apart.
        let threads = (dev.sm_count() * 2048).max(groups).min(n * groups);
        let mut b = dev.stream.launch_builder(&f);
        b.arg(x)
            .arg(&n_i)
            .arg(&g_i)
            .arg(&inv)
            .arg(&off)
            .arg(&qmin)
            .arg(&qmax);
        b.arg(&mut out);
        // SAFETY: x holds n*d floats (16-byte aligned rows of d % 16 == 0)
        // and out n*d bytes; params d floats.
        unsafe { b.launch(grid(threads)) }.map_err(cu("va_sq8_encode16 launch"))?;
    } else {
        let f = dev.func(MODULE, "va_sq_encode")?;
        let int4 = (bits == ScalarBits::Int4) as i32;
        let pv = per_vector as i32;
        let mut b = dev.stream.launch_builder(&f);
        b.arg(x)
            .arg(&n_i)
            .arg(&d_i)
            .arg(&bpr_i)
            .arg(&int4)
            .arg(&inv)
            .arg(&off)
            .arg(&pv);
        b.arg(&qmin).arg(&qmax).arg(&mut out);
        // SAFETY: x holds n*d floats, out n*bpr bytes, params d or n.
        unsafe { b.launch(grid(n * bpr.div_ceil(4))) }.map_err(cu("va_sq_encode launch"))?;
    }
    dev.sync()?;
    Ok(ScalarCodes {
        rows: n,
        dim: d,
        bits,
        range: sq.opts.range,
        bytes: Store::Cuda(dev.clone(), out),
        params: scale.map(|s| (Store::Cuda(dev.clone(), s), Store::Cuda(dev.clone(), off))),
    })
}

/// Decodes rows `a..b` of codes into `f32` rows on the device.
pub(crate) fn sq_decode(
    dev: &Arc<CudaDevice>,
    sq: &ScalarQuantizer,
    codes: &ScalarCodes,
    a: usize,
    b: usize,
) -> Result<DeviceMatrix> {
    let _g = dev.lock();
    let d = codes.dim;
    let n = b - a;
    let bytes = codes.bytes.cuda().expect("device codes on a CUDA context");
    let (scale_own, off_own);
    let (scale, off, pv) = match &codes.params {
        Some((s, o)) => (
            s.cuda().expect("device parameters"),
            o.cuda().expect("device parameters"),
            1i32,
        ),
        None => {
            scale_own = upload_slice(dev, &sq.scale)?;
            off_own = upload_slice(dev, &sq.offset)?;
            (&scale_own, &off_own, 0i32)
        }
    };
    let mut out = dev.alloc::<f32>(n * d)?;
    let f = dev.func(MODULE, "va_sq_decode")?;
    let (a_i, n_i, d_i, bpr_i) = (a as i64, n as i64, d as i32, codes.bytes_per_row() as i32);
    let int4 = (codes.bits == ScalarBits::Int4) as i32;
    let signed = (codes.range == ScalarRange::Symmetric) as i32;
    let mut bl = dev.stream.launch_builder(&f);
    bl.arg(bytes)
        .arg(&a_i)
        .arg(&n_i)
        .arg(&d_i)
        .arg(&bpr_i)
        .arg(&int4)
        .arg(&signed);
    bl.arg(scale).arg(off).arg(&pv).arg(&mut out);
    // SAFETY: codes hold rows*bpr bytes (a..b within), out n*d floats.
    unsafe { bl.launch(grid(n * d)) }.map_err(cu("va_sq_decode launch"))?;
    dev.sync()?;
    Ok(DeviceMatrix::from_cuda(dev, CudaRows::F32(out), n, d, true))
}

/// Binary-quantizes rows into bit-packed codes on the device.
pub(crate) fn bq_encode(
    dev: &Arc<CudaDevice>,
    thresholds: &[f32],
    data: &Input<'_>,
) -> Result<DeviceMatrix> {
    let _g = dev.lock();
    let (n, d) = (data.rows(), data.dim());
    let rows = whole(dev, data)?;
    let x = f32_rows(rows.rows())?;
    let words = crate::core::matrix::words_for_bits(d);
    let t = upload_slice(dev, thresholds)?;
    let mut out = dev.alloc::<u64>(n * words)?;
    let f = dev.func(MODULE, "va_bq_encode")?;
    let (n_i, d_i, w_i) = (n as i64, d as i32, words as i32);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(x).arg(&n_i).arg(&d_i).arg(&w_i).arg(&t).arg(&mut out);
    // SAFETY: x holds n*d floats, out n*words words.
    unsafe { b.launch(grid(n * words * 32)) }.map_err(cu("va_bq_encode launch"))?;
    dev.sync()?;
    Ok(DeviceMatrix::from_cuda(
        dev,
        CudaRows::Bits(out),
        n,
        d,
        false,
    ))
}

/// Product-quantizes rows into packed codes on the device.
pub(crate) fn pq_encode(
    dev: &Arc<CudaDevice>,
    pq: &ProductQuantizer,
    data: &Input<'_>,
) -> Result<CudaSlice<u8>> {
    let _g = dev.lock();
    let (n, d) = (data.rows(), data.dim());
    let rows = whole(dev, data)?;
    let x = f32_rows(rows.rows())?;
    let kc = 1usize << pq.nbits;
    let c = upload_slice(dev, &pq.centroids)?;
    let (codes, _) = subspace_nearest(dev, (x, n, d, d), &c, (pq.m, pq.dsub, kc))?;
    let rb = pq_row_bytes(pq.m, pq.nbits);
    let mut out = dev.alloc::<u8>(n * rb)?;
    let f = dev.func(MODULE, "va_pack_codes")?;
    let (n_i, m_i, nb_i, rb_i) = (n as i64, pq.m as i32, pq.nbits as i32, rb as i32);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(&codes)
        .arg(&n_i)
        .arg(&m_i)
        .arg(&nb_i)
        .arg(&rb_i)
        .arg(&mut out);
    // SAFETY: codes n*m, out n*rb bytes.
    unsafe { b.launch(grid(n)) }.map_err(cu("va_pack_codes launch"))?;
    dev.sync()?;
    Ok(out)
}

/// The scan kernel for a code layout.
fn scan_kernel(m: usize, nbits: u32) -> &'static str {
    match (nbits, m) {
        (8, 16) => "va_pq_scan8_16",
        (8, 32) => "va_pq_scan8_32",
        (8, 64) => "va_pq_scan8_64",
        _ => "va_pq_scan",
    }
}

/// Codes scored per thread of the ADC scan.
const PER_THREAD: usize = 32;

/// ADC k-NN on the device: lookup tables, a dense pass over a leading
/// sample whose k-th best bounds each query's k-th best, a filtering pass
/// over every code that keeps the candidates no worse than that bound (a
/// larger buffer is tried when a query overflows), and a select among them.
pub(crate) fn pq_search(
    dev: &Arc<CudaDevice>,
    pq: &ProductQuantizer,
    q: MatrixView<'_>,
    codes: &crate::runtime::codes::PqCodes,
    k: usize,
    metric: Metric,
) -> Result<Neighbors> {
    let _g = dev.lock();
    let (nq, n) = (q.rows(), codes.rows);
    let order = metric.order();
    let lut = pq_tables(dev, pq, q, metric)?;
    let scan = AdcScan::new(dev, pq, codes, &lut, nq, order)?;
    // The sample: its k-th best bounds each query's k-th best.
    let s = n.min((256 * k).max(65_536));
    let mut sd = dev.alloc::<f32>(nq * s)?;
    let mut dummy_i = dev.alloc::<u64>(1)?;
    let mut counts = dev.alloc::<i32>(nq)?;
    let none = dev.alloc::<f32>(1)?;
    scan.launch(ScanPass {
        rows: s,
        dense: true,
        thr: &none,
        out_d: &mut sd,
        out_i: &mut dummy_i,
        ld: s,
        cap: 0,
        counts: &mut counts,
    })?;
    if s == n {
        return select_rows(dev, &sd.as_view(), nq, n, k, order);
    }
    let bound = select_rows(dev, &sd.as_view(), nq, s, k, order)?;
    drop(sd);
    let thr_h: Vec<f32> = (0..nq)
        .map(|r| bound.row_distances(r)[k.min(s) - 1])
        .collect();
    let thr = upload_slice(dev, &thr_h)?;
    let mut cap = 4 * k * n.div_ceil(s) + 1024;
    loop {
        let mut cd = dev.alloc::<f32>(nq * cap)?;
        let mut ci = dev.alloc::<u64>(nq * cap)?;
        dev.stream
            .memset_zeros(&mut counts)
            .map_err(cu("cuMemsetD8"))?;
        scan.launch(ScanPass {
            rows: n,
            dense: false,
            thr: &thr,
            out_d: &mut cd,
            out_i: &mut ci,
            ld: 0,
            cap,
            counts: &mut counts,
        })?;
        let hc = fetch(dev, &counts)?;
        dev.sync()?;
        let most = hc.iter().copied().max().unwrap_or(0).max(0) as usize;
        if most > cap {
            cap = most;
            continue;
        }
        let (mut od, mut oi) = (dev.alloc::<f32>(nq * k)?, dev.alloc::<u64>(nq * k)?);
        let mut scratch = None;
        let job = TopK {
            vals: &cd.as_view(),
            ld: cap,
            rows: nq,
            n: cap,
            k,
            order,
            ids: Ids::Explicit(&ci.as_view(), cap as i64),
            fallback: Some(Fallback {
                counts: &counts,
                cap,
                full: None,
                full_n: 0,
                full_ld: 0,
                full_offset: 0,
            }),
            epi: Epi::default(),
            split: 1,
        };
        let mut out = ListsMut {
            dist: od.as_view_mut(),
            ids: oi.as_view_mut(),
        };
        launch_topk(dev, &job, &mut out, &mut scratch)?;
        return download(dev, &od, &oi, nq, k, order);
    }
}

/// The ADC lookup tables of the queries `q` (`nq x m x kc` on the device).
fn pq_tables(
    dev: &CudaDevice,
    pq: &ProductQuantizer,
    q: MatrixView<'_>,
    metric: Metric,
) -> Result<CudaSlice<f32>> {
    let nq = q.rows();
    let (m, kc) = (pq.m, 1usize << pq.nbits);
    let qd = upload_slice(dev, q.as_slice())?;
    let cent = upload_slice(dev, &pq.centroids)?;
    let mut lut = dev.alloc::<f32>(nq * m * kc)?;
    let f = dev.func(MODULE, "va_pq_tables")?;
    let (nq_i, d_i, m_i, ds_i, kc_i) = (
        nq as i32,
        q.dim() as i32,
        m as i32,
        pq.dsub as i32,
        kc as i32,
    );
    let ip = (metric == Metric::InnerProduct) as i32;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(&qd)
        .arg(&nq_i)
        .arg(&d_i)
        .arg(&m_i)
        .arg(&ds_i)
        .arg(&kc_i)
        .arg(&cent)
        .arg(&ip);
    b.arg(&mut lut);
    // SAFETY: q nq*d, cent m*kc*ds, lut nq*m*kc.
    unsafe { b.launch(grid(nq * m * kc)) }.map_err(cu("va_pq_tables launch"))?;
    Ok(lut)
}

/// The ADC scan kernel with what every pass shares: the codes, the
/// queries' lookup tables and the launch shape.
struct AdcScan<'a> {
    /// The device.
    dev: &'a CudaDevice,
    /// The scan kernel for the code layout.
    f: CudaFunction,
    /// The codes, `row_bytes` per row.
    bytes: &'a CudaSlice<u8>,
    /// The queries' lookup tables.
    lut: &'a CudaSlice<f32>,
    /// Queries.
    nq: usize,
    /// Sub-spaces.
    m: usize,
    /// Bits per sub-space code.
    nbits: u32,
    /// Bytes per code.
    row_bytes: usize,
    /// Centroids per sub-space.
    kc: usize,
    /// Queries per block.
    qpb: usize,
    /// Shared memory per block (the block's tables).
    smem: usize,
    /// Which values are best.
    order: Order,
}

/// One pass of the ADC scan over the first `rows` codes.
struct ScanPass<'b> {
    /// Codes scanned.
    rows: usize,
    /// Every value (`ld` per query) rather than those no worse than `thr`.
    dense: bool,
    /// Per-query thresholds of a filtering pass.
    thr: &'b CudaSlice<f32>,
    /// Values (dense: every one; filter: the candidates').
    out_d: &'b mut CudaSlice<f32>,
    /// The candidates' ids (filter).
    out_i: &'b mut CudaSlice<u64>,
    /// Values per query of a dense pass.
    ld: usize,
    /// Candidates per query of a filtering pass.
    cap: usize,
    /// Candidates found per query.
    counts: &'b mut CudaSlice<i32>,
}

impl<'a> AdcScan<'a> {
    /// The scan of `codes` for the `nq` queries' tables `lut`; fails when a
    /// query's table does not fit in shared memory.
    fn new(
        dev: &'a CudaDevice,
        pq: &ProductQuantizer,
        codes: &'a crate::runtime::codes::PqCodes,
        lut: &'a CudaSlice<f32>,
        nq: usize,
        order: Order,
    ) -> Result<Self> {
        let (m, kc) = (pq.m, 1usize << pq.nbits);
        let bytes = codes.bytes.cuda().expect("device codes on a CUDA context");
        let table_bytes = m * kc * 4;
        let smem_max = 200 * 1024;
        if table_bytes > smem_max {
            return Err(Error::invalid(
                "product quantizer",
                format!("M {m} nbits {}", pq.nbits),
                format!(
                    "the ADC scan keeps a query's {table_bytes}-byte lookup table in shared memory (at most {smem_max}); use fewer sub-spaces or bits"
                ),
            ));
        }
        // Few queries per block (several blocks per SM) over many codes per
        // block, so each table loaded into shared memory serves many codes.
        let qpb = ((64 << 10) / table_bytes).clamp(1, 8).min(nq);
        let kern = if codes.bytes_per_row().is_multiple_of(16) {
            scan_kernel(m, pq.nbits)
        } else {
            "va_pq_scan"
        };
        let f = dev.func(MODULE, kern)?;
        let smem = qpb * table_bytes;
        f.set_attribute(
            CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            smem as i32,
        )
        .map_err(cu("cuFuncSetAttribute"))?;
        Ok(Self {
            dev,
            f,
            bytes,
            lut,
            nq,
            m,
            nbits: pq.nbits,
            row_bytes: codes.bytes_per_row(),
            kc,
            qpb,
            smem,
            order,
        })
    }

    /// Launches one pass.
    fn launch(&self, pass: ScanPass<'_>) -> Result<()> {
        let ScanPass {
            rows,
            dense,
            thr,
            out_d,
            out_i,
            ld,
            cap,
            counts,
        } = pass;
        let (dev, nq, qpb) = (self.dev, self.nq, self.qpb);
        let cfg = LaunchConfig {
            grid_dim: (
                rows.div_ceil(256 * PER_THREAD) as u32,
                nq.div_ceil(qpb) as u32,
                1,
            ),
            block_dim: (256, 1, 1),
            shared_mem_bytes: self.smem as u32,
        };
        let (n_i, m_i, nb_i, rb_i, kc_i) = (
            rows as i64,
            self.m as i32,
            self.nbits as i32,
            self.row_bytes as i32,
            self.kc as i32,
        );
        let (nq_i, qpb_i, pt_i, dense_i, desc_i) = (
            nq as i32,
            qpb as i32,
            PER_THREAD as i32,
            dense as i32,
            (self.order == Order::Largest) as i32,
        );
        let (ld_i, cap_i) = (ld as i64, cap as i32);
        let mut b = dev.stream.launch_builder(&self.f);
        b.arg(self.bytes)
            .arg(&n_i)
            .arg(&m_i)
            .arg(&nb_i)
            .arg(&rb_i)
            .arg(&kc_i)
            .arg(self.lut);
        b.arg(&nq_i)
            .arg(&qpb_i)
            .arg(&pt_i)
            .arg(&dense_i)
            .arg(&desc_i)
            .arg(thr);
        b.arg(out_d).arg(out_i).arg(&ld_i).arg(&cap_i).arg(counts);
        // SAFETY: codes n*rb bytes; dense: out_d nq*ld with rows <= ld;
        // filter: out_d/out_i nq*cap, counts nq; shared qpb tables.
        unsafe { b.launch(cfg) }.map_err(cu("va_pq_scan launch"))?;
        Ok(())
    }
}

/// Exact distances of each query to its candidates (`nq x r` ids) against
/// device rows.
pub(crate) fn pair_distances(
    dev: &Arc<CudaDevice>,
    q: &Input<'_>,
    base: &Input<'_>,
    ids: &[u64],
    r: usize,
    metric: Metric,
) -> Result<Vec<f32>> {
    let _g = dev.lock();
    let qr = whole(dev, q)?;
    let xr = whole(dev, base)?;
    let (qv, xv): (&CudaSlice<f32>, &CudaSlice<f32>) = (f32_rows(qr.rows())?, f32_rows(xr.rows())?);
    let id = upload_slice(dev, ids)?;
    let mut out = dev.alloc::<f32>(ids.len())?;
    let f = dev.func(MODULE, "va_pair_distances")?;
    let (nq_i, r_i, d_i) = (q.rows() as i32, r as i32, q.dim() as i32);
    let ip = (metric == Metric::InnerProduct) as i32;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(qv)
        .arg(xv)
        .arg(&id)
        .arg(&nq_i)
        .arg(&r_i)
        .arg(&d_i)
        .arg(&ip)
        .arg(&mut out);
    // SAFETY: q nq*d, base rows*d (ids < rows, checked by the caller), out nq*r.
    unsafe { b.launch(grid(ids.len() * 32)) }.map_err(cu("va_pair_distances launch"))?;
    let v = fetch(dev, &out)?;
    dev.sync()?;
    Ok(v)
}

impl QuantizeBackend for Arc<CudaDevice> {
    /// Ranges from one device pass over the columns; clip quantiles on the
    /// host (a sort of each column).
    fn column_ranges(
        &self,
        data: &Input<'_>,
        clip: Option<f32>,
        symmetric: bool,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        match clip {
            None => column_ranges(self, data),
            Some(p) => {
                let mut hold = None;
                Ok(column_quantiles(data.host_view(&mut hold)?, p, symmetric))
            }
        }
    }

    fn column_means(&self, data: &Input<'_>) -> Result<Vec<f32>> {
        column_means(self, data)
    }

    fn sq_encode(&self, sq: &ScalarQuantizer, data: &Input<'_>) -> Result<ScalarCodes> {
        sq_encode(self, sq, data)
    }

    fn sq_decode(
        &self,
        sq: &ScalarQuantizer,
        codes: &ScalarCodes,
        rows: std::ops::Range<usize>,
    ) -> Result<DeviceMatrix> {
        sq_decode(self, sq, codes, rows.start, rows.end)
    }

    fn bq_encode(&self, thresholds: &[f32], data: &Input<'_>) -> Result<DeviceMatrix> {
        bq_encode(self, thresholds, data)
    }

    fn pq_encode(&self, pq: &ProductQuantizer, data: &Input<'_>) -> Result<PqCodes> {
        Ok(PqCodes {
            rows: data.rows(),
            m: pq.m,
            nbits: pq.nbits,
            bytes: Store::Cuda(self.clone(), pq_encode(self, pq, data)?),
        })
    }

    /// Decoded on the host from the downloaded codes, then uploaded.
    fn pq_decode(&self, pq: &ProductQuantizer, codes: &PqCodes) -> Result<DeviceMatrix> {
        let m = pq_decode(pq, &codes.bytes.to_vec()?, codes.rows);
        let rows = CudaRows::upload_f32(self, m.as_slice())?;
        Ok(DeviceMatrix::from_cuda(
            self, rows, codes.rows, pq.dim, true,
        ))
    }

    fn pq_search(
        &self,
        pq: &ProductQuantizer,
        queries: MatrixView<'_>,
        codes: &PqCodes,
        k: usize,
        metric: Metric,
    ) -> Result<Neighbors> {
        pq_search(self, pq, queries, codes, k, metric)
    }

    /// On the device for a resident base; a host base on the host.
    fn pair_distances(
        &self,
        (queries, base): (&Input<'_>, &Input<'_>),
        ids: &[u64],
        per_query: usize,
        metric: Metric,
    ) -> Result<Vec<f32>> {
        if let Input::Resident(_) = base {
            return pair_distances(self, queries, base, ids, per_query, metric);
        }
        let (mut hold_q, mut hold_x) = (None, None);
        let q = queries.host_view(&mut hold_q)?;
        let x = base.host_view(&mut hold_x)?;
        Ok(crate::core::quantize::pair_distances(
            q, x, ids, per_query, metric,
        ))
    }
}

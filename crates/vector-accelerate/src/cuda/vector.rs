//! CUDA host side of the vector utilities (`kernels/vector.cu`): one launch
//! per element-wise operation, a warp (rows up to 1024 wide) or a block per
//! row for row-wise work, and two-stage reductions over columns or the
//! whole array whose second stage combines partials in a fixed order.

use cudarc::driver::{CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg};

use crate::core::error::{cu, Result};
use crate::core::vector::{Axis, Binary, Kind, Unary, MAX_CHAIN};
use crate::cuda::distance::whole;
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::f32_rows;
use crate::runtime::input::{Broadcast, Input};

const MODULE: &str = "vector";

/// Rows up to this width get one warp each; wider rows a block of 256.
const WARP_ROW_MAX: usize = 1024;

/// Kernel argument `VaChain` of `kernels/vector.cu`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Chain {
    len: i32,
    op: [i32; MAX_CHAIN],
    a: [f32; MAX_CHAIN],
    b: [f32; MAX_CHAIN],
}

// SAFETY: plain old data with the C layout of `VaChain`.
unsafe impl DeviceRepr for Chain {}

/// Kernel argument `VaAcc` (a partial reduction; only stored and passed back).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    s1: f64,
    s2: f64,
    v: f32,
    pad: u32,
    idx: u64,
}

// SAFETY: plain old data with the C layout of `VaAcc`.
unsafe impl DeviceRepr for Acc {}

fn unary_code(op: Unary) -> (i32, f32, f32) {
    match op {
        Unary::Add(c) => (0, c, 0.0),
        Unary::Mul(c) => (1, c, 0.0),
        Unary::Pow(p) => (2, p, 0.0),
        Unary::Clamp(lo, hi) => (3, lo, hi),
        Unary::Abs => (4, 0.0, 0.0),
        Unary::Square => (5, 0.0, 0.0),
        Unary::Sqrt => (6, 0.0, 0.0),
        Unary::Reciprocal => (7, 0.0, 0.0),
        Unary::Neg => (8, 0.0, 0.0),
        Unary::Exp => (9, 0.0, 0.0),
        Unary::Log => (10, 0.0, 0.0),
        Unary::Sin => (11, 0.0, 0.0),
        Unary::Cos => (12, 0.0, 0.0),
        Unary::Tan => (13, 0.0, 0.0),
        Unary::Tanh => (14, 0.0, 0.0),
        Unary::Sigmoid => (15, 0.0, 0.0),
        Unary::Relu => (16, 0.0, 0.0),
        Unary::Gelu => (17, 0.0, 0.0),
    }
}

fn binary_code(op: Binary) -> i32 {
    match op {
        Binary::Add => 0,
        Binary::Sub => 1,
        Binary::Mul => 2,
        Binary::Div => 3,
        Binary::Pow => 4,
        Binary::Max => 5,
        Binary::Min => 6,
    }
}

fn chain(steps: &[Unary]) -> Chain {
    let mut c = Chain {
        len: steps.len() as i32,
        ..Default::default()
    };
    for (i, &s) in steps.iter().enumerate() {
        (c.op[i], c.a[i], c.b[i]) = unary_code(s);
    }
    c
}

/// Grid for a grid-stride loop over `n` elements, 4 per thread.
fn flat_grid(dev: &CudaDevice, n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(256 * 4).clamp(1, dev.sm_count() * 16);
    LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Grid for row-wise kernels: warp per row (8 rows a block) or block per row.
fn row_grid(dev: &CudaDevice, rows: usize, dim: usize) -> (LaunchConfig, bool) {
    let warp = dim <= WARP_ROW_MAX;
    let per_block = if warp { 8 } else { 1 };
    let blocks = rows.div_ceil(per_block).clamp(1, dev.sm_count() * 64);
    (
        LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        },
        warp,
    )
}

fn fetch<T: DeviceRepr + Default + Clone>(
    dev: &CudaDevice,
    s: &CudaSlice<T>,
    n: usize,
) -> Result<Vec<T>> {
    let mut v = dev
        .stream
        .clone_dtoh(s)
        .map_err(cu("download (cuMemcpyDtoH)"))?;
    v.truncate(n);
    Ok(v)
}

/// `chain(x)` of every element, on the host.
pub(crate) fn map(dev: &CudaDevice, x: &Input<'_>, steps: &[Unary]) -> Result<Vec<f32>> {
    let _g = dev.lock();
    let y = map_into(dev, x, steps)?;
    let out = fetch(dev, &y, x.rows() * x.dim())?;
    dev.sync()?;
    Ok(out)
}

/// `chain(x)` of every element, left on the device.
pub(crate) fn map_resident(
    dev: &CudaDevice,
    x: &Input<'_>,
    steps: &[Unary],
) -> Result<CudaSlice<f32>> {
    let _g = dev.lock();
    map_into(dev, x, steps)
}

/// [`map`]'s launch (the caller holds the device lock).
fn map_into(dev: &CudaDevice, x: &Input<'_>, steps: &[Unary]) -> Result<CudaSlice<f32>> {
    let n = x.rows() * x.dim();
    let rows = whole(dev, x)?;
    let xs = f32_rows(rows.rows())?;
    let mut y = dev.alloc::<f32>(n)?;
    let f = dev.func(MODULE, "va_map_f32")?;
    let (n_i, c) = (n as i64, chain(steps));
    let mut b = dev.stream.launch_builder(&f);
    b.arg(xs).arg(&mut y).arg(&n_i).arg(&c);
    // SAFETY: x and y hold n floats.
    unsafe { b.launch(flat_grid(dev, n)) }.map_err(cu("va_map_f32 launch"))?;
    Ok(y)
}

/// `then(op(a, b))` with `b` broadcast, on the host.
pub(crate) fn binary(
    dev: &CudaDevice,
    a: &Input<'_>,
    bc: &Broadcast<'_>,
    op: Binary,
    then: &[Unary],
) -> Result<Vec<f32>> {
    let _g = dev.lock();
    let y = binary_into(dev, a, bc, op, then)?;
    let out = fetch(dev, &y, a.rows() * a.dim())?;
    dev.sync()?;
    Ok(out)
}

/// `then(op(a, b))` with `b` broadcast, left on the device.
pub(crate) fn binary_resident(
    dev: &CudaDevice,
    a: &Input<'_>,
    bc: &Broadcast<'_>,
    op: Binary,
    then: &[Unary],
) -> Result<CudaSlice<f32>> {
    let _g = dev.lock();
    binary_into(dev, a, bc, op, then)
}

/// [`binary`]'s launch (the caller holds the device lock).
fn binary_into(
    dev: &CudaDevice,
    a: &Input<'_>,
    bc: &Broadcast<'_>,
    op: Binary,
    then: &[Unary],
) -> Result<CudaSlice<f32>> {
    let (rows, dim) = (a.rows(), a.dim());
    let n = rows * dim;
    let ad = whole(dev, a)?;
    let av = f32_rows(ad.rows())?;
    let (bd, scalar, brs, bcs) = match bc {
        Broadcast::Scalar(s) => (None, *s, 0i64, 0i64),
        Broadcast::Array {
            b,
            row_stride,
            col_stride,
        } => (
            Some(whole(dev, b)?),
            0.0,
            *row_stride as i64,
            *col_stride as i64,
        ),
    };
    let mut y = dev.alloc::<f32>(n)?;
    let f = dev.func(MODULE, "va_binary_f32")?;
    let (rows_i, dim_i, code, c) = (rows as i64, dim as i64, binary_code(op), chain(then));
    let null: u64 = 0;
    let mut lb = dev.stream.launch_builder(&f);
    lb.arg(av);
    match &bd {
        Some(d) => lb.arg(f32_rows(d.rows())?),
        None => lb.arg(&null),
    };
    lb.arg(&mut y).arg(&rows_i).arg(&dim_i).arg(&brs).arg(&bcs);
    lb.arg(&scalar).arg(&code).arg(&c);
    // SAFETY: a and y hold rows*dim floats; b (when present) covers every
    // index the strides reach.
    unsafe { lb.launch(flat_grid(dev, n)) }.map_err(cu("va_binary_f32 launch"))?;
    Ok(y)
}

fn launch_normalize(
    dev: &CudaDevice,
    x: &CudaView<'_, f32>,
    y: Option<&mut CudaSlice<f32>>,
    norms: &mut CudaSlice<f32>,
    rows: usize,
    dim: usize,
) -> Result<()> {
    let (cfg, warp) = row_grid(dev, rows, dim);
    let name = if warp && dim.is_multiple_of(4) {
        "va_normalize_warp_regs"
    } else if warp {
        "va_normalize_warp"
    } else {
        "va_normalize_block"
    };
    let f = dev.func(MODULE, name)?;
    let (rows_i, dim_i) = (rows as i64, dim as i64);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(x);
    match y {
        Some(y) => b.arg(y),
        None => b.arg(x),
    };
    b.arg(norms).arg(&rows_i).arg(&dim_i);
    // SAFETY: x (and y) hold rows*dim floats, norms rows.
    unsafe { b.launch(cfg) }.map_err(cu("va_normalize launch"))?;
    Ok(())
}

/// Normalised rows and their norms.
pub(crate) fn normalize(dev: &CudaDevice, x: &Input<'_>) -> Result<(Vec<f32>, Vec<f32>)> {
    let _g = dev.lock();
    let (rows, dim) = (x.rows(), x.dim());
    let xd = whole(dev, x)?;
    let xs = f32_rows(xd.rows())?;
    let mut y = dev.alloc::<f32>(rows * dim)?;
    let mut norms = dev.alloc::<f32>(rows)?;
    launch_normalize(dev, &xs.as_view(), Some(&mut y), &mut norms, rows, dim)?;
    let out = (fetch(dev, &y, rows * dim)?, fetch(dev, &norms, rows)?);
    dev.sync()?;
    Ok(out)
}

/// Normalises resident rows in place; returns the norms.
pub(crate) fn normalize_resident(
    dev: &CudaDevice,
    x: &mut CudaSlice<f32>,
    rows: usize,
    dim: usize,
) -> Result<Vec<f32>> {
    let _g = dev.lock();
    let mut norms = dev.alloc::<f32>(rows)?;
    // In place: the kernel reads and writes the same rows (x == y).
    launch_normalize(dev, &x.as_view(), None, &mut norms, rows, dim)?;
    let out = fetch(dev, &norms, rows)?;
    dev.sync()?;
    Ok(out)
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Sum => "sum",
        Kind::Moments => "moments",
        Kind::Min => "min",
        Kind::Max => "max",
    }
}

/// A reduction along `axis`, finished on the device with `code` (see
/// `va_finish`): values (codes 0-4) or indices (codes 5, 6), on the host.
pub(crate) fn reduce(
    dev: &CudaDevice,
    x: &Input<'_>,
    kind: Kind,
    axis: Axis,
    code: u32,
    ddof: usize,
) -> Result<(Vec<f32>, Vec<u64>)> {
    let _g = dev.lock();
    let (out_v, out_i, outs) = reduce_into(dev, x, kind, axis, code, ddof)?;
    let out = if code >= 5 {
        (Vec::new(), fetch(dev, &out_i, outs)?)
    } else {
        (fetch(dev, &out_v, outs)?, Vec::new())
    };
    dev.sync()?;
    Ok(out)
}

/// A reduction's results left on the device: values (codes 0-4: `Ok(Left)`)
/// or indices (codes 5, 6: `Ok(Right)`), one per output.
pub(crate) fn reduce_resident(
    dev: &CudaDevice,
    x: &Input<'_>,
    kind: Kind,
    axis: Axis,
    code: u32,
    ddof: usize,
) -> Result<std::result::Result<CudaSlice<f32>, CudaSlice<u64>>> {
    let _g = dev.lock();
    let (out_v, out_i, _) = reduce_into(dev, x, kind, axis, code, ddof)?;
    Ok(if code >= 5 { Err(out_i) } else { Ok(out_v) })
}

/// Grid of the register kernels of row reductions (`va_reduce_rows_regs*`):
/// 16-byte groups per lane and row (`NPR`, 1, 2, 4 or 8 for rows of at most
/// 128, 256, 512, 1024 elements), `8 / NPR` rows per warp at a time.
fn reduce_regs_grid(dev: &CudaDevice, rows: usize, dim: usize) -> (LaunchConfig, usize) {
    let npr = (dim / 4).div_ceil(32).next_power_of_two().max(1);
    let per_block = 8 * (8 / npr);
    let blocks = rows.div_ceil(per_block).clamp(1, dev.sm_count() * 64);
    (
        LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        },
        npr,
    )
}

/// [`reduce`]'s launches (the caller holds the device lock): the value and
/// index outputs (one of them written, per `code`) and their length.
fn reduce_into(
    dev: &CudaDevice,
    x: &Input<'_>,
    kind: Kind,
    axis: Axis,
    code: u32,
    ddof: usize,
) -> Result<(CudaSlice<f32>, CudaSlice<u64>, usize)> {
    let (rows, dim) = (x.rows(), x.dim());
    let xd = whole(dev, x)?;
    let outs = match axis {
        Axis::All => 1,
        Axis::PerRow => rows,
        Axis::PerColumn => dim,
    };
    let mut out = ReduceOut {
        values: dev.alloc::<f32>(outs)?,
        indices: dev.alloc::<u64>(outs)?,
    };
    let r = Reduction {
        dev,
        x: f32_rows(xd.rows())?,
        rows,
        dim,
        kind: kind_name(kind),
        code: code as i32,
        ddof: ddof as i64,
    };
    match axis {
        Axis::PerRow => r.per_row(&mut out)?,
        Axis::PerColumn => r.per_column(&mut out)?,
        Axis::All => r.all(&mut out)?,
    }
    Ok((out.values, out.indices, outs))
}

/// A reduction of `rows x dim` f32 rows on the device.
struct Reduction<'a> {
    /// The device.
    dev: &'a CudaDevice,
    /// The rows.
    x: &'a CudaSlice<f32>,
    /// Number of rows.
    rows: usize,
    /// Values per row.
    dim: usize,
    /// The kernels' name suffix for the reduction's kind.
    kind: &'static str,
    /// What the kernels write of a finished state (`va_finish`'s op).
    code: i32,
    /// Delta degrees of freedom of a variance.
    ddof: i64,
}

/// A reduction's outputs: values and indices, one of them written.
struct ReduceOut {
    /// Finished values (sum, mean, variance or extremum).
    values: CudaSlice<f32>,
    /// Positions of the extrema.
    indices: CudaSlice<u64>,
}

impl Reduction<'_> {
    /// One state per row, finished by the row kernels themselves.
    fn per_row(&self, out: &mut ReduceOut) -> Result<()> {
        let (dev, rows, dim, kn) = (self.dev, self.rows, self.dim, self.kind);
        let (rows_i, dim_i) = (rows as i64, dim as i64);
        let (mut cfg, warp) = row_grid(dev, rows, dim);
        let name = if warp && dim.is_multiple_of(4) {
            let (c, npr) = reduce_regs_grid(dev, rows, dim);
            cfg = c;
            format!("va_reduce_rows_regs{npr}_{kn}")
        } else if warp {
            format!("va_reduce_rows_warp_{kn}")
        } else {
            format!("va_reduce_rows_block_{kn}")
        };
        let f = dev.func(MODULE, &name)?;
        let mut b = dev.stream.launch_builder(&f);
        b.arg(self.x)
            .arg(&rows_i)
            .arg(&dim_i)
            .arg(&self.code)
            .arg(&self.ddof);
        b.arg(&mut out.values).arg(&mut out.indices);
        // SAFETY: x holds rows*dim floats; outputs rows entries.
        unsafe { b.launch(cfg) }.map_err(cu("va_reduce_rows launch"))?;
        Ok(())
    }

    /// One state per column: partials over chunks of rows, then a second
    /// stage over each column's partials.
    fn per_column(&self, out: &mut ReduceOut) -> Result<()> {
        let (dev, rows, dim, kn) = (self.dev, self.rows, self.dim, self.kind);
        let (rows_i, dim_i) = (rows as i64, dim as i64);
        let col_blocks = dim.div_ceil(32);
        let want = (dev.sm_count() * 8).div_ceil(col_blocks);
        let chunks = want.clamp(1, rows.div_ceil(64).max(1));
        let rpc = rows.div_ceil(chunks);
        let chunks = rows.div_ceil(rpc);
        let mut part = dev.alloc::<Acc>(chunks * dim)?;
        let f = dev.func(MODULE, &format!("va_reduce_cols_part_{kn}"))?;
        let rpc_i = rpc as i64;
        let mut b = dev.stream.launch_builder(&f);
        b.arg(self.x)
            .arg(&rows_i)
            .arg(&dim_i)
            .arg(&rpc_i)
            .arg(&mut part);
        let cfg = LaunchConfig {
            grid_dim: (col_blocks as u32, chunks as u32, 1),
            block_dim: (32, 8, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: x holds rows*dim floats; part chunks*dim states.
        unsafe { b.launch(cfg) }.map_err(cu("va_reduce_cols_part launch"))?;
        // Second stage over `chunks` partials per output.
        let f = dev.func(MODULE, &format!("va_reduce_final_{kn}"))?;
        let (chunks_i, width_i, n_f) = (chunks as i64, dim as i64, rows as f64);
        let mut b = dev.stream.launch_builder(&f);
        b.arg(&part).arg(&chunks_i).arg(&width_i).arg(&n_f);
        b.arg(&self.code)
            .arg(&self.ddof)
            .arg(&mut out.values)
            .arg(&mut out.indices);
        let cfg = LaunchConfig {
            grid_dim: (dim.div_ceil(128) as u32, 1, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: part holds chunks*width states; outputs width entries.
        unsafe { b.launch(cfg) }.map_err(cu("va_reduce_final launch"))?;
        Ok(())
    }

    /// One state over every value: a partial per block, then one block
    /// over the partials.
    fn all(&self, out: &mut ReduceOut) -> Result<()> {
        let (dev, kn) = (self.dev, self.kind);
        let n = self.rows * self.dim;
        let cfg = flat_grid(dev, n);
        let blocks = cfg.grid_dim.0 as usize;
        let mut part = dev.alloc::<Acc>(blocks)?;
        let f = dev.func(MODULE, &format!("va_reduce_all_part_{kn}"))?;
        let n_i = n as i64;
        let mut b = dev.stream.launch_builder(&f);
        b.arg(self.x).arg(&n_i).arg(&mut part);
        // SAFETY: x holds n floats; part one state per block.
        unsafe { b.launch(cfg) }.map_err(cu("va_reduce_all_part launch"))?;
        let f = dev.func(MODULE, &format!("va_reduce_final_one_{kn}"))?;
        let (chunks_i, n_f) = (blocks as i64, n as f64);
        let mut b = dev.stream.launch_builder(&f);
        b.arg(&part)
            .arg(&chunks_i)
            .arg(&n_f)
            .arg(&self.code)
            .arg(&self.ddof);
        b.arg(&mut out.values).arg(&mut out.indices);
        let one = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: part holds `blocks` states; outputs one entry.
        unsafe { b.launch(one) }.map_err(cu("va_reduce_final_one launch"))?;
        Ok(())
    }
}

/// Row softmax (`softmax = true`, `rows * dim` values) or log-sum-exp
/// (`rows` values), on the host.
pub(crate) fn softmax_rows(dev: &CudaDevice, x: &Input<'_>, softmax: bool) -> Result<Vec<f32>> {
    let _g = dev.lock();
    let out = softmax_into(dev, x, softmax)?;
    let len = out.len();
    let v = fetch(dev, &out, len)?;
    dev.sync()?;
    Ok(v)
}

/// Row softmax (`softmax = true`) or log-sum-exp, left on the device.
pub(crate) fn softmax_resident(
    dev: &CudaDevice,
    x: &Input<'_>,
    softmax: bool,
) -> Result<CudaSlice<f32>> {
    let _g = dev.lock();
    softmax_into(dev, x, softmax)
}

/// [`softmax_rows`]' launch (the caller holds the device lock).
fn softmax_into(dev: &CudaDevice, x: &Input<'_>, softmax: bool) -> Result<CudaSlice<f32>> {
    let (rows, dim) = (x.rows(), x.dim());
    let xd = whole(dev, x)?;
    let xs = f32_rows(xd.rows())?;
    let len = if softmax { rows * dim } else { rows };
    let mut out = dev.alloc::<f32>(len)?;
    let (cfg, warp) = row_grid(dev, rows, dim);
    let name = if warp && dim.is_multiple_of(4) {
        "va_softmax_warp_regs"
    } else if warp {
        "va_softmax_warp"
    } else {
        "va_softmax_block"
    };
    let f = dev.func(MODULE, name)?;
    let (rows_i, dim_i, null) = (rows as i64, dim as i64, 0u64);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(xs);
    if softmax {
        b.arg(&mut out).arg(&null);
    } else {
        b.arg(&null).arg(&mut out);
    }
    b.arg(&rows_i).arg(&dim_i);
    // SAFETY: x holds rows*dim floats; the non-null output its length.
    unsafe { b.launch(cfg) }.map_err(cu("va_softmax launch"))?;
    Ok(out)
}

/// `then(y + bias)` in place, `bias` (when given) a row of `dim` values
/// added to each of the `rows` rows; with no bias only the chain runs. The
/// epilogue of the fused GEMM: one pass of `va_binary_f32` (or
/// `va_map_f32`) reading and writing the same buffer, which those kernels
/// allow (each element is read, then written, by one thread). The caller
/// holds the device lock.
pub(crate) fn bias_then_in_place(
    dev: &CudaDevice,
    y: &mut CudaSlice<f32>,
    rows: usize,
    dim: usize,
    bias: Option<&CudaSlice<f32>>,
    then: &[Unary],
) -> Result<()> {
    use cudarc::driver::DevicePtrMut;
    let n = rows * dim;
    let c = chain(then);
    let (py, _gy) = y.device_ptr_mut(&dev.stream);
    match bias {
        Some(bias) => {
            let f = dev.func(MODULE, "va_binary_f32")?;
            let (rows_i, dim_i, brs, bcs) = (rows as i64, dim as i64, 0i64, 1i64);
            let (scalar, code) = (0.0f32, binary_code(Binary::Add));
            let mut lb = dev.stream.launch_builder(&f);
            lb.arg(&py).arg(bias).arg(&py);
            lb.arg(&rows_i).arg(&dim_i).arg(&brs).arg(&bcs);
            lb.arg(&scalar).arg(&code).arg(&c);
            // SAFETY: y holds rows * dim floats (read and written in place),
            // bias dim floats (row stride 0).
            unsafe { lb.launch(flat_grid(dev, n)) }.map_err(cu("va_binary_f32 launch"))?;
        }
        None if !then.is_empty() => {
            let f = dev.func(MODULE, "va_map_f32")?;
            let n_i = n as i64;
            let mut lb = dev.stream.launch_builder(&f);
            lb.arg(&py).arg(&py).arg(&n_i).arg(&c);
            // SAFETY: y holds n floats, mapped in place.
            unsafe { lb.launch(flat_grid(dev, n)) }.map_err(cu("va_map_f32 launch"))?;
        }
        None => {}
    }
    Ok(())
}

//! CUDA host side of the vector utilities (`kernels/vector.cu`): one launch
//! per element-wise operation, a warp (rows up to 1024 wide) or a block per
//! row for row-wise work, and two-stage reductions over columns or the
//! whole array whose second stage combines partials in a fixed order.

use std::sync::Arc;

use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{
    CudaSlice, CudaView, DevicePtr, DevicePtrMut, DeviceRepr, LaunchConfig, PushKernelArg,
};

use crate::core::error::{cu, Error, Result};
use crate::core::vector::{Axis, Binary, Kind, Unary, MAX_CHAIN};
use crate::cuda::distance::whole;
use crate::runtime::backend::{ReducePlan, VectorBackend};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{f32_rows, upload_slice, CudaRows};
use crate::runtime::input::{Broadcast, Input};
use crate::runtime::tensor::{DeviceIds, DeviceMatrix};

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

/// `y = chain(x)` over `n` elements (`x == y` allowed: each element is read,
/// then written, by one thread). The caller holds the device lock.
fn launch_map(
    dev: &CudaDevice,
    x: CUdeviceptr,
    y: CUdeviceptr,
    n: usize,
    steps: &[Unary],
) -> Result<()> {
    let f = dev.func(MODULE, "va_map_f32")?;
    let (n_i, c) = (n as i64, chain(steps));
    let mut b = dev.stream.launch_builder(&f);
    b.arg(&x).arg(&y).arg(&n_i).arg(&c);
    // SAFETY: x and y hold n floats.
    unsafe { b.launch(flat_grid(dev, n)) }.map_err(cu("va_map_f32 launch"))?;
    Ok(())
}

/// One `va_binary_f32` launch: `y = then(op(a, b))` over `[rows x dim]`
/// (`a == y` allowed, as for [`launch_map`]).
struct BinaryLaunch<'a> {
    a: CUdeviceptr,
    y: CUdeviceptr,
    rows: usize,
    dim: usize,
    b: &'a Broadcast<'a>,
    op: Binary,
    then: &'a [Unary],
}

/// Runs a [`BinaryLaunch`] (the caller holds the device lock).
fn launch_binary(dev: &CudaDevice, l: BinaryLaunch<'_>) -> Result<()> {
    let (bd, scalar, brs, bcs) = match l.b {
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
    let f = dev.func(MODULE, "va_binary_f32")?;
    let (rows_i, dim_i) = (l.rows as i64, l.dim as i64);
    let (code, c, null) = (binary_code(l.op), chain(l.then), 0u64);
    let mut lb = dev.stream.launch_builder(&f);
    lb.arg(&l.a);
    match &bd {
        Some(d) => lb.arg(f32_rows(d.rows())?),
        None => lb.arg(&null),
    };
    lb.arg(&l.y).arg(&rows_i).arg(&dim_i).arg(&brs).arg(&bcs);
    lb.arg(&scalar).arg(&code).arg(&c);
    // SAFETY: a and y hold rows*dim floats; b (when present) covers every
    // index the strides reach.
    unsafe { lb.launch(flat_grid(dev, l.rows * l.dim)) }.map_err(cu("va_binary_f32 launch"))?;
    Ok(())
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

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Sum => "sum",
        Kind::Moments => "moments",
        Kind::Min => "min",
        Kind::Max => "max",
    }
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

/// A reduction's launches (the caller holds the device lock): its one
/// output (values or indices, per `plan.finish`) and the output's length.
fn reduce_into(dev: &CudaDevice, x: &Input<'_>, plan: ReducePlan) -> Result<(ReduceOut, usize)> {
    let ReducePlan {
        kind,
        axis,
        finish: code,
        ddof,
    } = plan;
    let (rows, dim) = (x.rows(), x.dim());
    let xd = whole(dev, x)?;
    let outs = match axis {
        Axis::All => 1,
        Axis::PerRow => rows,
        Axis::PerColumn => dim,
    };
    let mut out = if code >= FIRST_INDEX_CODE {
        ReduceOut::Indices(dev.alloc::<u64>(outs)?)
    } else {
        ReduceOut::Values(dev.alloc::<f32>(outs)?)
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
    Ok((out, outs))
}

/// The error of a plan whose finishing code names the other output kind.
fn not_a(what: &str, plan: ReducePlan) -> Error {
    Error::invalid(
        "reduction",
        format!("finishing code {}", plan.finish),
        format!("expected a {what} reduction"),
    )
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

/// The first finishing code that writes indices (5 argmin, 6 argmax);
/// codes below it write values.
const FIRST_INDEX_CODE: u32 = 5;

/// A null device pointer, passed for the output a reduction does not write
/// (the kernels write only the output their finishing code names).
const NO_OUTPUT: CUdeviceptr = 0;

/// A reduction's one output.
enum ReduceOut {
    /// Finished values (sum, mean, variance or extremum).
    Values(CudaSlice<f32>),
    /// Positions of the extrema.
    Indices(CudaSlice<u64>),
}

impl ReduceOut {
    /// Pushes the kernels' last two arguments, `out_v` and `out_i`.
    fn push<'a>(&'a mut self, b: &mut cudarc::driver::LaunchArgs<'a>) {
        match self {
            ReduceOut::Values(v) => b.arg(v).arg(&NO_OUTPUT),
            ReduceOut::Indices(i) => b.arg(&NO_OUTPUT).arg(i),
        };
    }
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
        out.push(&mut b);
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
        b.arg(&self.code).arg(&self.ddof);
        out.push(&mut b);
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
        out.push(&mut b);
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

/// Row softmax into `y` and/or log-sum-exp into `lse` (a null pointer
/// skips that output; `y == x` allowed). The caller holds the device lock.
fn launch_softmax(
    dev: &CudaDevice,
    x: CUdeviceptr,
    (y, lse): (CUdeviceptr, CUdeviceptr),
    rows: usize,
    dim: usize,
) -> Result<()> {
    let (cfg, warp) = row_grid(dev, rows, dim);
    let name = if warp && dim.is_multiple_of(4) {
        "va_softmax_warp_regs"
    } else if warp {
        "va_softmax_warp"
    } else {
        "va_softmax_block"
    };
    let f = dev.func(MODULE, name)?;
    let (rows_i, dim_i) = (rows as i64, dim as i64);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(&x).arg(&y).arg(&lse).arg(&rows_i).arg(&dim_i);
    // SAFETY: x holds rows*dim floats; a non-null y as many, lse rows.
    unsafe { b.launch(cfg) }.map_err(cu("va_softmax launch"))?;
    Ok(())
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

/// The `f32` rows of a matrix this device holds, for writing in place.
fn rows_mut(x: &mut DeviceMatrix) -> Result<&mut CudaSlice<f32>> {
    let device = x.device();
    x.cuda_f32_mut().ok_or_else(|| {
        Error::invalid(
            "input",
            format!("rows on {device}"),
            "expected f32 rows on the context's CUDA device",
        )
    })
}

/// `f32` rows this device computed, as a matrix.
fn result(dev: &Arc<CudaDevice>, y: CudaSlice<f32>, rows: usize, dim: usize) -> DeviceMatrix {
    DeviceMatrix::from_cuda(dev, CudaRows::F32(y), rows, dim, true)
}

impl VectorBackend for Arc<CudaDevice> {
    fn gather_rows(&self, x: &Input<'_>, rows: &[u64]) -> Result<DeviceMatrix> {
        let _g = self.lock();
        let (n, dim) = (rows.len(), x.dim());
        let xd = whole(self, x)?;
        let idx = upload_slice(self, rows)?;
        let mut y = self.alloc::<f32>((n * dim).max(1))?;
        let f = self.func(MODULE, "va_gather_rows")?;
        let (n_i, dim_i) = (n as i64, dim as i64);
        let mut b = self.stream.launch_builder(&f);
        b.arg(f32_rows(xd.rows())?)
            .arg(&idx)
            .arg(&n_i)
            .arg(&dim_i)
            .arg(&mut y);
        let blocks = (n * dim).div_ceil(256).clamp(1, self.sm_count() * 32) as u32;
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: every index is below x's rows (the caller's contract); y
        // holds n * dim floats.
        unsafe { b.launch(cfg) }.map_err(cu("va_gather_rows launch"))?;
        Ok(result(self, y, n, dim))
    }

    fn map(&self, x: &Input<'_>, chain: &[Unary]) -> Result<DeviceMatrix> {
        let _g = self.lock();
        let n = x.rows() * x.dim();
        let xd = whole(self, x)?;
        let mut y = self.alloc::<f32>(n)?;
        let (px, _gx) = f32_rows(xd.rows())?.device_ptr(&self.stream);
        let (py, _gy) = y.device_ptr_mut(&self.stream);
        launch_map(self, px, py, n, chain)?;
        drop((_gx, _gy));
        Ok(result(self, y, x.rows(), x.dim()))
    }

    fn map_in_place(&self, x: &mut DeviceMatrix, chain: &[Unary]) -> Result<()> {
        let n = x.rows() * x.dim();
        let _g = self.lock();
        let (py, _gy) = rows_mut(x)?.device_ptr_mut(&self.stream);
        launch_map(self, py, py, n, chain)
    }

    fn binary(
        &self,
        a: &Input<'_>,
        b: &Broadcast<'_>,
        op: Binary,
        then: &[Unary],
    ) -> Result<DeviceMatrix> {
        let _g = self.lock();
        let (rows, dim) = (a.rows(), a.dim());
        let ad = whole(self, a)?;
        let mut y = self.alloc::<f32>(rows * dim)?;
        let (pa, _ga) = f32_rows(ad.rows())?.device_ptr(&self.stream);
        let (py, _gy) = y.device_ptr_mut(&self.stream);
        let (a, y_ptr) = (pa, py);
        launch_binary(
            self,
            BinaryLaunch {
                a,
                y: y_ptr,
                rows,
                dim,
                b,
                op,
                then,
            },
        )?;
        drop((_ga, _gy));
        Ok(result(self, y, rows, dim))
    }

    fn binary_in_place(
        &self,
        a: &mut DeviceMatrix,
        b: &Broadcast<'_>,
        op: Binary,
        then: &[Unary],
    ) -> Result<()> {
        let (rows, dim) = (a.rows(), a.dim());
        let _g = self.lock();
        let (py, _gy) = rows_mut(a)?.device_ptr_mut(&self.stream);
        launch_binary(
            self,
            BinaryLaunch {
                a: py,
                y: py,
                rows,
                dim,
                b,
                op,
                then,
            },
        )
    }

    fn normalize(&self, x: &Input<'_>) -> Result<(DeviceMatrix, DeviceMatrix)> {
        let _g = self.lock();
        let (rows, dim) = (x.rows(), x.dim());
        let xd = whole(self, x)?;
        let xs = f32_rows(xd.rows())?;
        let mut y = self.alloc::<f32>(rows * dim)?;
        let mut norms = self.alloc::<f32>(rows)?;
        launch_normalize(self, &xs.as_view(), Some(&mut y), &mut norms, rows, dim)?;
        Ok((result(self, y, rows, dim), result(self, norms, rows, 1)))
    }

    fn normalize_in_place(&self, x: &mut DeviceMatrix) -> Result<DeviceMatrix> {
        let (rows, dim) = (x.rows(), x.dim());
        let _g = self.lock();
        let mut norms = self.alloc::<f32>(rows)?;
        // In place: the kernel reads and writes the same rows.
        let data = rows_mut(x)?;
        launch_normalize(self, &data.as_view(), None, &mut norms, rows, dim)?;
        Ok(result(self, norms, rows, 1))
    }

    fn reduce(&self, x: &Input<'_>, plan: ReducePlan) -> Result<DeviceMatrix> {
        let _g = self.lock();
        let (ReduceOut::Values(values), _) = reduce_into(self, x, plan)? else {
            return Err(not_a("value", plan));
        };
        let (rows, dim) = match plan.axis {
            Axis::All => (1, 1),
            Axis::PerRow => (x.rows(), 1),
            Axis::PerColumn => (1, x.dim()),
        };
        Ok(result(self, values, rows, dim))
    }

    fn arg_reduce(&self, x: &Input<'_>, plan: ReducePlan) -> Result<DeviceIds> {
        let _g = self.lock();
        let (ReduceOut::Indices(ids), len) = reduce_into(self, x, plan)? else {
            return Err(not_a("index", plan));
        };
        Ok(DeviceIds::from_cuda(self, ids, len))
    }

    fn softmax(&self, x: &Input<'_>, softmax: bool) -> Result<DeviceMatrix> {
        let _g = self.lock();
        let (rows, dim) = (x.rows(), x.dim());
        let xd = whole(self, x)?;
        let out_dim = if softmax { dim } else { 1 };
        let mut out = self.alloc::<f32>(rows * out_dim)?;
        let (px, _gx) = f32_rows(xd.rows())?.device_ptr(&self.stream);
        let (po, _go) = out.device_ptr_mut(&self.stream);
        let outputs = if softmax { (po, 0) } else { (0, po) };
        launch_softmax(self, px, outputs, rows, dim)?;
        drop((_gx, _go));
        Ok(result(self, out, rows, out_dim))
    }

    fn softmax_in_place(&self, x: &mut DeviceMatrix) -> Result<()> {
        let (rows, dim) = (x.rows(), x.dim());
        let _g = self.lock();
        let (py, _gy) = rows_mut(x)?.device_ptr_mut(&self.stream);
        launch_softmax(self, py, (py, 0), rows, dim)
    }
}

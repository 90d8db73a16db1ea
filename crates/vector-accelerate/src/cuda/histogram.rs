//! CUDA host side of the histograms (`kernels/histogram.cu`): per-block
//! shared-memory histograms flushed with integer atomics (global atomics
//! when the bins do not fit), a finite-value statistics pass for ranges
//! taken from the data, and the two-stage kernel density sum.

use cudarc::driver::sys::CUdevice_attribute;
use cudarc::driver::{CudaView, DeviceRepr, LaunchConfig, PushKernelArg};

use std::sync::Arc;

use crate::core::error::{cu, Result};
use crate::core::histogram::{AxisPlan, Counts, Counts2, Mode, Stats};
use crate::cuda::distance::whole;
use crate::runtime::backend::HistogramBackend;
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{f32_rows, upload_slice, zeros};
use crate::runtime::input::Input;

const MODULE: &str = "histogram";

/// Threads per block of every kernel of the module (`VA_HIST_THREADS`).
const THREADS: usize = 256;

/// Shared memory a histogram block may use without opting in.
const SMEM_MAX: usize = 48 << 10;

/// Most elements per block in one launch: keeps every u32 counter of a
/// block (shared bins, per-thread outlier counts) below 2^31.
const PER_BLOCK_MAX: usize = 1 << 30;

/// Kernel argument `VaAxis`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Axis {
    bins: i32,
    mode: i32,
    off: f32,
    scale: f32,
    lo: f32,
    hi: f32,
}

// SAFETY: plain old data with the C layout of `VaAxis`.
unsafe impl DeviceRepr for Axis {}

/// Kernel output `VaStat` (per-block statistics).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Stat {
    sum: f64,
    count: u64,
    min: f32,
    max: f32,
}

// SAFETY: plain old data with the C layout of `VaStat`.
unsafe impl DeviceRepr for Stat {}

fn axis(p: &AxisPlan) -> Axis {
    Axis {
        bins: p.bins() as i32,
        mode: p.mode as i32,
        off: p.off,
        scale: p.scale,
        lo: p.t[0],
        hi: p.hi,
    }
}

/// Shared memory per multiprocessor (a conservative 96 KiB if unknown).
fn smem_per_sm(dev: &CudaDevice) -> usize {
    dev.context()
        .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR)
        .map(|v| v.max(0) as usize)
        .unwrap_or(96 << 10)
}

fn pad16(b: usize) -> usize {
    b.div_ceil(16) * 16
}

/// Copies of the counters per block and the dynamic shared memory, for
/// `cells` counters after `tables` bytes of threshold tables: the most
/// copies (a power of two up to 32) that still let 8 blocks of 256 threads
/// share a multiprocessor; one copy up to 48 KiB if even that is too much;
/// `(0, 0)` (global atomics) beyond.
fn shared_plan(dev: &CudaDevice, tables: usize, cells: usize) -> (usize, usize) {
    let full_occupancy = (smem_per_sm(dev) / 8).saturating_sub(1024).min(SMEM_MAX);
    let need = |c: usize| tables + cells * c * 4;
    let mut copies = 32;
    while copies > 1 && need(copies) > full_occupancy {
        copies /= 2;
    }
    if need(copies) <= SMEM_MAX {
        (copies, need(copies))
    } else {
        (0, 0)
    }
}

/// Blocks of a grid-stride launch over `n` elements: as many as the
/// multiprocessors hold at once with `smem` bytes each (at most 8 of 256
/// threads), no more than the 4-element groups need.
fn blocks_for(dev: &CudaDevice, n: usize, smem: usize) -> usize {
    let per_sm = if smem == 0 {
        8
    } else {
        (smem_per_sm(dev) / (smem + 1024)).clamp(1, 8)
    };
    (dev.sm_count() * per_sm)
        .min(n.div_ceil(THREADS * 4))
        .max(1)
}

/// The launches of a histogram kernel over `n` elements: `(start, end,
/// blocks)` with at most [`PER_BLOCK_MAX`] elements per block (starts are
/// multiples of 4 elements, so 16-byte alignment is kept).
fn launches(blocks: usize, n: usize) -> Vec<(usize, usize)> {
    let step = blocks * PER_BLOCK_MAX;
    (0..n.div_ceil(step))
        .map(|k| (k * step, ((k + 1) * step).min(n)))
        .collect()
}

/// Statistics of the finite (positive when `positive`) values.
pub(crate) fn stats(dev: &CudaDevice, x: &Input<'_>, positive: bool) -> Result<Stats> {
    let _g = dev.lock();
    let n = x.rows() * x.dim();
    let xd = whole(dev, x)?;
    let xs = f32_rows(xd.rows())?;
    let blocks = blocks_for(dev, n, 0);
    let mut part = dev.alloc::<Stat>(blocks)?;
    let f = dev.func(MODULE, "va_hist_stats")?;
    let (n_i, pos_i) = (n as i64, positive as i32);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(xs).arg(&n_i).arg(&pos_i).arg(&mut part);
    let cfg = LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (THREADS as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: x holds n floats; part one entry per block.
    unsafe { b.launch(cfg) }.map_err(cu("va_hist_stats launch"))?;
    let parts = dev.download(&part, blocks)?;
    dev.sync()?;
    Ok(parts.iter().fold(Stats::EMPTY, |a, p| {
        a.merge(Stats {
            count: p.count,
            min: p.min,
            max: p.max,
            sum: p.sum,
        })
    }))
}

/// `sum (v - mean)^2` over the finite values (block sums added in order).
pub(crate) fn sq_dev(dev: &CudaDevice, x: &Input<'_>, mean: f64) -> Result<f64> {
    let _g = dev.lock();
    let n = x.rows() * x.dim();
    let xd = whole(dev, x)?;
    let xs = f32_rows(xd.rows())?;
    let blocks = blocks_for(dev, n, 0);
    let mut part = dev.alloc::<f64>(blocks)?;
    let f = dev.func(MODULE, "va_hist_sq_dev")?;
    let n_i = n as i64;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(xs).arg(&n_i).arg(&mean).arg(&mut part);
    let cfg = LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (THREADS as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: x holds n floats; part one entry per block.
    unsafe { b.launch(cfg) }.map_err(cu("va_hist_sq_dev launch"))?;
    let parts = dev.download(&part, blocks)?;
    dev.sync()?;
    Ok(parts.iter().sum())
}

/// A 1-D histogram with the bins of `p`.
pub(crate) fn count_1d(
    dev: &CudaDevice,
    x: &Input<'_>,
    p: &AxisPlan,
    clip: bool,
) -> Result<Counts> {
    let _g = dev.lock();
    let n = x.rows() * x.dim();
    let bins = p.bins();
    let xd = whole(dev, x)?;
    let xs = f32_rows(xd.rows())?;
    let t = upload_slice(dev, &p.t)?;
    let mut counts = zeros::<u64>(dev, bins)?;
    let mut extra = zeros::<u64>(dev, 3)?;
    let (copies, smem) = shared_plan(dev, pad16((bins + 1) * 4), bins);
    let name = match p.mode {
        Mode::Uniform => "va_hist_1d_uniform",
        Mode::Log => "va_hist_1d_log",
        Mode::Search => "va_hist_1d_search",
    };
    let f = dev.func(MODULE, name)?;
    let (a, clip_i, copies_i) = (axis(p), clip as i32, copies as i32);
    let blocks = blocks_for(dev, n, smem);
    for (s, e) in launches(blocks, n) {
        let view: CudaView<'_, f32> = xs.slice(s..e);
        let n_i = (e - s) as i64;
        let mut b = dev.stream.launch_builder(&f);
        b.arg(&view)
            .arg(&n_i)
            .arg(&t)
            .arg(&a)
            .arg(&clip_i)
            .arg(&copies_i);
        b.arg(&mut counts).arg(&mut extra);
        let cfg = LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (THREADS as u32, 1, 1),
            shared_mem_bytes: smem as u32,
        };
        // SAFETY: view holds n_i floats, t bins + 1, counts bins, extra 3;
        // smem covers the table and copies * bins counters.
        unsafe { b.launch(cfg) }.map_err(cu("va_hist_1d launch"))?;
    }
    let c = dev.download(&counts, bins)?;
    let ex = dev.download(&extra, 3)?;
    dev.sync()?;
    Ok(Counts {
        counts: c,
        below: ex[0],
        above: ex[1],
        non_finite: ex[2],
    })
}

/// A 2-D histogram of the pairs `(x_i, y_i)`, cells row-major.
pub(crate) fn count_2d(
    dev: &CudaDevice,
    x: &Input<'_>,
    y: &Input<'_>,
    px: &AxisPlan,
    py: &AxisPlan,
    clip: bool,
) -> Result<Counts2> {
    let _g = dev.lock();
    let n = x.rows() * x.dim();
    let cells = px.bins() * py.bins();
    let xd = whole(dev, x)?;
    let yd = whole(dev, y)?;
    let (xs, ys) = (f32_rows(xd.rows())?, f32_rows(yd.rows())?);
    let tx = upload_slice(dev, &px.t)?;
    let ty = upload_slice(dev, &py.t)?;
    let mut counts = zeros::<u64>(dev, cells)?;
    let mut extra = zeros::<u64>(dev, 2)?;
    let tables = pad16((px.bins() + 1) * 4) + pad16((py.bins() + 1) * 4);
    let (copies, smem) = shared_plan(dev, tables, cells);
    let f = dev.func(MODULE, "va_hist_2d")?;
    let (ax, ay, clip_i, copies_i) = (axis(px), axis(py), clip as i32, copies as i32);
    let blocks = blocks_for(dev, n, smem);
    for (s, e) in launches(blocks, n) {
        let (xv, yv) = (xs.slice(s..e), ys.slice(s..e));
        let n_i = (e - s) as i64;
        let mut b = dev.stream.launch_builder(&f);
        b.arg(&xv).arg(&yv).arg(&n_i).arg(&tx).arg(&ty);
        b.arg(&ax).arg(&ay).arg(&clip_i).arg(&copies_i);
        b.arg(&mut counts).arg(&mut extra);
        let cfg = LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (THREADS as u32, 1, 1),
            shared_mem_bytes: smem as u32,
        };
        // SAFETY: x and y views hold n_i floats, the tables bins + 1 each,
        // counts the cells, extra 2; smem covers both tables and the copies.
        unsafe { b.launch(cfg) }.map_err(cu("va_hist_2d launch"))?;
    }
    let c = dev.download(&counts, cells)?;
    let ex = dev.download(&extra, 2)?;
    dev.sync()?;
    Ok(Counts2 {
        counts: c,
        outside: ex[0],
        non_finite: ex[1],
    })
}

/// Kernel sums `sum_i exp(-0.5 ((g - x_i) / h)^2)` for each grid value, over
/// chunks of `chunk` elements combined in order (see `cpu::histogram::kde_sums`).
pub(crate) fn kde_sums(
    dev: &CudaDevice,
    x: &Input<'_>,
    grid: &[f64],
    h: f64,
    chunk: usize,
) -> Result<Vec<f64>> {
    let _g = dev.lock();
    let n = x.rows() * x.dim();
    let g = grid.len();
    let chunks = n.div_ceil(chunk);
    let xd = whole(dev, x)?;
    let xs = f32_rows(xd.rows())?;
    let gd = upload_slice(dev, grid)?;
    let mut part = dev.alloc::<f64>(chunks * g)?;
    let mut out = dev.alloc::<f64>(g)?;
    let f = dev.func(MODULE, "va_kde_part")?;
    let (n_i, chunk_i, g_i) = (n as i64, chunk as i64, g as i64);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(xs).arg(&n_i).arg(&chunk_i).arg(&gd).arg(&g_i).arg(&h);
    b.arg(&mut part);
    let cfg = LaunchConfig {
        grid_dim: (g.div_ceil(THREADS) as u32, chunks as u32, 1),
        block_dim: (THREADS as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: x holds n floats, grid g values, part chunks * g entries
    // (chunks <= 65,535 by ops::histogram::kde::kde_chunk).
    unsafe { b.launch(cfg) }.map_err(cu("va_kde_part launch"))?;
    let f = dev.func(MODULE, "va_kde_final")?;
    let chunks_i = chunks as i64;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(&part).arg(&chunks_i).arg(&g_i).arg(&mut out);
    let cfg = LaunchConfig {
        grid_dim: (g.div_ceil(THREADS) as u32, 1, 1),
        block_dim: (THREADS as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: part holds chunks * g entries, out g.
    unsafe { b.launch(cfg) }.map_err(cu("va_kde_final launch"))?;
    let v = dev.download(&out, g)?;
    dev.sync()?;
    Ok(v)
}

impl HistogramBackend for Arc<CudaDevice> {
    fn finite_stats(&self, x: &Input<'_>, positive: bool, _with_sum: bool) -> Result<Stats> {
        stats(self, x, positive)
    }

    fn sq_dev(&self, x: &Input<'_>, mean: f64) -> Result<f64> {
        sq_dev(self, x, mean)
    }

    fn count_1d(&self, x: &Input<'_>, plan: &AxisPlan, clip: bool) -> Result<Counts> {
        count_1d(self, x, plan, clip)
    }

    fn count_2d(
        &self,
        (x, y): (&Input<'_>, &Input<'_>),
        (px, py): (&AxisPlan, &AxisPlan),
        clip: bool,
    ) -> Result<Counts2> {
        count_2d(self, x, y, px, py, clip)
    }

    fn kde_sums(&self, x: &Input<'_>, grid: &[f64], h: f64, chunk: usize) -> Result<Vec<f64>> {
        kde_sums(self, x, grid, h, chunk)
    }
}

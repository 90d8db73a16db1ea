//! CUDA host side of the statistics (`kernels/stats.cu`): moment partials
//! merged by a second launch in a fixed order, and quantiles by sorting
//! short segments in shared memory or by radix selection (the host plans
//! the passes with `ops::stats::quantile::radix_select`, downloading only
//! the digit histograms).

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{CudaFunction, CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg};

use std::sync::Arc;

use crate::core::error::{cu, Error, Result};
use crate::core::stats::{
    inconsistent, radix_select_all, Counter, Moments, QuantileResult, DIGITS, SMALL_SEGMENT,
};
use crate::core::vector::Axis;
use crate::cuda::distance::whole;
use crate::runtime::backend::StatsBackend;
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::{f32_rows, upload_slice, zeros};
use crate::runtime::input::Input;

const MODULE: &str = "stats";

/// Dynamic shared memory of one radix refinement block (slot histograms).
const REFINE_SMEM: usize = 96 * 1024;

/// Kernel struct `VaMom`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Mom {
    n: f64,
    mean: f64,
    m2: f64,
    m3: f64,
    m4: f64,
    mn: f32,
    mx: f32,
    nf: u64,
}

// SAFETY: plain old data with the C layout of `VaMom`.
unsafe impl DeviceRepr for Mom {}

impl Mom {
    fn moments(&self) -> Moments {
        let mut m = Moments::new();
        m.non_finite = self.nf;
        if self.n > 0.0 {
            m.count = self.n as u64;
            m.mean = self.mean;
            m.m2 = self.m2;
            m.m3 = self.m3;
            m.m4 = self.m4;
            m.min = self.mn;
            m.max = self.mx;
        }
        m
    }
}

/// Moments along `axis`.
pub(crate) fn describe(dev: &CudaDevice, x: &Input<'_>, axis: Axis) -> Result<Vec<Moments>> {
    let _g = dev.lock();
    let (rows, dim) = (x.rows(), x.dim());
    let xd = whole(dev, x)?;
    let xs = f32_rows(xd.rows())?;
    let (rows_i, dim_i) = (rows as i64, dim as i64);
    // One segment (a single column or row) takes the whole-array kernels.
    let flat = axis == Axis::All
        || (axis == Axis::PerColumn && dim == 1)
        || (axis == Axis::PerRow && rows == 1);
    let (out, n) = match axis {
        _ if flat => {
            let n = rows * dim;
            let blocks = n.div_ceil(256 * 16).clamp(1, dev.sm_count() * 8);
            let mut part = dev.alloc::<Mom>(blocks)?;
            let f = dev.func(MODULE, "va_mom_flat_part")?;
            let n_i = n as i64;
            let mut b = dev.stream.launch_builder(&f);
            b.arg(xs).arg(&n_i).arg(&mut part);
            let cfg = LaunchConfig {
                grid_dim: (blocks as u32, 1, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: x holds n floats; part one state per block.
            unsafe { b.launch(cfg) }.map_err(cu("va_mom_flat_part launch"))?;
            let mut out = dev.alloc::<Mom>(1)?;
            let f = dev.func(MODULE, "va_mom_final_one")?;
            let chunks = blocks as i64;
            let mut b = dev.stream.launch_builder(&f);
            b.arg(&part).arg(&chunks).arg(&mut out);
            let cfg = LaunchConfig {
                grid_dim: (1, 1, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: part holds `blocks` states; out one.
            unsafe { b.launch(cfg) }.map_err(cu("va_mom_final_one launch"))?;
            (out, 1)
        }
        Axis::PerRow | Axis::All => {
            let mut out = dev.alloc::<Mom>(rows)?;
            let f = dev.func(MODULE, "va_mom_rows")?;
            let blocks = rows.div_ceil(8).clamp(1, dev.sm_count() * 64);
            let mut b = dev.stream.launch_builder(&f);
            b.arg(xs).arg(&rows_i).arg(&dim_i).arg(&mut out);
            let cfg = LaunchConfig {
                grid_dim: (blocks as u32, 1, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: x holds rows*dim floats; out one state per row.
            unsafe { b.launch(cfg) }.map_err(cu("va_mom_rows launch"))?;
            (out, rows)
        }
        Axis::PerColumn => {
            let col_blocks = dim.div_ceil(32);
            let want = (dev.sm_count() * 8).div_ceil(col_blocks);
            let chunks = want.clamp(1, rows.div_ceil(64).max(1));
            let rpc = rows.div_ceil(chunks);
            let chunks = rows.div_ceil(rpc);
            let mut part = dev.alloc::<Mom>(chunks * dim)?;
            let f = dev.func(MODULE, "va_mom_cols_part")?;
            let rpc_i = rpc as i64;
            let mut b = dev.stream.launch_builder(&f);
            b.arg(xs)
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
            unsafe { b.launch(cfg) }.map_err(cu("va_mom_cols_part launch"))?;
            let mut out = dev.alloc::<Mom>(dim)?;
            let f = dev.func(MODULE, "va_mom_cols_final")?;
            let chunks_i = chunks as i64;
            let mut b = dev.stream.launch_builder(&f);
            b.arg(&part).arg(&chunks_i).arg(&dim_i).arg(&mut out);
            let cfg = LaunchConfig {
                grid_dim: (dim.div_ceil(128) as u32, 1, 1),
                block_dim: (128, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: part holds chunks*dim states; out dim.
            unsafe { b.launch(cfg) }.map_err(cu("va_mom_cols_final launch"))?;
            (out, dim)
        }
    };
    dev.download_with(&out, n, Mom::moments)
}

/// Radix counting on the device over contiguous segments of `len` values.
struct CudaCounter<'a> {
    dev: &'a CudaDevice,
    data: CudaView<'a, f32>,
    len: usize,
    /// Pass-0 histograms of the current batch (2048 per segment).
    first: Option<CudaSlice<u64>>,
}

/// For each target `(slot, rank)`: the digit of histogram `slot` (of
/// `bins` counts in `hist`) holding the rank and the rank within it,
/// found on the device (only the answers are downloaded).
fn pick_on_device(
    dev: &CudaDevice,
    hist: &CudaSlice<u64>,
    bins: usize,
    targets: &[(usize, u64)],
) -> Result<Vec<(u32, u64)>> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let slot: Vec<u32> = targets.iter().map(|t| t.0 as u32).collect();
    let rank: Vec<u64> = targets.iter().map(|t| t.1).collect();
    let (slot_d, rank_d) = (upload_slice(dev, &slot)?, upload_slice(dev, &rank)?);
    let n = targets.len();
    let mut digit = dev.alloc::<u32>(n)?;
    let mut rest = dev.alloc::<u64>(n)?;
    let f = dev.func(MODULE, "va_radix_pick")?;
    let (bins_i, n_i) = (bins as i32, n as i64);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(hist).arg(&bins_i).arg(&slot_d).arg(&rank_d).arg(&n_i);
    b.arg(&mut digit).arg(&mut rest);
    let cfg = LaunchConfig {
        grid_dim: ((n * 32).div_ceil(256) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: every slot indexes a histogram of `bins` counts in hist;
    // digit and rest hold one entry per target.
    unsafe { b.launch(cfg) }.map_err(cu("va_radix_pick launch"))?;
    let (d, r) = (dev.download(&digit, n)?, dev.download(&rest, n)?);
    d.into_iter()
        .zip(r)
        .zip(targets)
        .map(|((d, r), t)| {
            if d == u32::MAX {
                Err(inconsistent(t.1))
            } else {
                Ok((d, r))
            }
        })
        .collect()
}

impl CudaCounter<'_> {
    /// Blocks per segment and values per block for `threads`-thread blocks
    /// keeping every SM busy.
    fn split(&self, segs: usize, threads: usize, per_sm: usize) -> (usize, usize) {
        let want = (self.dev.sm_count() * per_sm).div_ceil(segs).max(1);
        let blocks = want.min(self.len.div_ceil(threads * 16)).max(1);
        // Multiples of 4 keep every block's start 16-byte aligned.
        let per = self.len.div_ceil(blocks).next_multiple_of(4);
        (self.len.div_ceil(per), per)
    }
}

impl Counter for CudaCounter<'_> {
    fn first(&mut self, segs: std::ops::Range<usize>) -> Result<Vec<(u64, u64)>> {
        let dev = self.dev;
        let ns = segs.len();
        let mut hist = zeros::<u64>(dev, ns * 2048)?;
        let mut nf = zeros::<u64>(dev, ns)?;
        let (bx, per) = self.split(ns, 256, 8);
        let base = self.data.slice(segs.start * self.len..segs.end * self.len);
        let f = dev.func(MODULE, "va_radix_first")?;
        let (len_i, per_i) = (self.len as i64, per as i64);
        let mut b = dev.stream.launch_builder(&f);
        b.arg(&base)
            .arg(&len_i)
            .arg(&per_i)
            .arg(&mut hist)
            .arg(&mut nf);
        let cfg = LaunchConfig {
            grid_dim: (bx as u32, ns as u32, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: base holds ns segments of len floats; hist ns*2048 counts, nf ns.
        unsafe { b.launch(cfg) }.map_err(cu("va_radix_first launch"))?;
        let nf = dev.download(&nf, ns)?;
        self.first = Some(hist);
        Ok(nf.into_iter().map(|b| (self.len as u64 - b, b)).collect())
    }

    fn pick_first(&mut self, targets: &[(usize, u64)]) -> Result<Vec<(u32, u64)>> {
        match &self.first {
            Some(h) => pick_on_device(self.dev, h, 2048, targets),
            None => Err(Error::invalid(
                "quantile selection",
                "pass 1",
                "no first pass",
            )),
        }
    }

    fn refine(
        &mut self,
        pass: usize,
        slots: &[(usize, u32)],
        targets: &[(usize, u64)],
    ) -> Result<Vec<(u32, u64)>> {
        let dev = self.dev;
        let (shift, width) = DIGITS[pass];
        let bins = 1usize << width;
        let groups = SlotGroups::new(slots, REFINE_SMEM / (bins * 4));
        let mut out = vec![(0u32, 0u64); targets.len()];
        let f = dev.func(MODULE, "va_radix_refine")?;
        f.set_attribute(
            CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            REFINE_SMEM as i32,
        )
        .map_err(cu("cuFuncSetAttribute"))?;
        // Round-local index of each slot.
        let mut local = vec![u32::MAX; slots.len()];
        for r in 0..groups.rounds() {
            let round = groups.round(r, shift + width, &mut local);
            let hist = self.count_round(&f, &round, (shift, width))?;
            let (asks, whose) = groups.asks(r, targets, &local);
            for (ti, res) in whose
                .into_iter()
                .zip(pick_on_device(dev, &hist, bins, &asks)?)
            {
                out[ti] = res;
            }
        }
        Ok(out)
    }
}

impl CudaCounter<'_> {
    /// The histograms (`2^width` bins per slot) of the digit at `shift` of
    /// the values of `round`'s segments whose higher digits match a slot's
    /// prefix.
    fn count_round(
        &self,
        f: &CudaFunction,
        round: &Round,
        (shift, width): (u32, u32),
    ) -> Result<CudaSlice<u64>> {
        let dev = self.dev;
        let ns = round.segs;
        let pre_d = upload_slice(dev, &round.prefixes)?;
        let first_d = upload_slice(dev, &round.starts)?;
        let mut hist = zeros::<u64>(dev, round.prefixes.len() * (1usize << width))?;
        let (bx, per) = self.split(ns, 512, 2);
        let base = self
            .data
            .slice(round.first_seg * self.len..(round.first_seg + ns) * self.len);
        let (len_i, per_i, shift_i, width_i) =
            (self.len as i64, per as i64, shift as i32, width as i32);
        let mut b = dev.stream.launch_builder(f);
        b.arg(&base)
            .arg(&len_i)
            .arg(&per_i)
            .arg(&pre_d)
            .arg(&first_d);
        b.arg(&shift_i).arg(&width_i).arg(&mut hist);
        let cfg = LaunchConfig {
            grid_dim: (bx as u32, ns as u32, 1),
            block_dim: (512, 1, 1),
            shared_mem_bytes: REFINE_SMEM as u32,
        };
        // SAFETY: base holds ns segments of len floats; every segment
        // has at most max_slots slots (their counts fit REFINE_SMEM);
        // hist holds pre.len() * bins counts.
        unsafe { b.launch(cfg) }.map_err(cu("va_radix_refine launch"))?;
        Ok(hist)
    }
}

/// A refinement pass's slots grouped by segment.
struct SlotGroups<'s> {
    /// `(segment, prefix)` per slot, sorted by segment.
    slots: &'s [(usize, u32)],
    /// `(segment, first slot, end slot)` of each segment with slots.
    groups: Vec<(usize, usize, usize)>,
    /// Slots counted per segment and round (their histograms fill the
    /// shared memory).
    max_slots: usize,
}

/// The slots one round counts: those of `segs` segments from `first_seg`.
struct Round {
    /// The first segment counted.
    first_seg: usize,
    /// Segments counted.
    segs: usize,
    /// Index in `prefixes` of each segment's first slot, then the total.
    starts: Vec<i32>,
    /// The slots' values above the counted digit.
    prefixes: Vec<u32>,
}

impl<'s> SlotGroups<'s> {
    fn new(slots: &'s [(usize, u32)], max_slots: usize) -> Self {
        let mut groups: Vec<(usize, usize, usize)> = Vec::new();
        let mut i = 0;
        while i < slots.len() {
            let mut j = i;
            while j < slots.len() && slots[j].0 == slots[i].0 {
                j += 1;
            }
            groups.push((slots[i].0, i, j));
            i = j;
        }
        Self {
            slots,
            groups,
            max_slots,
        }
    }

    /// Rounds needed for the segment with the most slots.
    fn rounds(&self) -> usize {
        self.groups
            .iter()
            .map(|g| (g.2 - g.1).div_ceil(self.max_slots))
            .max()
            .unwrap_or(0)
    }

    /// Round `r`: the segments with slots left and up to `max_slots` of
    /// their slots, as prefixes (`slot >> prefix_shift`); `local` gets each
    /// counted slot's index in the round.
    fn round(&self, r: usize, prefix_shift: u32, local: &mut [u32]) -> Round {
        let max_slots = self.max_slots;
        // Segments s_lo..=s_hi take part; each with up to max_slots slots.
        let live: Vec<&(usize, usize, usize)> = self
            .groups
            .iter()
            .filter(|g| g.1 + r * max_slots < g.2)
            .collect();
        let (s_lo, s_hi) = (live[0].0, live[live.len() - 1].0);
        let ns = s_hi - s_lo + 1;
        let mut first = vec![0i32; ns + 1];
        let mut pre = Vec::new();
        let mut k = 0;
        for (s, f) in first.iter_mut().enumerate().take(ns) {
            *f = pre.len() as i32;
            if k < live.len() && live[k].0 == s_lo + s {
                let g = live[k];
                let a = g.1 + r * max_slots;
                for (idx, slot) in self
                    .slots
                    .iter()
                    .enumerate()
                    .take(g.2.min(a + max_slots))
                    .skip(a)
                {
                    local[idx] = pre.len() as u32;
                    pre.push(slot.1 >> prefix_shift);
                }
                k += 1;
            }
        }
        first[ns] = pre.len() as i32;
        Round {
            first_seg: s_lo,
            segs: ns,
            starts: first,
            prefixes: pre,
        }
    }

    /// The targets whose slot was counted in round `r`: their
    /// (round-local slot, rank) and their indices in `targets`.
    fn asks(
        &self,
        r: usize,
        targets: &[(usize, u64)],
        local: &[u32],
    ) -> (Vec<(usize, u64)>, Vec<usize>) {
        let (mut asks, mut whose) = (Vec::new(), Vec::new());
        let lo = r * self.max_slots;
        for (ti, &(slot, rank)) in targets.iter().enumerate() {
            let g = self.groups.partition_point(|g| g.2 <= slot);
            let pos = slot - self.groups[g].1;
            if pos >= lo && pos < lo + self.max_slots {
                asks.push((local[slot] as usize, rank));
                whose.push(ti);
            }
        }
        (asks, whose)
    }
}

/// Quantiles of every segment along `axis` (see `cpu::stats::quantiles`).
pub(crate) fn quantiles(
    dev: &CudaDevice,
    x: &Input<'_>,
    axis: Axis,
    levels: &[f64],
) -> Result<QuantileResult> {
    // Columns become contiguous segments by one transpose on the device
    // (which takes the device lock itself).
    let transposed = match axis {
        Axis::PerColumn => Some(super::linalg::transposed(dev, x)?),
        _ => None,
    };
    let _g = dev.lock();
    let (rows, dim) = (x.rows(), x.dim());
    let xd = match transposed {
        Some(_) => None,
        None => Some(whole(dev, x)?),
    };
    let (data, len) = match (&transposed, &xd) {
        (Some(t), _) => (t.as_view(), rows),
        (None, Some(d)) => {
            let len = if axis == Axis::All { rows * dim } else { dim };
            (f32_rows(d.rows())?.as_view(), len)
        }
        (None, None) => return Err(Error::invalid("input", "none", "no data")),
    };
    let nseg = rows * dim / len;
    let nl = levels.len();
    if len <= SMALL_SEGMENT {
        let levels_d = upload_slice(dev, levels)?;
        let mut out = dev.alloc::<f32>(nseg * nl)?;
        let mut cnt = dev.alloc::<u64>(nseg)?;
        let mut nf = dev.alloc::<u64>(nseg)?;
        let f = dev.func(MODULE, "va_quantile_sorted")?;
        let (nseg_i, len_i, nl_i) = (nseg as i64, len as i64, nl as i32);
        let mut b = dev.stream.launch_builder(&f);
        b.arg(&data)
            .arg(&nseg_i)
            .arg(&len_i)
            .arg(&levels_d)
            .arg(&nl_i);
        b.arg(&mut out).arg(&mut cnt).arg(&mut nf);
        let cfg = LaunchConfig {
            grid_dim: (nseg.min(dev.sm_count() * 32) as u32, 1, 1),
            block_dim: (512, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: data holds nseg segments of len <= 4096 floats; out
        // nseg*nl values; cnt and nf nseg counts.
        unsafe { b.launch(cfg) }.map_err(cu("va_quantile_sorted launch"))?;
        let r = (
            dev.download(&out, nseg * nl)?,
            dev.download(&cnt, nseg)?,
            dev.download(&nf, nseg)?,
        );
        dev.sync()?;
        return Ok(r);
    }
    let mut out = vec![0f32; nseg * nl];
    let mut counts = vec![0u64; nseg];
    let mut non_finite = vec![0u64; nseg];
    let mut counter = CudaCounter {
        dev,
        data,
        len,
        first: None,
    };
    radix_select_all(
        &mut counter,
        nseg,
        levels,
        &mut out,
        &mut counts,
        &mut non_finite,
    )?;
    dev.sync()?;
    Ok((out, counts, non_finite))
}

impl StatsBackend for Arc<CudaDevice> {
    fn describe(&self, x: &Input<'_>, axis: Axis) -> Result<Vec<Moments>> {
        describe(self, x, axis)
    }

    fn quantiles(&self, x: &Input<'_>, axis: Axis, levels: &[f64]) -> Result<QuantileResult> {
        quantiles(self, x, axis, levels)
    }
}

//! The CUDA graph walk (`kernels/graph.cu`): one block per query walks a
//! level with its candidate list, visited hash and query in shared memory;
//! the levels run top to bottom, each level's best `ef` nodes (mapped to
//! the level below on the device) starting the next. The graph's levels
//! stay on the device between walks.

use std::sync::Arc;

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{CudaFunction, CudaSlice, LaunchArgs, LaunchConfig, PushKernelArg};

use half::f16;
use rayon::prelude::*;

use crate::core::error::{cu, Result};
use crate::core::precision::WalkPrecision;
use crate::core::quantize::{params, ScalarBits, ScalarRange};
use crate::core::trace;
use crate::runtime::backend::{GraphBackend, GraphLevel, GraphWalkJob, Walked};
use crate::runtime::cuda_device::CudaDevice;
use crate::runtime::cuda_rows::upload_slice;

const MODULE: &str = "graph";
/// Threads of a walk's block (`VA_GW_THREADS`).
const THREADS: u32 = 128;
/// Largest candidate list the kernel keeps (its shared memory).
const MAX_EF: usize = 512;
/// Largest node degree and row length the kernel takes.
const MAX_DEGREE: usize = 1024;
const MAX_DIM: usize = 4096;
/// Query rows per launch: bounds the start lists (`rows x ef` nodes).
const CHUNK_ITEMS: usize = 1 << 23;

/// One level on the device.
struct DeviceLevel {
    rows: CudaSlice<f32>,
    links: CudaSlice<u32>,
    parts: Option<CudaSlice<u32>>,
    below: Option<CudaSlice<u32>>,
    nodes: usize,
    degree: usize,
}

/// A graph's levels on the device, bottom first.
struct DeviceGraph(Vec<DeviceLevel>);

impl DeviceGraph {
    fn upload(dev: &CudaDevice, levels: &[GraphLevel<'_>]) -> Result<Self> {
        let mut out = Vec::with_capacity(levels.len());
        for l in levels {
            let opt = |s: &[u32]| (!s.is_empty()).then(|| upload_slice(dev, s)).transpose();
            out.push(DeviceLevel {
                rows: upload_slice(dev, l.rows.as_slice())?,
                links: upload_slice(dev, l.links)?,
                parts: opt(l.parts)?,
                below: l.below.map(|b| upload_slice(dev, b)).transpose()?,
                nodes: l.rows.rows(),
                degree: l.degree,
            });
        }
        dev.sync()?;
        Ok(Self(out))
    }
}

/// f16 copies (bits) of a graph's levels' rows, bottom first; `None` when
/// a value is beyond the f16 range (those graphs walk in fp32).
struct HalfRows(Option<Vec<CudaSlice<u16>>>);

impl HalfRows {
    fn upload(dev: &CudaDevice, levels: &[GraphLevel<'_>]) -> Result<Self> {
        let fits = levels.iter().all(|l| {
            l.rows
                .as_slice()
                .par_iter()
                .all(|v| !v.is_finite() || v.abs() <= f16::MAX.to_f32())
        });
        if !fits {
            return Ok(Self(None));
        }
        let mut out = Vec::with_capacity(levels.len());
        for l in levels {
            let bits: Vec<u16> = l
                .rows
                .as_slice()
                .par_iter()
                .map(|&v| f16::from_f32(v).to_bits())
                .collect();
            out.push(upload_slice(dev, &bits)?);
        }
        dev.sync()?;
        Ok(Self(Some(out)))
    }
}

/// 8-bit codes of a graph's levels' rows, bottom first, with each row's
/// `|scale * code|^2`, and the scales then the offsets per dimension
/// (`2 x dim`) they share: each value is `offset + scale * code`, the
/// offset and scale spanning the dimension's finite values over the bottom
/// level (the upper levels' rows are some of its rows).
struct ByteRows {
    levels: Vec<(CudaSlice<u8>, CudaSlice<f32>)>,
    params: CudaSlice<f32>,
}

impl ByteRows {
    fn upload(dev: &CudaDevice, levels: &[GraphLevel<'_>]) -> Result<Self> {
        let bottom = levels[0].rows;
        let dim = bottom.dim();
        let span = |(mut lo, mut hi): (Vec<f32>, Vec<f32>), row: &[f32]| {
            for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                if v.is_finite() {
                    *l = l.min(v);
                    *h = h.max(v);
                }
            }
            (lo, hi)
        };
        let empty = || (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim]);
        let (lo, hi) = bottom
            .as_slice()
            .par_chunks(dim)
            .fold(empty, span)
            .reduce(empty, |a, b| span(span(a, &b.0), &b.1));
        let mut params = vec![0f32; 2 * dim];
        let mut inv = vec![0f32; dim];
        for j in 0..dim {
            let (l, h) = if lo[j] <= hi[j] {
                (lo[j], hi[j])
            } else {
                (0.0, 0.0)
            };
            let (scale, reciprocal, offset) = params_of(l, h);
            (params[j], params[dim + j], inv[j]) = (scale, offset, reciprocal);
        }
        let encode =
            |v: f32, j: usize| ((v - params[dim + j]) * inv[j]).round().clamp(0.0, 255.0) as u8;
        let norm = |codes: &[u8]| -> f32 {
            let scaled = codes.iter().zip(&params[..dim]).map(|(&c, s)| s * c as f32);
            scaled.map(|v| v * v).sum()
        };
        let mut out = Vec::with_capacity(levels.len());
        for l in levels {
            let codes: Vec<u8> = l
                .rows
                .as_slice()
                .par_chunks(dim)
                .flat_map_iter(|row| row.iter().enumerate().map(|(j, &v)| encode(v, j)))
                .collect();
            let norms: Vec<f32> = codes.par_chunks(dim).map(norm).collect();
            out.push((upload_slice(dev, &codes)?, upload_slice(dev, &norms)?));
        }
        let params = upload_slice(dev, &params)?;
        dev.sync()?;
        Ok(Self {
            levels: out,
            params,
        })
    }
}

/// The asymmetric 8-bit (scale, 1 / scale, offset) of the range `lo..=hi`.
fn params_of(lo: f32, hi: f32) -> (f32, f32, f32) {
    params(lo, hi, ScalarBits::Int8, ScalarRange::Asymmetric)
}

/// The compressed rows a walk reads instead of the fp32 ones, every level.
#[derive(Clone, Copy)]
enum CodedLevels<'a> {
    Half(&'a [CudaSlice<u16>]),
    Bytes(&'a ByteRows),
}

impl<'a> CodedLevels<'a> {
    fn at(self, level: usize) -> Coded<'a> {
        match self {
            CodedLevels::Half(h) => Coded::Half(&h[level]),
            CodedLevels::Bytes(b) => {
                Coded::Bytes(&b.levels[level].0, &b.levels[level].1, &b.params)
            }
        }
    }
}

/// One level's compressed rows (codes with their rows' norms and the
/// per-dimension scales and offsets).
#[derive(Clone, Copy)]
enum Coded<'a> {
    Half(&'a CudaSlice<u16>),
    Bytes(&'a CudaSlice<u8>, &'a CudaSlice<f32>, &'a CudaSlice<f32>),
}

/// Whether the kernel serves the job (its shared memory and node numbers).
fn takes(job: &GraphWalkJob<'_>) -> bool {
    let dim = job.queries.dim();
    job.ef <= MAX_EF
        && job.k <= job.ef
        && (1..=MAX_DIM).contains(&dim)
        && job
            .levels
            .iter()
            .all(|l| l.degree <= MAX_DEGREE && l.rows.rows() < (1 << 31) - 1 && l.rows.dim() == dim)
}

/// Shared-memory shape of one walk.
#[derive(Clone, Copy)]
struct Shape {
    ef: usize,
    /// Room of the allowed-results list (0 without a filter).
    rcap: usize,
    /// Nodes scored per step: a power of two, at least the degree.
    nbp: usize,
    hash_bits: u32,
    dim: usize,
}

impl Shape {
    fn new(ef: usize, rcap: usize, degree: usize, dim: usize) -> Self {
        // The hash is cleared past half full and refilled with the lists
        // (at most `ef + rcap`, an eighth of it); a step adds at most `nbp`
        // (a quarter): it never fills.
        let nbp = degree.max(2).next_power_of_two();
        let hash = (16 * ef)
            .max(4 * nbp)
            .next_power_of_two()
            .clamp(2048, 16384);
        Self {
            ef,
            rcap,
            nbp,
            hash_bits: hash.trailing_zeros(),
            dim,
        }
    }
    fn bytes(&self) -> usize {
        8 * (2 * self.ef + 2 * self.rcap + 2 * self.nbp) + 4 * (1 << self.hash_bits) + 4 * self.dim
    }
}

impl GraphBackend for Arc<CudaDevice> {
    fn graph_prune(
        &self,
        knn: &[u32],
        n: usize,
        wide: usize,
        degree: usize,
    ) -> Result<Option<Vec<u32>>> {
        if wide == 0 || wide > 256 || n == 0 || n >= (1 << 31) - 1 {
            return Ok(None);
        }
        let _g = self.lock();
        prune(self, knn, n, (wide, degree)).map(Some)
    }

    fn graph_walk(&self, job: GraphWalkJob<'_>) -> Result<Option<Walked>> {
        if !takes(&job) {
            return Ok(None);
        }
        if job.k == 0 || job.queries.rows() == 0 {
            return Ok(Some(Walked {
                width: 0,
                nodes: Vec::new(),
                values: Vec::new(),
            }));
        }
        let graph = kept(self, &job, DeviceGraph::upload)?;
        let (half, bytes) = match job.rows {
            WalkPrecision::Exact => (None, None),
            WalkPrecision::F16 => (Some(kept(self, &job, HalfRows::upload)?), None),
            WalkPrecision::Int8 => (None, Some(kept(self, &job, ByteRows::upload)?)),
        };
        let coded = match (&half, &bytes) {
            (Some(h), _) => h.0.as_deref().map(CodedLevels::Half),
            (_, Some(b)) => Some(CodedLevels::Bytes(b)),
            _ => None,
        };
        let _g = self.lock();
        let (nq, k) = (job.queries.rows(), job.k);
        let allowed = job.allowed.map(|a| upload_slice(self, a)).transpose()?;
        let chunk = (CHUNK_ITEMS / job.ef.max(1)).clamp(1, nq.max(1));
        let mut nodes = Vec::with_capacity(nq * k);
        let mut keys = Vec::with_capacity(nq * k);
        for q0 in (0..nq).step_by(chunk) {
            let q1 = (q0 + chunk).min(nq);
            let (n, v) = walk_chunk(self, &job, (&graph, coded), allowed.as_ref(), q0..q1)?;
            nodes.extend(n);
            keys.extend(v);
        }
        // Keys rank smaller first: the negated inner product.
        let values = if job.inner_product {
            keys.iter().map(|v| -v).collect()
        } else {
            keys
        };
        Ok(Some(Walked {
            width: k,
            nodes,
            values,
        }))
    }
}

/// The job's graph's `T` (its device copy in some form) as the cache keeps
/// it, made by `upload` the first time.
fn kept<T: std::any::Any + Send + Sync>(
    dev: &Arc<CudaDevice>,
    job: &GraphWalkJob<'_>,
    upload: fn(&CudaDevice, &[GraphLevel<'_>]) -> Result<T>,
) -> Result<Arc<T>> {
    let made = job.cache.find_or_make(
        |_: &T| true,
        || {
            let _g = dev.lock();
            upload(dev, job.levels).map(Some)
        },
    )?;
    Ok(made.expect("made above"))
}

/// The walks of queries `rows`, every level (over the `coded` rows where
/// given and the warp walk serves, the bottom level's `ef` best then
/// re-scored in fp32): the bottom level's `k` best (nodes, keys) per query.
fn walk_chunk(
    dev: &CudaDevice,
    job: &GraphWalkJob<'_>,
    (graph, coded): (&DeviceGraph, Option<CodedLevels<'_>>),
    allowed: Option<&CudaSlice<u64>>,
    rows: std::ops::Range<usize>,
) -> Result<(Vec<u32>, Vec<f32>)> {
    let m = rows.len();
    let dim = job.queries.dim();
    let q = upload_slice(
        dev,
        &job.queries.as_slice()[rows.start * dim..rows.end * dim],
    )?;
    trace::mark("walk.stage", || ());
    trace::mark("walk.upload", || drop(dev.sync()));
    let mut starts: Option<CudaSlice<u32>> = None;
    let up = job.upper_ef();
    for (at, level) in graph.0.iter().enumerate().rev() {
        let bottom = at == 0;
        let mut walk = Walk {
            level,
            coded: coded.map(|c| c.at(at)),
            starts: starts.as_ref().map(|s| (s, up)),
            allowed: if bottom { allowed } else { None },
            q_offset: rows.start,
            ef: if bottom { job.ef } else { up },
            kout: if bottom { job.k } else { up },
            ip: job.inner_product,
        };
        let multi = MultiShape::new(&walk, dim, m, bottom);
        let warp = multi
            .is_none()
            .then(|| WarpShape::new(&walk, dim, m))
            .flatten();
        let refine = bottom && walk.coded.is_some() && warp.is_some();
        if refine {
            walk.kout = job.ef;
        }
        let mut out_keys = dev.alloc::<f32>(m * walk.kout)?;
        let mut out_nodes = dev.alloc::<u32>(m * walk.kout)?;
        let out = (&mut out_keys, &mut out_nodes);
        match (&multi, &warp) {
            (Some(shape), _) => launch_multi(dev, (&q, dim, m), &walk, shape, out)?,
            (_, Some(shape)) => launch_warp(dev, (&q, dim, m), &walk, shape, out)?,
            _ => launch(dev, &q, dim, m, &walk, out)?,
        }
        trace::mark(if bottom { "walk.bottom" } else { "walk.upper" }, || {
            drop(dev.sync())
        });
        if refine {
            (out_keys, out_nodes) = launch_refine(dev, (&q, dim, m), &walk, &out_nodes, job.k)?;
            trace::mark("walk.refine", || drop(dev.sync()));
        }
        if bottom {
            let download = cu("download (cuMemcpyDtoH)");
            let nodes = dev.stream.clone_dtoh(&out_nodes).map_err(&download)?;
            let keys = dev.stream.clone_dtoh(&out_keys).map_err(&download)?;
            dev.sync()?;
            trace::mark("walk.download", || ());
            return Ok((nodes, keys));
        }
        starts = Some(out_nodes);
    }
    unreachable!("a graph has a bottom level")
}

/// One level's walk of a chunk of queries.
struct Walk<'a> {
    level: &'a DeviceLevel,
    /// The level's compressed rows (walked instead by the warp walk).
    coded: Option<Coded<'a>>,
    /// Per-query start nodes and how many per query (`None`: spread ones).
    starts: Option<(&'a CudaSlice<u32>, usize)>,
    allowed: Option<&'a CudaSlice<u64>>,
    /// The chunk's first query (the spread starts depend on it).
    q_offset: usize,
    ef: usize,
    kout: usize,
    ip: bool,
}

/// Largest list and degree of the warp walk (`graph_walk_warp_LI_CI`).
const WARP_MAX_EF: usize = 256;
const WARP_MAX_DEGREE: usize = 64;
/// Queries per block of the warp walk (`VA_WW_WARPS`).
const WARP_QUERIES: usize = 4;
/// Batches below this many queries walk a block per query instead: a warp
/// per query leaves the GPU short of warps (on an H100, 1,000 queries at
/// ef 32 took 1.02 ms with a block each, 1.59 ms with a warp each; 10,000
/// took 6.56 ms and 5.87 ms).
const WARP_FROM_QUERIES: usize = 4096;

/// Shared-memory shape of one warp walk (one query's share of the block).
struct WarpShape {
    /// List registers per lane (ef <= 32 * list_regs) and neighbour
    /// registers per lane (degree <= 32 * nb_regs).
    list_regs: usize,
    nb_regs: usize,
    hash_bits: u32,
    /// Lanes that score one row together.
    team: usize,
    bytes: usize,
}

impl WarpShape {
    /// The warp walk's shape, when it serves the walk (the list and
    /// degree within its registers).
    fn new(w: &Walk<'_>, dim: usize, m: usize) -> Option<Self> {
        let degree = w.level.degree;
        if w.ef > WARP_MAX_EF || degree > WARP_MAX_DEGREE || m < WARP_FROM_QUERIES {
            return None;
        }
        let list_regs = w.ef.div_ceil(32).max(1).next_power_of_two();
        let nb_regs = degree.div_ceil(32).max(1);
        // Cleared past half full and refilled with the lists (at most
        // `2 ef`, an eighth); a step adds at most 32 * nb_regs (a
        // sixteenth): it never fills.
        let hash = (16 * w.ef)
            .max(512 * nb_regs)
            .next_power_of_two()
            .clamp(1024, 8192);
        let team = team_of(dim);
        let bytes = 4 * dim.next_multiple_of(4) + 4 * hash + 8 * 32 * nb_regs;
        Some(Self {
            list_regs,
            nb_regs,
            hash_bits: hash.trailing_zeros(),
            team,
            bytes,
        })
    }
}

/// One level's walk by the warp kernel: a warp per query, `WARP_QUERIES`
/// per block.
fn launch_warp(
    dev: &CudaDevice,
    (q, dim, m): (&CudaSlice<f32>, usize, usize),
    w: &Walk<'_>,
    shape: &WarpShape,
    (out_keys, out_nodes): (&mut CudaSlice<f32>, &mut CudaSlice<u32>),
) -> Result<()> {
    let l = w.level;
    let rows = match w.coded {
        None => "",
        Some(Coded::Half(_)) => "h_",
        Some(Coded::Bytes(..)) => "b_",
    };
    let name = format!(
        "graph_walk_warp_{rows}{}_{}",
        shape.list_regs, shape.nb_regs
    );
    let (f, cfg) = warp_kernel(dev, &name, shape.bytes, m)?;
    let level = LevelArgs::of(w, dim);
    let null = &level.null;
    let (queries, ef) = (m as i32, w.ef as i32);
    let (ip, bits, team) = (w.ip as i32, shape.hash_bits as i32, shape.team as i32);
    let max_iters = (64 * w.ef).max(4096) as i32;
    let (kout, wbytes) = (w.kout as i32, shape.bytes as i32);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(q).arg(&level.d);
    match w.coded {
        None => b.arg(&l.rows).arg(null).arg(null),
        Some(Coded::Half(h)) => b.arg(h).arg(null).arg(null),
        Some(Coded::Bytes(c, norms, p)) => b.arg(c).arg(p).arg(norms),
    };
    level.push(&mut b, w);
    b.arg(&queries).arg(&ef).arg(&ip);
    arg_or_null(&mut b, w.allowed, null);
    b.arg(&bits).arg(&team).arg(&max_iters);
    arg_or_null(&mut b, l.below.as_ref(), null);
    b.arg(&mut *out_keys)
        .arg(&mut *out_nodes)
        .arg(&kout)
        .arg(&wbytes);
    // SAFETY: as `launch`'s; the shared memory is `WARP_QUERIES` warps'
    // shapes, and warps past the m queries return at once.
    unsafe { b.launch(cfg) }.map_err(cu("graph_walk_warp launch"))?;
    Ok(())
}

/// Batches of at most this many queries walk with several walkers per
/// query (`graph_walk_multi_LO_CI`): none. With lists of at least `k` at
/// every level the walkers passed the GPU suite for batches up to 128, but
/// on an H100 (1M x 128, Graph32, k 10) one query reached 0.999 in 0.51 ms
/// where the block walk reached 0.993 in 0.55 ms and 0.953 in 0.38 ms, and
/// a batch of 100 was slower than the block walk at every recall below
/// 0.995. Upper levels now keep lists of 8 (their starts need no exact
/// best); that form has not run on a GPU host.
const MULTI_UP_TO: usize = 0;
/// Items of each walker's list (at least the results wanted: a walker may
/// own every one of them), and the most walkers per query (warps of its
/// block): `ef / 4` of them, at least 4. On an H100 (1M x 128, one
/// query at a time) lists of 8 were faster and found more than lists of 16
/// or 32 (ef 64: 16 walkers of 8, recall 0.9999 in 0.29 ms; of 16, 1.0 in
/// 0.38 ms; of 32, 0.60 ms).
const MULTI_LIST: usize = 8;
const MULTI_MAX_WALKERS: usize = 16;
/// Least degree of a level the walkers take: short lists over fewer
/// links per node lose the way (a 500-node graph of degree 4 agreed with
/// the host walk on 85% of the results at ef 16).
const MULTI_MIN_DEGREE: usize = 16;

/// The shape of a walk with several walkers per query.
struct MultiShape {
    walkers: usize,
    /// Items of each walker's list.
    list: usize,
    /// Result registers per lane (kout <= 32 * out_regs) and neighbour
    /// registers per lane (degree <= 32 * nb_regs).
    out_regs: usize,
    nb_regs: usize,
    hash_bits: u32,
    bytes: usize,
}

impl MultiShape {
    /// The shape, when the walk suits several walkers: a small batch, the
    /// degree and results within the kernel's registers, and the starts
    /// within a quarter of the shared visited hash (never cleared).
    fn new(w: &Walk<'_>, dim: usize, m: usize, bottom: bool) -> Option<Self> {
        let degree = w.level.degree;
        // The walkers' lists together hold the best `kout` of every node
        // reached only when each holds `kout` (a walker may own them all):
        // needed for the results, not for an upper level's starts.
        let list = MULTI_LIST.min(w.ef);
        let list = if bottom { list.max(w.kout) } else { list };
        if m > MULTI_UP_TO || !(MULTI_MIN_DEGREE..=WARP_MAX_DEGREE).contains(&degree) || list > 32 {
            return None;
        }
        let walkers = (w.ef / 4).clamp(4, MULTI_MAX_WALKERS);
        let nb_regs = degree.div_ceil(32);
        let hash = (64 * walkers * list).next_power_of_two().clamp(4096, 16384);
        let starts = w.starts.map_or(256, |s| s.1) + w.level.parts.as_ref().map_or(0, |p| p.len());
        if 4 * starts > hash {
            return None;
        }
        let bytes = 4 * dim.next_multiple_of(4) + 8 * hash + walkers * 4 * (64 * nb_regs + 64);
        (bytes <= 200 << 10).then_some(Self {
            walkers,
            list,
            out_regs: w.kout.div_ceil(32).max(1).next_power_of_two(),
            nb_regs,
            hash_bits: hash.trailing_zeros(),
            bytes,
        })
    }
}

/// One level's walk with `shape.walkers` walkers per query (fp32 rows, a
/// block per query).
fn launch_multi(
    dev: &CudaDevice,
    (q, dim, m): (&CudaSlice<f32>, usize, usize),
    w: &Walk<'_>,
    shape: &MultiShape,
    (out_keys, out_nodes): (&mut CudaSlice<f32>, &mut CudaSlice<u32>),
) -> Result<()> {
    let l = w.level;
    let name = format!("graph_walk_multi_{}_{}", shape.out_regs, shape.nb_regs);
    let f = kernel_with_shared(dev, &name, shape.bytes)?;
    let level = LevelArgs::of(w, dim);
    let null = &level.null;
    let (list, ip) = (shape.list as i32, w.ip as i32);
    let (bits, team) = (shape.hash_bits as i32, team_of(dim) as i32);
    let max_iters = (64 * shape.list).max(4096) as i32;
    let kout = w.kout as i32;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(q).arg(&level.d).arg(&l.rows);
    level.push(&mut b, w);
    b.arg(&list).arg(&ip);
    arg_or_null(&mut b, w.allowed, null);
    b.arg(&bits).arg(&team).arg(&max_iters);
    arg_or_null(&mut b, l.below.as_ref(), null);
    b.arg(&mut *out_keys).arg(&mut *out_nodes).arg(&kout);
    let cfg = LaunchConfig {
        grid_dim: (m as u32, 1, 1),
        block_dim: (32 * shape.walkers as u32, 1, 1),
        shared_mem_bytes: shape.bytes as u32,
    };
    // SAFETY: q is m x dim, the level's rows n x dim and links n x degree
    // (nodes below n), starts m x ns, allowed covers the nodes, outputs
    // m x kout (kout <= 32 * out_regs); the shared memory is the shape's
    // (the query, the hash's nodes and owners, each walker's fresh nodes
    // and list).
    unsafe { b.launch(cfg) }.map_err(cu("graph_walk_multi launch"))?;
    Ok(())
}

/// The exact (fp32) keys of each query's `w.ef` walked `nodes`, sorted:
/// the best `k` (keys, nodes) per query.
fn launch_refine(
    dev: &CudaDevice,
    (q, dim, m): (&CudaSlice<f32>, usize, usize),
    w: &Walk<'_>,
    nodes: &CudaSlice<u32>,
    k: usize,
) -> Result<(CudaSlice<f32>, CudaSlice<u32>)> {
    let list_regs = w.ef.div_ceil(32).max(1).next_power_of_two();
    let wbytes = 4 * dim.next_multiple_of(4) + 8 * 32 * list_regs;
    let (f, cfg) = warp_kernel(dev, &format!("graph_refine_{list_regs}"), wbytes, m)?;
    let mut keys = dev.alloc::<f32>(m * k)?;
    let mut out = dev.alloc::<u32>(m * k)?;
    let (d, ef, queries, ip) = (dim as i32, w.ef as i32, m as i32, w.ip as i32);
    let team = team_of(dim) as i32;
    let (k32, wb) = (k as i32, wbytes as i32);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(q).arg(&d).arg(&w.level.rows).arg(nodes).arg(&ef);
    b.arg(&queries).arg(&ip).arg(&team);
    b.arg(&mut keys).arg(&mut out).arg(&k32).arg(&wb);
    // SAFETY: q is m x dim, the level's fp32 rows n x dim, nodes m x ef
    // (below n or VA_GW_NO_NODE), outputs m x k (k <= ef <= 32 *
    // list_regs); the shared memory is WARP_QUERIES warps' queries, nodes
    // and keys.
    unsafe { b.launch(cfg) }.map_err(cu("graph_refine launch"))?;
    Ok((keys, out))
}

/// The module's kernel `name`, allowed `bytes` of dynamic shared memory.
fn kernel_with_shared(dev: &CudaDevice, name: &str, bytes: usize) -> Result<CudaFunction> {
    let f = dev.func(MODULE, name)?;
    f.set_attribute(
        CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
        bytes as i32,
    )
    .map_err(cu("cuFuncSetAttribute"))?;
    Ok(f)
}

/// The arguments every walk kernel takes for its level after its rows
/// (`n, links, degree, starts, ns, parts, np, q_offset`), their scalars
/// held here for the launch, with the row length `d` and a null pointer.
struct LevelArgs {
    d: i32,
    n: i32,
    degree: i32,
    ns: i32,
    np: i32,
    q_offset: i32,
    null: u64,
}

impl LevelArgs {
    fn of(w: &Walk<'_>, dim: usize) -> Self {
        let l = w.level;
        Self {
            d: dim as i32,
            n: l.nodes as i32,
            degree: l.degree as i32,
            ns: w.starts.map_or(0, |s| s.1) as i32,
            np: l.parts.as_ref().map_or(0, |p| p.len()) as i32,
            q_offset: w.q_offset as i32,
            null: 0,
        }
    }

    /// Pushes them in the kernels' order.
    fn push<'a>(&'a self, b: &mut LaunchArgs<'a>, w: &Walk<'a>) {
        let l = w.level;
        b.arg(&self.n).arg(&l.links).arg(&self.degree);
        arg_or_null(b, w.starts.map(|(s, _)| s), &self.null);
        b.arg(&self.ns);
        arg_or_null(b, l.parts.as_ref(), &self.null);
        b.arg(&self.np).arg(&self.q_offset);
    }
}

/// Pushes the device buffer `x`, or a null pointer where there is none.
fn arg_or_null<'a, T>(b: &mut LaunchArgs<'a>, x: Option<&'a CudaSlice<T>>, null: &'a u64) {
    match x {
        Some(s) => b.arg(s),
        None => b.arg(null),
    };
}

/// A warp-per-item kernel of the module (`VA_WW_WARPS` items per block,
/// `warp_bytes` of shared memory each) and its launch over `items`.
fn warp_kernel(
    dev: &CudaDevice,
    name: &str,
    warp_bytes: usize,
    items: usize,
) -> Result<(CudaFunction, LaunchConfig)> {
    let block_bytes = warp_bytes * WARP_QUERIES;
    let f = kernel_with_shared(dev, name, block_bytes)?;
    let cfg = LaunchConfig {
        grid_dim: (items.div_ceil(WARP_QUERIES) as u32, 1, 1),
        block_dim: (32 * WARP_QUERIES as u32, 1, 1),
        shared_mem_bytes: block_bytes as u32,
    };
    Ok((f, cfg))
}

/// Lanes that score one row together (each scores four rows at once): 8
/// for 128 values (measured on an H100: 10% faster than 4 at 1M x 128).
fn team_of(dim: usize) -> usize {
    dim.div_ceil(16).next_power_of_two().clamp(2, 32)
}

fn launch(
    dev: &CudaDevice,
    q: &CudaSlice<f32>,
    dim: usize,
    m: usize,
    w: &Walk<'_>,
    (out_keys, out_nodes): (&mut CudaSlice<f32>, &mut CudaSlice<u32>),
) -> Result<()> {
    let l = w.level;
    let rcap = if w.allowed.is_some() { w.kout } else { 0 };
    let shape = Shape::new(w.ef, rcap, l.degree, dim);
    let f = kernel_with_shared(dev, "graph_walk", shape.bytes())?;
    let level = LevelArgs::of(w, dim);
    let null = &level.null;
    let (ef, k) = (w.ef as i32, w.kout as i32);
    let (ip, nbp, bits) = (w.ip as i32, shape.nbp as i32, shape.hash_bits as i32);
    let max_iters = (64 * w.ef).max(4096) as i32;
    let kout = w.kout as i32;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(q).arg(&level.d).arg(&l.rows);
    level.push(&mut b, w);
    b.arg(&ef).arg(&k).arg(&ip);
    arg_or_null(&mut b, w.allowed, null);
    b.arg(&nbp).arg(&bits).arg(&max_iters);
    arg_or_null(&mut b, l.below.as_ref(), null);
    b.arg(&mut *out_keys).arg(&mut *out_nodes).arg(&kout);
    let cfg = LaunchConfig {
        grid_dim: (m as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: shape.bytes() as u32,
    };
    // SAFETY: q is m x dim, the level's rows n x dim and links n x degree
    // (nodes below n), starts m x ns, allowed covers the nodes, outputs
    // m x kout; the shared memory is the shape's.
    unsafe { b.launch(cfg) }.map_err(cu("graph_walk launch"))?;
    Ok(())
}

/// The detour-count pruning of `graph_prune_R` (a warp per node).
fn prune(
    dev: &CudaDevice,
    knn: &[u32],
    n: usize,
    (wide, degree): (usize, usize),
) -> Result<Vec<u32>> {
    let regs = wide.div_ceil(32).next_power_of_two();
    let slots = (2 * wide).next_power_of_two().max(32);
    let warp_bytes = 4 * (2 * slots + wide);
    let (f, cfg) = warp_kernel(dev, &format!("graph_prune_{regs}"), warp_bytes, n)?;
    let lists = upload_slice(dev, knn)?;
    let mut out = dev.alloc::<u32>(n * degree)?;
    let (n32, w32, d32, s32) = (n as i32, wide as i32, degree as i32, slots as i32);
    let mut b = dev.stream.launch_builder(&f);
    b.arg(&lists)
        .arg(&n32)
        .arg(&w32)
        .arg(&d32)
        .arg(&s32)
        .arg(&mut out);
    // SAFETY: lists is n x wide (nodes below n or VA_GW_NO_NODE), out
    // n x degree; wide <= 32 * regs; the shared memory is WARP_QUERIES
    // warps' tables (slots keys and ranks) and counts (wide).
    unsafe { b.launch(cfg) }.map_err(cu("graph_prune launch"))?;
    let picked = dev
        .stream
        .clone_dtoh(&out)
        .map_err(cu("download (cuMemcpyDtoH)"))?;
    dev.sync()?;
    Ok(picked)
}

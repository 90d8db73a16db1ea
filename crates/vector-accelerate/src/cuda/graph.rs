//! The CUDA graph walk (`kernels/graph.cu`): one block per query walks a
//! level with its candidate list, visited hash and query in shared memory;
//! the levels run top to bottom, each level's best `ef` nodes (mapped to
//! the level below on the device) starting the next. The graph's levels
//! stay on the device between walks.

use std::sync::Arc;

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use crate::core::error::{cu, Result};
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
        let graph = job
            .cache
            .find_or_make(
                |_: &DeviceGraph| true,
                || {
                    let _g = self.lock();
                    DeviceGraph::upload(self, job.levels).map(Some)
                },
            )?
            .expect("made above");
        let _g = self.lock();
        let (nq, k) = (job.queries.rows(), job.k);
        let allowed = job.allowed.map(|a| upload_slice(self, a)).transpose()?;
        let chunk = (CHUNK_ITEMS / job.ef.max(1)).clamp(1, nq.max(1));
        let mut nodes = Vec::with_capacity(nq * k);
        let mut keys = Vec::with_capacity(nq * k);
        for q0 in (0..nq).step_by(chunk) {
            let q1 = (q0 + chunk).min(nq);
            let (n, v) = walk_chunk(self, &job, &graph, allowed.as_ref(), q0..q1)?;
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

/// The walks of queries `rows`, every level: the bottom level's `k` best
/// (nodes, keys) per query.
fn walk_chunk(
    dev: &CudaDevice,
    job: &GraphWalkJob<'_>,
    graph: &DeviceGraph,
    allowed: Option<&CudaSlice<u64>>,
    rows: std::ops::Range<usize>,
) -> Result<(Vec<u32>, Vec<f32>)> {
    let m = rows.len();
    let dim = job.queries.dim();
    let q = upload_slice(
        dev,
        &job.queries.as_slice()[rows.start * dim..rows.end * dim],
    )?;
    let mut starts: Option<CudaSlice<u32>> = None;
    for (at, level) in graph.0.iter().enumerate().rev() {
        let bottom = at == 0;
        let kout = if bottom { job.k } else { job.ef };
        let mut out_keys = dev.alloc::<f32>(m * kout)?;
        let mut out_nodes = dev.alloc::<u32>(m * kout)?;
        let walk = Walk {
            level,
            starts: starts.as_ref().map(|s| (s, job.ef)),
            allowed: if bottom { allowed } else { None },
            q_offset: rows.start,
            ef: job.ef,
            kout,
            ip: job.inner_product,
        };
        launch(dev, &q, dim, m, &walk, (&mut out_keys, &mut out_nodes))?;
        if bottom {
            let download = cu("download (cuMemcpyDtoH)");
            let nodes = dev.stream.clone_dtoh(&out_nodes).map_err(&download)?;
            let keys = dev.stream.clone_dtoh(&out_keys).map_err(&download)?;
            dev.sync()?;
            return Ok((nodes, keys));
        }
        starts = Some(out_nodes);
    }
    unreachable!("a graph has a bottom level")
}

/// One level's walk of a chunk of queries.
struct Walk<'a> {
    level: &'a DeviceLevel,
    /// Per-query start nodes and how many per query (`None`: spread ones).
    starts: Option<(&'a CudaSlice<u32>, usize)>,
    allowed: Option<&'a CudaSlice<u64>>,
    /// The chunk's first query (the spread starts depend on it).
    q_offset: usize,
    ef: usize,
    kout: usize,
    ip: bool,
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
    let f = dev.func(MODULE, "graph_walk")?;
    f.set_attribute(
        CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
        shape.bytes() as i32,
    )
    .map_err(cu("cuFuncSetAttribute"))?;
    let null = 0u64;
    let (d, n, degree) = (dim as i32, l.nodes as i32, l.degree as i32);
    let ns = w.starts.map_or(0, |s| s.1) as i32;
    let np = l.parts.as_ref().map_or(0, |p| p.len()) as i32;
    let (q_offset, ef, k) = (w.q_offset as i32, w.ef as i32, w.kout as i32);
    let (ip, nbp, bits) = (w.ip as i32, shape.nbp as i32, shape.hash_bits as i32);
    let max_iters = (64 * w.ef).max(4096) as i32;
    let kout = w.kout as i32;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(q)
        .arg(&d)
        .arg(&l.rows)
        .arg(&n)
        .arg(&l.links)
        .arg(&degree);
    match w.starts {
        Some((s, _)) => b.arg(s),
        None => b.arg(&null),
    };
    b.arg(&ns);
    match &l.parts {
        Some(p) => b.arg(p),
        None => b.arg(&null),
    };
    b.arg(&np).arg(&q_offset).arg(&ef).arg(&k).arg(&ip);
    match w.allowed {
        Some(a) => b.arg(a),
        None => b.arg(&null),
    };
    b.arg(&nbp).arg(&bits).arg(&max_iters);
    match &l.below {
        Some(map) => b.arg(map),
        None => b.arg(&null),
    };
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

//! [`Index::save`] and [`Index::load`]: an index as one file (see
//! `file.rs` for the container). Only live vectors are written, so a loaded
//! index has nothing to compact; ids and their order are kept. On a CPU
//! context the vectors are searched in place in the file's memory map (no
//! copy); on CUDA they are uploaded from it.

use std::path::Path;

use super::api::{Body, Index};
use super::coded::ListCodec;
use super::file::{io_error, FieldReader, Fields, Reader, Writer};
use super::graph::{Graph, GraphIndex, NO_NODE};
use super::ids::IdMap;
use super::ivf::Ivf;
use super::rows::RowBlocks;
use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::{Distance, Metric};
use crate::core::quantize::Quantizer;
use crate::runtime::context::Context;
use crate::runtime::tensor::{DeviceMatrix, MappedF32};

const IDS: &[u8; 8] = b"ids\0\0\0\0\0";
const VECTORS: &[u8; 8] = b"vectors\0";
const CENTROIDS: &[u8; 8] = b"centroid";
const LIST_LENS: &[u8; 8] = b"listlens";
const CODEC: &[u8; 8] = b"codec\0\0\0";
const CODES: &[u8; 8] = b"codes\0\0\0";
const LINKS: &[u8; 8] = b"links\0\0\0";

impl Index {
    /// Writes the index to `path` (versioned, checksummed; written to a
    /// temporary name and renamed, so a crash leaves the old file intact).
    /// Removed vectors are left out.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut w = Writer::create(path, &self.header())?;
        match &self.body {
            Body::Flat(_) | Body::Graph(_) => {
                let live: Vec<usize> = (0..self.ids.slot_count())
                    .filter(|&s| !self.ids.is_deleted(s))
                    .collect();
                let ids: Vec<u64> = live.iter().map(|&s| self.ids.id(s)).collect();
                w.section(IDS, &ids)?;
                let rows = self.exact_rows().expect("flat or graph");
                w.section(VECTORS, rows.gather(&live)?.as_slice())?;
                if let Body::Graph(g) = &self.body {
                    w.section(LINKS, &live_links(g, &live, self.ids.slot_count()))?;
                }
            }
            Body::Ivf(ivf) => {
                let Some((centroids, _)) = &ivf.centroids else {
                    w.section::<f32>(CENTROIDS, &[])?;
                    return w.finish();
                };
                w.section(CENTROIDS, centroids.as_slice())?;
                let lists: Vec<Vec<usize>> = ivf
                    .lists
                    .iter()
                    .map(|l| {
                        l.slots
                            .iter()
                            .copied()
                            .filter(|&s| !self.ids.is_deleted(s))
                            .collect()
                    })
                    .collect();
                let lens: Vec<u64> = lists.iter().map(|l| l.len() as u64).collect();
                let order: Vec<usize> = lists.concat();
                let ids: Vec<u64> = order.iter().map(|&s| self.ids.id(s)).collect();
                w.section(LIST_LENS, &lens)?;
                w.section(IDS, &ids)?;
                write_lists(&mut w, ivf, &lists, &order)?;
            }
        }
        w.finish()
    }

    /// The header: factory, dimension, distance, defaults, next id.
    fn header(&self) -> Vec<u8> {
        let d = &self.distance;
        let mut f = Fields::default();
        f.str(&self.factory())
            .u64(self.dim as u64)
            .str(&d.metric.to_string())
            .u64(u64::from(d.inputs_normalized))
            .f32(d.binarize_threshold);
        let weights = d.weights.as_deref().unwrap_or(&[]);
        f.u64(u64::from(d.weights.is_some()))
            .u64(weights.len() as u64);
        for &w in weights {
            f.f32(w);
        }
        f.u64(self.nprobe as u64)
            .u64(self.refine_factor as u64)
            .u64(self.compact_at.to_bits())
            .u64(self.ids.next_id());
        f.0
    }

    /// Reads an index written by [`save`](Self::save) onto `ctx`'s device
    /// (either backend). A truncated, damaged or unknown file is
    /// [`Error::BadIndexFile`] naming the file and the byte offset.
    pub fn load(ctx: &Context, path: impl AsRef<Path>) -> Result<Self> {
        let (mut r, header) = Reader::open(path.as_ref())?;
        let h = Header::parse(&header).map_err(|e| r.bad(24, e))?;
        let mut index = Index::new(ctx, h.dim, &h.factory, h.distance.clone())
            .map_err(|e| r.bad(24, format!("header describes no valid index: {e}")))?;
        index.nprobe = h.nprobe;
        index.refine_factor = h.refine_factor;
        index.compact_at = h.compact_at;
        let slots = match &mut index.body {
            Body::Flat(rows) => {
                let ids: Vec<u64> = r.section(IDS)?;
                let values = mapped(&mut r, h.dim, ids.len())?;
                if !ids.is_empty() {
                    *rows = RowBlocks::from_device(rows_of(ctx, &values, (0, ids.len()), h.dim)?);
                }
                ids
            }
            Body::Ivf(ivf) => read_ivf(&mut r, ctx, ivf, h.dim)?,
            Body::Graph(g) => {
                let ids: Vec<u64> = r.section(IDS)?;
                let values = mapped(&mut r, h.dim, ids.len())?;
                let links: Vec<u32> = r.section(LINKS)?;
                if !ids.is_empty() {
                    let host = Matrix::new(values.as_slice().to_vec(), h.dim)
                        .map_err(|e| r.bad(0, e.to_string()))?;
                    let graph = Graph::from_parts(ctx, host, links, (g.degree, &h.distance))
                        .map_err(|e| r.bad(0, format!("links section: {e}")))?;
                    g.graph = Some(graph);
                    g.built = ids.len();
                    g.rows = RowBlocks::from_device(rows_of(ctx, &values, (0, ids.len()), h.dim)?);
                }
                ids
            }
        };
        index.ids =
            IdMap::from_ids(slots, h.next_id).map_err(|e| r.bad(0, format!("ids section: {e}")))?;
        r.finish()?;
        Ok(index)
    }

    /// The bytes of the index's file (as [`save`](Self::save) writes it).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let path = scratch_path();
        let out = self
            .save(&path)
            .and_then(|_| std::fs::read(&path).map_err(|e| io_error(&path, 0, &e)));
        let _ = std::fs::remove_file(&path);
        out
    }

    /// An index from the bytes of its file (as [`to_bytes`](Self::to_bytes)
    /// gives them) on `ctx`'s device; bytes that are not a whole index file
    /// are [`Error::BadIndexFile`].
    pub fn from_bytes(ctx: &Context, bytes: &[u8]) -> Result<Self> {
        let path = scratch_path();
        let out = std::fs::write(&path, bytes)
            .map_err(|e| io_error(&path, 0, &e))
            .and_then(|_| Index::load(ctx, &path));
        let _ = std::fs::remove_file(&path);
        out
    }

    /// A copy of the index (its vectors, ids, training and settings) on
    /// `ctx`'s device.
    pub fn copy_to(&self, ctx: &Context) -> Result<Self> {
        Self::from_bytes(ctx, &self.to_bytes()?)
    }
}

/// A fresh file name in the system's temporary folder.
fn scratch_path() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let name = format!("vector-accelerate-{}-{n}.vai", std::process::id());
    std::env::temp_dir().join(name)
}

/// The lists' rows in list order (`lists`: each list's live slots;
/// `order`: all of them): exact vectors, or the codec, the codes and (when
/// the index refines) the exact vectors.
fn write_lists(w: &mut Writer, ivf: &Ivf, lists: &[Vec<usize>], order: &[usize]) -> Result<()> {
    let Some(coding) = &ivf.coding else {
        return w.section(VECTORS, ivf.gather(order)?.as_slice());
    };
    let codec = coding.codec.as_ref().expect("trained with its centroids");
    let width = codec.row_bytes();
    w.section(CODEC, &codec.to_quantizer().to_bytes())?;
    let mut codes = Vec::with_capacity(order.len() * width);
    for (l, slots) in lists.iter().enumerate() {
        for &s in slots {
            let p = ivf.place[s].1 as usize;
            debug_assert_eq!(ivf.place[s].0 as usize, l);
            codes.extend_from_slice(&ivf.lists[l].codes[p * width..(p + 1) * width]);
        }
    }
    w.section(CODES, &codes)?;
    if coding.exact.is_some() {
        w.section(VECTORS, ivf.gather(order)?.as_slice())?;
    }
    Ok(())
}

/// The sections of an IVF index: centroids, list lengths, ids and the
/// lists' rows in list order. Returns the ids in slot order.
fn read_ivf(r: &mut Reader, ctx: &Context, ivf: &mut Ivf, dim: usize) -> Result<Vec<u64>> {
    let c: Vec<f32> = r.section(CENTROIDS)?;
    if c.is_empty() {
        return Ok(Vec::new());
    }
    let nlist = c.len() / dim;
    ivf.set_centroids(ctx, matrix(r, c, dim, nlist)?)?;
    let lens: Vec<u64> = r.section(LIST_LENS)?;
    let ids: Vec<u64> = r.section(IDS)?;
    if lens.len() != nlist || lens.iter().sum::<u64>() != ids.len() as u64 {
        return Err(r.bad(
            0,
            format!(
                "{} list lengths summing to {} for {nlist} lists and {} ids",
                lens.len(),
                lens.iter().sum::<u64>(),
                ids.len()
            ),
        ));
    }
    ivf.place = Vec::with_capacity(ids.len());
    let mut start = 0;
    for (l, &len) in lens.iter().enumerate() {
        let len = len as usize;
        ivf.lists[l].slots = (start..start + len).collect();
        ivf.place.extend((0..len).map(|p| (l as u32, p as u32)));
        start += len;
    }
    match ivf.coding.is_some() {
        false => {
            let values = mapped(r, dim, ids.len())?;
            for (l, list) in ivf.lists.iter_mut().enumerate() {
                let (a, b) = (start_of(&lens, l), start_of(&lens, l + 1));
                if b > a {
                    list.rows = RowBlocks::from_device(rows_of(ctx, &values, (a, b), dim)?);
                }
            }
        }
        true => read_codes(r, ctx, ivf, (&lens, ids.len()))?,
    }
    Ok(ids)
}

/// Rows of the lists before list `l`.
fn start_of(lens: &[u64], l: usize) -> usize {
    lens[..l].iter().sum::<u64>() as usize
}

/// The codec, the codes and the exact vectors (when the index refines) of
/// coded lists.
fn read_codes(
    r: &mut Reader,
    ctx: &Context,
    ivf: &mut Ivf,
    (lens, rows): (&[u64], usize),
) -> Result<()> {
    let dim = ivf.dim();
    let coding = ivf.coding.as_mut().expect("coded lists");
    let q = Quantizer::from_bytes(&r.section::<u8>(CODEC)?)
        .map_err(|e| r.bad(0, format!("codec section: {e}")))?;
    let codec = ListCodec::from_quantizer(q, coding.encoding, dim)
        .map_err(|e| r.bad(0, format!("codec section: {e}")))?;
    let width = codec.row_bytes();
    coding.codec = Some(codec);
    let codes: Vec<u8> = r.section(CODES)?;
    if codes.len() != rows * width {
        return Err(r.bad(
            0,
            format!(
                "{} code bytes for {rows} rows of {width} bytes",
                codes.len()
            ),
        ));
    }
    if let Some(exact) = coding.exact.as_mut() {
        let values = mapped(r, dim, rows)?;
        // Slots are numbered in list order, so the file's order is theirs.
        if rows > 0 {
            *exact = RowBlocks::from_device(rows_of(ctx, &values, (0, rows), dim)?);
        }
    }
    let mut at = 0;
    for (list, &len) in ivf.lists.iter_mut().zip(lens) {
        let n = len as usize * width;
        list.codes = codes[at..at + n].to_vec();
        at += n;
    }
    Ok(())
}

/// The vectors section (`rows x dim` values), left in the file's map.
fn mapped(r: &mut Reader, dim: usize, rows: usize) -> Result<MappedF32> {
    let values = r.section_mapped(VECTORS)?;
    if values.len() != rows * dim {
        return Err(r.bad(
            0,
            format!("{} values for {rows} rows of dimension {dim}", values.len()),
        ));
    }
    Ok(values)
}

/// Rows `a..b` of mapped vectors on `ctx`'s device: read in place from the
/// map on the CPU (no copy), uploaded on CUDA.
fn rows_of(
    ctx: &Context,
    values: &MappedF32,
    (a, b): (usize, usize),
    dim: usize,
) -> Result<DeviceMatrix> {
    let part = values.slice(a * dim, b * dim);
    match ctx.is_cuda() {
        true => ctx.upload(MatrixView::new(part.as_slice(), dim)?),
        false => Ok(DeviceMatrix::from_mapped(part, dim)),
    }
}

/// `values` as `rows x dim`, or an error naming the file.
fn matrix(r: &Reader, values: Vec<f32>, dim: usize, rows: usize) -> Result<Matrix> {
    if values.len() != rows * dim {
        return Err(r.bad(
            0,
            format!("{} values for {rows} rows of dimension {dim}", values.len()),
        ));
    }
    if rows == 0 {
        return Matrix::new(vec![0.0; dim], dim);
    }
    Matrix::new(values, dim)
}

/// The parsed header.
struct Header {
    factory: String,
    dim: usize,
    distance: Distance,
    nprobe: usize,
    refine_factor: usize,
    compact_at: f64,
    next_id: u64,
}

impl Header {
    fn parse(b: &[u8]) -> std::result::Result<Self, String> {
        let mut f = FieldReader::new(b);
        let factory = f.str()?;
        let dim = f.u64()? as usize;
        let metric: Metric = f.str()?.parse().map_err(|e: Error| e.to_string())?;
        let mut distance = Distance::new(metric);
        distance.inputs_normalized = f.u64()? == 1;
        distance.binarize_threshold = f.f32()?;
        let has_weights = f.u64()? == 1;
        let n = f.u64()?;
        if n > b.len() as u64 {
            return Err(format!("{n} weights in a header of {} bytes", b.len()));
        }
        let weights = (0..n)
            .map(|_| f.f32())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        distance.weights = has_weights.then_some(weights);
        let h = Self {
            factory,
            dim,
            distance,
            nprobe: f.u64()? as usize,
            refine_factor: f.u64()? as usize,
            compact_at: f64::from_bits(f.u64()?),
            next_id: f.u64()?,
        };
        if !f.done() {
            return Err("unexpected bytes at the end of the header".into());
        }
        if h.nprobe == 0 || h.refine_factor == 0 || !(0.0..=1.0).contains(&h.compact_at) {
            return Err("search defaults out of range".into());
        }
        Ok(h)
    }
}

/// The graph's links among the live slots `live` (renumbered in order;
/// links to removed vectors dropped).
fn live_links(g: &GraphIndex, live: &[usize], slots: usize) -> Vec<u32> {
    let Some(graph) = &g.graph else {
        return Vec::new();
    };
    let mut new = vec![NO_NODE; slots];
    for (i, &s) in live.iter().enumerate() {
        new[s] = i as u32;
    }
    let d = graph.degree();
    let mut out = Vec::with_capacity(live.len() * d);
    for &s in live {
        let mut row: Vec<u32> = graph.links()[s * d..(s + 1) * d]
            .iter()
            .filter(|&&l| l != NO_NODE)
            .map(|&l| new[l as usize])
            .filter(|&l| l != NO_NODE)
            .collect();
        row.resize(d, NO_NODE);
        out.extend(row);
    }
    out
}

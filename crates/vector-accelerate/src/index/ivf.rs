//! Inverted lists (IVF): vectors grouped by their nearest k-means centroid;
//! a search scans the `nprobe` lists nearest each query. Queries are
//! grouped by list, so each probed list is read once per batch and searched
//! by the exact k-NN for all its queries at once. Lists hold exact rows, or
//! codes of residuals (see `coded.rs`) with optionally the exact rows kept
//! beside them by slot for re-ranking.

use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::coded::{check_encoding, CodeSpace, ListCodec};
use super::exact;
use super::factory::{recommended_nlist, Encoding};
use super::ids::SlotSet;
use super::range;
use super::rows::RowBlocks;
use super::tail::{merge_best, Tail};
use crate::core::cluster::{KMeansInit, KMeansOptions, ProgressFn};
use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::{Distance, Metric, Prepared};
use crate::core::neighbors::{missing_value, sort_key, Neighbors, Order, MISSING_ID};
use crate::core::rng::sample_indices;
use crate::core::trace;
use crate::ops::cluster::init::gather_rows;
use crate::ops::cluster::kmeans;
use crate::ops::knn::{knn_with, KnnOptions};
use crate::ops::prepare;
use crate::runtime::backend::{BackendCache, IvfScanJob, ListData, ListLayout};
use crate::runtime::codes::Store;
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// k-means iterations of the coarse quantizer.
const TRAIN_ITERATIONS: usize = 10;
/// Training points per list at most (a uniform sample beyond).
const TRAIN_POINTS_PER_LIST: usize = 256;
/// Lists above which the coarse quantizer starts from a uniform sample of
/// the training rows instead of k-means++: its weighted step compares about
/// `10 nlist` candidates with each of `nlist` picks on the host, so its
/// cost grows as `nlist^2` (1-2 s at 4,096 lists of 128 dimensions, hours
/// at 65,536). FAISS trains its IVF quantizers from a uniform sample too.
const PLUS_PLUS_MAX_LISTS: usize = 8192;
/// Seed of the coarse quantizer's k-means.
const TRAIN_SEED: u64 = 0x1f_5eed;
/// Training rows of a list codec at most (a uniform sample beyond).
const CODEC_TRAIN_POINTS: usize = 1 << 18;
/// Blocks a list may hold before an add merges them into one.
const MAX_LIST_BLOCKS: usize = 8;

/// One inverted list: its vectors (exact rows, or codes) and the slot of
/// each.
#[derive(Debug)]
pub(crate) struct List {
    pub rows: RowBlocks,
    pub codes: Vec<u8>,
    pub slots: Vec<usize>,
}

/// Every list's rows one after the other, for backends that scan packed
/// lists (built on first search, dropped by compaction; rows added later
/// wait in a [`Tail`] until it passes a share of the packed rows).
#[derive(Debug)]
pub(crate) struct Packed {
    rows: PackedRows,
    offsets: Vec<u64>,
    slots: Vec<u64>,
    cache: BackendCache,
}

/// The packed lists and the rows added since they were packed.
#[derive(Debug, Clone)]
struct Snapshot {
    lists: Arc<Packed>,
    /// `None` until a row is added after packing.
    tail: Option<Arc<Tail>>,
}

/// The packed rows: exact, or codes.
#[derive(Debug)]
enum PackedRows {
    F32(Box<DeviceMatrix>),
    Codes(Store<u8>),
}

/// The codes of coded lists: the codec, the space it codes in, and the
/// exact rows by slot when the index refines.
#[derive(Debug)]
pub(crate) struct Coding {
    pub encoding: Encoding,
    pub space: CodeSpace,
    pub codec: Option<ListCodec>,
    pub exact: Option<RowBlocks>,
}

/// The coarse quantizer and the lists of an IVF index with exact vectors.
#[derive(Debug)]
pub(crate) struct Ivf {
    /// Lists asked for (`None`: [`recommended_nlist`] of the training set).
    pub nlist: Option<usize>,
    /// `nlist x dim` centroids on the host (saved) and on the device.
    pub centroids: Option<(Matrix, DeviceMatrix)>,
    pub lists: Vec<List>,
    /// `(list, position)` of every slot.
    pub place: Vec<(u32, u32)>,
    /// Codes of coded lists (`None`: exact lists).
    pub coding: Option<Coding>,
    packed: Mutex<Option<Snapshot>>,
    dim: usize,
}

impl Ivf {
    /// An untrained index of `dim`-dimensional vectors with lists stored
    /// as `encoding` (exact rows kept beside codes when `refine`).
    pub fn new(
        dim: usize,
        nlist: Option<usize>,
        (encoding, refine): (Encoding, bool),
        dist: &Distance,
    ) -> Result<Self> {
        let coding = match encoding {
            Encoding::Flat => None,
            _ => {
                check_encoding(encoding, dim)?;
                Some(Coding {
                    encoding,
                    space: CodeSpace::of(dist)?,
                    codec: None,
                    exact: refine.then(|| RowBlocks::new(dim)),
                })
            }
        };
        Ok(Self {
            nlist,
            centroids: None,
            lists: Vec::new(),
            place: Vec::new(),
            coding,
            packed: Mutex::new(None),
            dim,
        })
    }

    /// Values per vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether the index keeps exact rows to re-rank coded candidates.
    pub fn refines(&self) -> bool {
        self.coding.as_ref().is_some_and(|c| c.exact.is_some())
    }

    /// Whether the coarse quantizer (and the codec of coded lists) is
    /// trained.
    pub fn is_trained(&self) -> bool {
        self.centroids.is_some() && self.coding.as_ref().is_none_or(|c| c.codec.is_some())
    }

    /// Bytes of vectors, centroids and the packed copy held.
    pub fn bytes(&self) -> usize {
        let c = self
            .centroids
            .as_ref()
            .map_or(0, |(m, _)| m.as_slice().len() * 4);
        let packed = self.packed.lock().unwrap_or_else(|e| e.into_inner());
        let p = packed.as_ref().map_or(0, |s| {
            let p = &s.lists;
            p.slots.len() * 16
                + s.tail.as_ref().map_or(0, |t| t.bytes())
                + match &p.rows {
                    PackedRows::F32(m) => m.rows() * self.dim * 4,
                    PackedRows::Codes(_) => self.lists.iter().map(|l| l.codes.len()).sum(),
                }
        });
        let exact = self.coding.as_ref().and_then(|c| c.exact.as_ref());
        c + p
            + exact.map_or(0, RowBlocks::bytes)
            + self
                .lists
                .iter()
                .map(|l| l.rows.bytes() + l.codes.len() + l.slots.len() * 8)
                .sum::<usize>()
    }

    /// Drops the packed lists after a change other than an add.
    fn changed(&mut self) {
        *self.packed.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The packed lists and their tail, built on first use.
    fn packed(&self, ctx: &Context) -> Result<Snapshot> {
        let mut held = self.packed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = held.as_ref() {
            return Ok(s.clone());
        }
        let (mut parts, mut codes) = (Vec::new(), Vec::new());
        let (mut offsets, mut slots) = (vec![0u64], Vec::new());
        for l in &self.lists {
            parts.extend(l.rows.blocks());
            codes.extend_from_slice(&l.codes);
            slots.extend(l.slots.iter().map(|&s| s as u64));
            offsets.push(slots.len() as u64);
        }
        let rows = match self.coding {
            None => PackedRows::F32(Box::new(DeviceMatrix::concat(ctx, &parts, self.dim)?)),
            Some(_) => PackedRows::Codes(Store::put(ctx, codes)?),
        };
        let s = Snapshot {
            lists: Arc::new(Packed {
                rows,
                offsets,
                slots,
                cache: BackendCache::default(),
            }),
            tail: None,
        };
        *held = Some(s.clone());
        Ok(s)
    }

    /// Keeps rows being added (slots `first..`, in `lists`; `codes`: their
    /// codes in coded lists) in the packed lists' tail, or drops the packed
    /// lists when the tail cannot take them (it is full, or the metric has
    /// no tail scan).
    fn grow_tail(
        &mut self,
        (rows, lists, codes): (MatrixView<'_>, &[usize], Option<&[u8]>),
        first: usize,
        dist: &Distance,
    ) -> Result<()> {
        let space = match &self.coding {
            Some(c) => Some(c.space),
            None => CodeSpace::of(dist).ok(),
        };
        let held = self.packed.get_mut().unwrap_or_else(|e| e.into_inner());
        let (Some(snap), Some(space)) = (held.as_mut(), space) else {
            *held = None;
            return Ok(());
        };
        let packed_rows = snap.lists.slots.len();
        let tail = snap
            .tail
            .get_or_insert_with(|| Arc::new(Tail::new(packed_rows, self.dim, space)));
        if !tail.takes(first, rows.rows(), packed_rows) {
            *held = None;
            return Ok(());
        }
        let Some(bytes) = codes else {
            Arc::make_mut(tail).push(rows, lists);
            return Ok(());
        };
        let recon = self.reconstruct(bytes, lists)?;
        let held = self.packed.get_mut().unwrap_or_else(|e| e.into_inner());
        let tail = held
            .as_mut()
            .and_then(|s| s.tail.as_mut())
            .expect("kept above");
        Arc::make_mut(tail).push(recon.view(), lists);
        Ok(())
    }

    /// The rows of `slots` gathered on the context's device: out of the
    /// packed lists where the backend scans those, else out of each list.
    pub fn gather_device(
        &self,
        ctx: &Context,
        q: &Input<'_>,
        slots: &[usize],
        dist: &Distance,
    ) -> Result<DeviceMatrix> {
        if let Some(exact) = self.coding.as_ref().and_then(|c| c.exact.as_ref()) {
            return exact.gather_device(ctx, slots);
        }
        if self.scans_packed(ctx, q, dist)?.is_none() || self.coding.is_some() {
            return DeviceMatrix::place(ctx, self.gather(slots)?);
        }
        let snap = self.packed(ctx)?;
        let (packed, tail) = (&snap.lists, snap.tail.as_deref());
        let PackedRows::F32(rows) = &packed.rows else {
            unreachable!("exact lists pack f32 rows")
        };
        // Slots in the tail follow every packed one: ascending slots split
        // into the packed ones, then the tail's.
        let tail = tail.filter(|t| !t.is_empty());
        if tail.is_some() && !slots.is_sorted() {
            return DeviceMatrix::place(ctx, self.gather(slots)?);
        }
        let split = tail.map_or(slots.len(), |t| slots.partition_point(|&s| s < t.first()));
        let (head, rest) = slots.split_at(split);
        let at: Vec<u64> = head
            .par_iter()
            .map(|&s| {
                let (l, p) = self.place[s];
                packed.offsets[l as usize] + p as u64
            })
            .collect();
        let head = ctx.backend().gather_rows(&Input::Resident(rows), &at);
        let Some(tail) = tail.filter(|_| !rest.is_empty()) else {
            return head;
        };
        let at: Vec<u64> = rest.iter().map(|&s| (s - tail.first()) as u64).collect();
        let rest = tail.gather_device(ctx, &at)?;
        if at.len() == slots.len() {
            return Ok(rest);
        }
        DeviceMatrix::concat(ctx, &[&head?, &rest], self.dim)
    }

    /// The validated metric when the backend scans these lists packed for
    /// `dist`, else `None`.
    fn scans_packed(
        &self,
        ctx: &Context,
        q: &Input<'_>,
        dist: &Distance,
    ) -> Result<Option<Prepared>> {
        let metric = prepare(ctx, q, &Input::Resident(self.centroids()?), dist)?;
        let packed = self
            .layout()
            .is_some_and(|l| ctx.backend().scans_packed_lists(&metric, &l));
        Ok(packed.then_some(metric))
    }

    /// The layout of the lists (`None` until coded lists are trained).
    fn layout(&self) -> Option<ListLayout> {
        let dim = self.dim;
        let Some(coding) = &self.coding else {
            return Some(ListLayout::F32 { dim });
        };
        Some(match coding.codec.as_ref()? {
            ListCodec::Sq(_) => ListLayout::Sq { dim },
            ListCodec::Pq(pq) => ListLayout::Pq {
                dim,
                m: pq.m(),
                nbits: pq.nbits(),
            },
        })
    }

    /// The packed rows as the backend scans them.
    fn list_data<'a>(&'a self, packed: &'a Packed) -> Result<ListData<'a>> {
        let centroids = self.centroids()?;
        let codec = self.coding.as_ref().and_then(|c| c.codec.as_ref());
        Ok(match (&packed.rows, codec) {
            (PackedRows::F32(m), _) => ListData::F32(m),
            (PackedRows::Codes(codes), Some(ListCodec::Sq(sq))) => ListData::Sq {
                codes,
                sq,
                centroids,
            },
            (PackedRows::Codes(codes), Some(ListCodec::Pq(pq))) => ListData::Pq {
                codes,
                pq,
                centroids,
            },
            (PackedRows::Codes(_), None) => unreachable!("codes are packed once trained"),
        })
    }

    /// The backend's own scan of the packed lists, when it has one.
    fn scan_packed(
        &self,
        ctx: &Context,
        q: &Input<'_>,
        (k, nprobe): (usize, usize),
        dist: &Distance,
        allowed: Option<&SlotSet>,
    ) -> Result<Option<Neighbors>> {
        let Some(metric) = self.scans_packed(ctx, q, dist)? else {
            return Ok(None);
        };
        let snap = self.packed(ctx)?;
        let packed = &snap.lists;
        trace::mark("packed", || drop(ctx.synchronize()));
        let probes = self.probe(ctx, q, nprobe, dist)?;
        trace::mark("probe", || drop(ctx.synchronize()));
        let lists: Vec<u32> = probes
            .ids()
            .iter()
            .map(|&l| if l == MISSING_ID { u32::MAX } else { l as u32 })
            .collect();
        let nprobe = probes.k();
        let nn = ctx.backend().ivf_scan(IvfScanJob {
            queries: q,
            rows: self.list_data(packed)?,
            offsets: &packed.offsets,
            slots: &packed.slots,
            probes: &lists,
            nprobe,
            k,
            metric: &metric,
            allowed: allowed.map(SlotSet::words),
            budget: ctx.memory_budget(),
            cache: &packed.cache,
        })?;
        match (nn, snap.tail.as_deref().filter(|t| !t.is_empty())) {
            (Some(nn), Some(tail)) => {
                let more = tail.search(ctx, q, (&lists, nprobe), k, dist, allowed)?;
                trace::mark("tail", || drop(ctx.synchronize()));
                Ok(Some(merge_best(&nn, &more, k)))
            }
            (nn, _) => Ok(nn),
        }
    }

    /// Trains the coarse quantizer on `data` (k-means, spherical for the
    /// cosine metrics; `progress` after each iteration), then the codec of
    /// coded lists on the residuals; the lists start empty.
    pub fn train(
        &mut self,
        ctx: &Context,
        data: &Input<'_>,
        dist: &Distance,
        progress: Option<ProgressFn>,
    ) -> Result<()> {
        let metric = dist.metric.canonical();
        let n = data.rows();
        let nlist = self.nlist.unwrap_or_else(|| recommended_nlist(n));
        if n < nlist {
            return Err(Error::invalid(
                "training vectors",
                n,
                format!("an IVF index of {nlist} lists needs at least {nlist} training vectors"),
            ));
        }
        let mut opts = KMeansOptions::new(nlist)
            .with_seed(TRAIN_SEED)
            .with_max_iterations(TRAIN_ITERATIONS)
            .with_spherical(matches!(metric, Metric::Cosine | Metric::CosineSimilarity))
            .with_max_training_points(nlist.saturating_mul(TRAIN_POINTS_PER_LIST));
        if nlist > PLUS_PLUS_MAX_LISTS {
            opts = opts.with_init(KMeansInit::Random);
        }
        opts.progress = progress;
        let km = kmeans(ctx, *data, &opts)?;
        self.set_centroids(ctx, km.centroids)?;
        self.train_codec(ctx, data, dist)
    }

    /// Trains the codec of coded lists on the training rows' residuals.
    fn train_codec(&mut self, ctx: &Context, data: &Input<'_>, dist: &Distance) -> Result<()> {
        let Some(coding) = &self.coding else {
            return Ok(());
        };
        let mut hold = None;
        let all = data.host_view(&mut hold)?;
        // A uniform sample at most: the codec sees enough residuals
        // without copying a large training set.
        let sample = (all.rows() > CODEC_TRAIN_POINTS).then(|| {
            let mut idx = sample_indices(all.rows(), CODEC_TRAIN_POINTS, TRAIN_SEED);
            idx.sort_unstable();
            gather_rows(all, &idx)
        });
        let rows = sample.as_ref().map_or(all, Matrix::view);
        let lists = self.assign(ctx, &Input::F32(rows), dist)?;
        let host = &self.centroids.as_ref().expect("trained above").0;
        let res = coding.space.residuals(rows, &lists, host);
        let codec = ListCodec::train(ctx, coding.encoding, res.view())?;
        self.coding.as_mut().expect("coded").codec = Some(codec);
        Ok(())
    }

    /// The list of each row of `data`.
    fn assign(&self, ctx: &Context, data: &Input<'_>, dist: &Distance) -> Result<Vec<usize>> {
        let nearest = self.probe(ctx, data, 1, dist)?;
        // A row with a NaN distance to every centroid goes to list 0.
        Ok(nearest
            .ids()
            .iter()
            .map(|&l| if l == MISSING_ID { 0 } else { l as usize })
            .collect())
    }

    /// Sets trained centroids (from training or a file); the lists start empty.
    pub fn set_centroids(&mut self, ctx: &Context, centroids: Matrix) -> Result<()> {
        let device = DeviceMatrix::place(ctx, centroids.clone())?;
        self.changed();
        self.nlist = Some(centroids.rows());
        self.lists = (0..centroids.rows())
            .map(|_| List {
                rows: RowBlocks::new(self.dim),
                codes: Vec::new(),
                slots: Vec::new(),
            })
            .collect();
        if let Some(exact) = self.coding.as_mut().and_then(|c| c.exact.as_mut()) {
            *exact = RowBlocks::new(self.dim);
        }
        self.centroids = Some((centroids, device));
        Ok(())
    }

    fn centroids(&self) -> Result<&DeviceMatrix> {
        self.centroids
            .as_ref()
            .map(|(_, d)| d)
            .ok_or_else(|| Error::NotTrained {
                what: "an IVF index".into(),
                operation: "this operation",
            })
    }

    /// The `n` nearest lists of every query, `[rows x n]`.
    pub fn probe(
        &self,
        ctx: &Context,
        q: &Input<'_>,
        n: usize,
        dist: &Distance,
    ) -> Result<Neighbors> {
        let opts = KnnOptions::default().with_metric(dist);
        knn_with(ctx, *q, self.centroids()?, n.min(self.lists.len()), &opts)
    }

    /// Adds the rows of `data` (slots `first..first + rows`; `rows`: the
    /// same rows on the host) to the lists of their nearest centroids.
    pub fn add(
        &mut self,
        ctx: &Context,
        (data, rows): (&Input<'_>, MatrixView<'_>),
        first: usize,
        dist: &Distance,
    ) -> Result<()> {
        let lists = self.assign(ctx, data, dist)?;
        let codes = self.encode(ctx, rows, &lists)?;
        let code_bytes = codes.as_ref().map(|(b, _)| b.as_slice());
        self.grow_tail((rows, &lists, code_bytes), first, dist)?;
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); self.lists.len()];
        for (r, &l) in lists.iter().enumerate() {
            members[l].push(r);
        }
        self.place.resize(first + rows.rows(), (0, 0));
        for (l, rs) in members.iter().enumerate().filter(|(_, rs)| !rs.is_empty()) {
            let list = &mut self.lists[l];
            for &r in rs {
                self.place[first + r] = (l as u32, list.slots.len() as u32);
                list.slots.push(first + r);
            }
            match &codes {
                Some((bytes, width)) => {
                    for &r in rs {
                        list.codes
                            .extend_from_slice(&bytes[r * width..(r + 1) * width]);
                    }
                }
                None => push_rows(ctx, list, gather_rows(rows, rs))?,
            }
        }
        if let Some(c) = self.coding.as_mut() {
            if let Some(exact) = c.exact.as_mut() {
                exact.push_matrix(ctx, c.space.prepare(rows))?;
            }
        }
        Ok(())
    }

    /// The codes of `rows` (in `lists`) and the bytes of one, for coded
    /// lists.
    fn encode(
        &self,
        ctx: &Context,
        rows: MatrixView<'_>,
        lists: &[usize],
    ) -> Result<Option<(Vec<u8>, usize)>> {
        let Some(coding) = &self.coding else {
            return Ok(None);
        };
        let codec = coding.codec.as_ref().expect("trained before adds");
        let host = &self.centroids.as_ref().expect("trained").0;
        let res = coding.space.residuals(rows, lists, host);
        Ok(Some((codec.encode(ctx, res.view())?, codec.row_bytes())))
    }

    /// The rows of `slots` (any order), copied to the host in that order:
    /// exact rows where the index keeps them, else decoded codes.
    pub fn gather(&self, slots: &[usize]) -> Result<Matrix> {
        match &self.coding {
            None => self.gather_exact(slots),
            Some(Coding {
                exact: Some(exact), ..
            }) => {
                let mut order: Vec<usize> = (0..slots.len()).collect();
                order.sort_unstable_by_key(|&i| slots[i]);
                let sorted: Vec<usize> = order.iter().map(|&i| slots[i]).collect();
                let m = exact.gather(&sorted)?;
                let mut out = vec![0.0f32; slots.len() * self.dim];
                for (j, &i) in order.iter().enumerate() {
                    out[i * self.dim..(i + 1) * self.dim].copy_from_slice(m.row(j));
                }
                Matrix::new(out, self.dim)
            }
            Some(_) => {
                let parts = slots.iter().map(|&s| {
                    let (l, p) = self.place[s];
                    (l as usize, p as usize)
                });
                self.decode(parts)
            }
        }
    }

    /// The decoded vectors at `(list, position)` of coded lists, in order.
    fn decode(&self, at: impl Iterator<Item = (usize, usize)>) -> Result<Matrix> {
        let coding = self.coding.as_ref().expect("coded lists");
        let w = coding.codec.as_ref().expect("trained").row_bytes();
        let (mut bytes, mut lists) = (Vec::new(), Vec::new());
        for (l, p) in at {
            bytes.extend_from_slice(&self.lists[l].codes[p * w..(p + 1) * w]);
            lists.push(l);
        }
        self.reconstruct(&bytes, &lists)
    }

    /// Vectors from their codes `bytes` in coded lists `lists` (the
    /// decoded residuals plus their lists' centroids).
    fn reconstruct(&self, bytes: &[u8], lists: &[usize]) -> Result<Matrix> {
        if lists.is_empty() {
            return Matrix::new(Vec::new(), self.dim);
        }
        let coding = self.coding.as_ref().expect("coded lists");
        let codec = coding.codec.as_ref().expect("trained");
        let host = &self.centroids.as_ref().expect("trained").0;
        let mut m = codec.decode(bytes)?;
        let dim = self.dim;
        for (r, &l) in m.as_mut_slice().chunks_exact_mut(dim).zip(lists) {
            r.iter_mut().zip(host.row(l)).for_each(|(v, c)| *v += c);
        }
        Ok(m)
    }

    /// The rows of list `l` decoded (`None` for exact lists).
    fn decoded_list(&self, ctx: &Context, l: usize) -> Result<Option<RowBlocks>> {
        if self.coding.is_none() {
            return Ok(None);
        }
        let m = self.decode((0..self.lists[l].slots.len()).map(|p| (l, p)))?;
        Ok(Some(RowBlocks::from_matrix(ctx, m)?))
    }

    /// [`gather`](Self::gather) from exact lists.
    fn gather_exact(&self, slots: &[usize]) -> Result<Matrix> {
        let mut by_list: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.lists.len()];
        for (i, &s) in slots.iter().enumerate() {
            let (l, p) = self.place[s];
            by_list[l as usize].push((p as usize, i));
        }
        let mut out = vec![0.0f32; slots.len() * self.dim];
        for (l, mut want) in by_list
            .into_iter()
            .enumerate()
            .filter(|(_, w)| !w.is_empty())
        {
            want.sort_unstable();
            let pos: Vec<usize> = want.iter().map(|&(p, _)| p).collect();
            let m = self.lists[l].rows.gather(&pos)?;
            for (j, &(_, i)) in want.iter().enumerate() {
                out[i * self.dim..(i + 1) * self.dim].copy_from_slice(m.row(j));
            }
        }
        Matrix::new(out, self.dim)
    }

    /// Drops deleted rows: `new_slot[old]` is the new slot of a kept row.
    pub fn compact(&mut self, ctx: &Context, new_slot: &[usize]) -> Result<()> {
        self.changed();
        let mut place = vec![(0, 0); new_slot.iter().filter(|&&s| s != usize::MAX).count()];
        let width = self.coding.as_ref().and_then(|c| c.codec.as_ref());
        let width = width.map(ListCodec::row_bytes);
        for (l, list) in self.lists.iter_mut().enumerate() {
            let keep: Vec<usize> = (0..list.slots.len())
                .filter(|&p| new_slot[list.slots[p]] != usize::MAX)
                .collect();
            if keep.len() != list.slots.len() {
                match width {
                    Some(w) => {
                        let codes = keep.iter().flat_map(|&p| &list.codes[p * w..(p + 1) * w]);
                        list.codes = codes.copied().collect();
                    }
                    None => list.rows.compact(ctx, &keep)?,
                }
            }
            list.slots = keep.iter().map(|&p| new_slot[list.slots[p]]).collect();
            for (p, &s) in list.slots.iter().enumerate() {
                place[s] = (l as u32, p as u32);
            }
        }
        self.place = place;
        if let Some(exact) = self.coding.as_mut().and_then(|c| c.exact.as_mut()) {
            let kept: Vec<usize> = (0..new_slot.len())
                .filter(|&s| new_slot[s] != usize::MAX)
                .collect();
            exact.compact(ctx, &kept)?;
        }
        Ok(())
    }

    /// The `k` nearest allowed rows of every query among its `nprobe`
    /// nearest lists, by slot (ties by the smaller slot).
    pub fn search(
        &self,
        ctx: &Context,
        q: &Input<'_>,
        (k, nprobe): (usize, usize),
        dist: &Distance,
        allowed: Option<&SlotSet>,
    ) -> Result<Neighbors> {
        if let Some(nn) = self.scan_packed(ctx, q, (k, nprobe), dist, allowed)? {
            return Ok(nn);
        }
        let order = dist.metric.canonical().order();
        let groups = self.groups(ctx, q, nprobe, dist)?;
        let mut hold = None;
        let qv = q.host_view(&mut hold)?;
        let scan = |(l, qs): (usize, &Vec<usize>)| -> Result<(usize, Neighbors)> {
            Ok((
                l,
                self.scan_list(ctx, l, gather_rows(qv, qs), k, dist, allowed)?,
            ))
        };
        let work: Vec<(usize, &Vec<usize>)> = groups
            .iter()
            .enumerate()
            .filter(|(l, qs)| !qs.is_empty() && !self.lists[*l].slots.is_empty())
            .collect();
        let parts: Vec<(usize, Neighbors)> = if ctx.is_cuda() {
            work.into_iter().map(scan).collect::<Result<_>>()?
        } else {
            work.into_par_iter().map(scan).collect::<Result<_>>()?
        };
        Ok(merge_by_query(qv.rows(), k, order, &groups, parts))
    }

    /// The queries probing each list (`nprobe` lists per query).
    fn groups(
        &self,
        ctx: &Context,
        q: &Input<'_>,
        nprobe: usize,
        dist: &Distance,
    ) -> Result<Vec<Vec<usize>>> {
        let probes = self.probe(ctx, q, nprobe, dist)?;
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.lists.len()];
        for (r, row) in probes.ids().chunks_exact(probes.k()).enumerate() {
            for &l in row.iter().filter(|&&l| l != MISSING_ID) {
                groups[l as usize].push(r);
            }
        }
        Ok(groups)
    }

    /// The `(distance, slot)` pairs within `radius` of each query among the
    /// allowed rows of its `nprobe` nearest lists (unsorted).
    pub fn range(
        &self,
        ctx: &Context,
        q: &Input<'_>,
        (radius, nprobe): (f32, usize),
        dist: &Distance,
        allowed: Option<&SlotSet>,
    ) -> Result<Vec<Vec<(f32, usize)>>> {
        let groups = self.groups(ctx, q, nprobe, dist)?;
        let mut hold = None;
        let qv = q.host_view(&mut hold)?;
        let mut hits = vec![Vec::new(); qv.rows()];
        for (l, qs) in groups.iter().enumerate() {
            let list = &self.lists[l];
            if qs.is_empty() || list.slots.is_empty() {
                continue;
            }
            let local =
                allowed.map(|a| SlotSet::build(list.slots.len(), |p| a.contains(list.slots[p])));
            let sub = gather_rows(qv, qs);
            let decoded = self.decoded_list(ctx, l)?;
            let found = range::scan(
                ctx,
                decoded.as_ref().unwrap_or(&list.rows),
                &Input::F32(sub.view()),
                (radius, dist),
                local.as_ref(),
            )?;
            for (i, h) in found.into_iter().enumerate() {
                hits[qs[i]].extend(h.into_iter().map(|(d, p)| (d, list.slots[p])));
            }
        }
        Ok(hits)
    }

    /// The `k` nearest allowed rows of a list for each of `queries`, by slot.
    fn scan_list(
        &self,
        ctx: &Context,
        l: usize,
        queries: Matrix,
        k: usize,
        dist: &Distance,
        allowed: Option<&SlotSet>,
    ) -> Result<Neighbors> {
        let list = &self.lists[l];
        let local =
            allowed.map(|a| SlotSet::build(list.slots.len(), |p| a.contains(list.slots[p])));
        let q = Input::F32(queries.view());
        let decoded = self.decoded_list(ctx, l)?;
        let rows = decoded.as_ref().unwrap_or(&list.rows);
        let mut nn = exact::search(ctx, rows, &q, k, dist, local.as_ref())?;
        nn.map_ids(|p| list.slots[p as usize] as u64);
        Ok(nn)
    }
}

/// Appends exact rows to a list, merging its blocks when there are many.
fn push_rows(ctx: &Context, list: &mut List, m: Matrix) -> Result<()> {
    list.rows.push_matrix(ctx, m)?;
    if list.rows.block_count() > MAX_LIST_BLOCKS {
        let all: Vec<usize> = (0..list.rows.rows()).collect();
        list.rows.compact(ctx, &all)?;
    }
    Ok(())
}

/// Each query's best `k` of the candidates its lists returned (`parts`:
/// per list, one row per query of `groups[list]`), ties by the smaller slot.
fn merge_by_query(
    nq: usize,
    k: usize,
    order: Order,
    groups: &[Vec<usize>],
    parts: Vec<(usize, Neighbors)>,
) -> Neighbors {
    let mut cand: Vec<Vec<(u32, u64, f32)>> = vec![Vec::new(); nq];
    for (l, nn) in &parts {
        for (i, &q) in groups[*l].iter().enumerate() {
            let hits = nn.row_ids(i).iter().zip(nn.row_distances(i));
            cand[q].extend(
                hits.filter(|(&id, _)| id != MISSING_ID)
                    .map(|(&id, &d)| (sort_key(d, order), id, d)),
            );
        }
    }
    let mut ids = vec![MISSING_ID; nq * k];
    let mut dist = vec![missing_value(order); nq * k];
    ids.par_chunks_mut(k)
        .zip(dist.par_chunks_mut(k))
        .zip(cand.par_iter_mut())
        .for_each(|((ids, dist), c)| exact::write_best(c, ids, dist));
    Neighbors::from_parts(nq, k, order, ids, dist).expect("nq * k results")
}

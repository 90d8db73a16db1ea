//! Product quantization: the dimensions are cut into `M` sub-spaces, each
//! with its own codebook of `2^nbits` centroids trained by k-means; a row's
//! code is the index of the nearest centroid in each sub-space. Search
//! compares a query with codes through per-query lookup tables
//! (asymmetric distance computation).

use super::inputs::{check_f32, view_or_download};
use super::rerank::{rerank_exact, shortlist_len, Rerank};
use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::Metric;
use crate::core::neighbors::Neighbors;
use crate::core::quantize::{code_metric, layout, pack_codes, PqOptions, ProductQuantizer};
use crate::core::rng::sample_indices;
use crate::ops::cluster::lloyd::{self, Lloyd};
use crate::ops::cluster::{check_finite, max_abs, KMeansProgress};
use crate::runtime::codes::{check_device, PqCodes, Store};
use crate::runtime::context::{Context, Engine};
use crate::runtime::input::Input;
use crate::{cpu, cuda};

impl ProductQuantizer {
    /// Trains the `m` codebooks on `data` with k-means (random
    /// initialisation from distinct training rows, seeded; empty clusters
    /// re-seeded from the farthest points). On CUDA every sub-space is
    /// assigned and updated in one launch per step.
    pub fn train<'a>(ctx: &Context, data: impl Into<Input<'a>>, opts: PqOptions) -> Result<Self> {
        Self::train_with_progress(ctx, data, opts, &mut |_| {})
    }

    /// [`train`](Self::train), calling `progress` after each k-means
    /// iteration (all sub-spaces together: `inertia` sums every sub-space's
    /// squared distances, `changed` counts sub-space codes that changed,
    /// `reseeded` the empty centroids re-seeded).
    ///
    /// ```
    /// use vector_accelerate::quantize::{PqOptions, ProductQuantizer};
    /// use vector_accelerate::{Context, Matrix};
    /// let x = Matrix::new((0..4096).map(|i| (i as f32 * 0.37).sin()).collect(), 8)?;
    /// let mut inertia = Vec::new();
    /// let opts = PqOptions::new(2, 4).with_iterations(5);
    /// ProductQuantizer::train_with_progress(&Context::cpu(), &x, opts, &mut |p| inertia.push(p.inertia))?;
    /// assert_eq!(inertia.len(), 5);
    /// assert!(inertia[4] <= inertia[0]);
    /// # Ok::<(), vector_accelerate::Error>(())
    /// ```
    pub fn train_with_progress<'a>(
        ctx: &Context,
        data: impl Into<Input<'a>>,
        opts: PqOptions,
        progress: &mut dyn FnMut(&KMeansProgress),
    ) -> Result<Self> {
        let data = data.into();
        check_f32(&data, "product quantizer training data")?;
        let dim = data.dim();
        let dsub = layout(dim, opts.m, opts.nbits, opts.pad)?;
        if opts.iterations == 0 {
            return Err(Error::invalid("iterations", 0, "must be at least 1"));
        }
        let mut hold = None;
        let all = view_or_download(&data, &mut hold)?;
        check_finite(all, "product quantizer training data")?;
        let n = all.rows();
        let kc = 1usize << opts.nbits;
        let sample = match opts.max_training_points {
            Some(p) if p < n => Some(sample_indices(n, p, opts.seed ^ 0xA5A5)),
            _ => None,
        };
        let n_train = sample.as_ref().map_or(n, |s| s.len());
        if n_train < kc {
            return Err(Error::invalid(
                "training points",
                n_train,
                format!(
                    "fewer than the {kc} centroids of a sub-space (nbits {}); give at least {kc} rows",
                    opts.nbits
                ),
            ));
        }
        let train = padded_rows(all, sample.as_deref(), opts.m * dsub);
        let centroids = train_codebooks(ctx, train.view(), opts.m, dsub, kc, opts, progress)?;
        Ok(Self {
            dim,
            m: opts.m,
            nbits: opts.nbits,
            dsub,
            centroids,
        })
    }

    /// A quantizer from codebooks (`m x 2^nbits x dsub` values with
    /// `dsub = ceil(dim / m)`).
    pub fn from_centroids(dim: usize, m: usize, nbits: u32, centroids: Vec<f32>) -> Result<Self> {
        let dsub = layout(dim, m, nbits, true)?;
        let want = m * (1usize << nbits) * dsub;
        if centroids.len() != want {
            return Err(Error::DimensionMismatch {
                what: "product quantizer centroids (m x 2^nbits x dsub)",
                expected: want,
                got: centroids.len(),
            });
        }
        if let Some(v) = centroids.iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid("centroid", v, "centroids must be finite"));
        }
        Ok(Self {
            dim,
            m,
            nbits,
            dsub,
            centroids,
        })
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Sub-spaces.
    pub fn m(&self) -> usize {
        self.m
    }
    /// Bits per code.
    pub fn nbits(&self) -> u32 {
        self.nbits
    }
    /// Dimensions per sub-space (the last ones padded with zeros when `m`
    /// does not divide the dimension).
    pub fn dsub(&self) -> usize {
        self.dsub
    }
    /// Centroids per sub-space.
    pub fn centroids_per_subspace(&self) -> usize {
        1 << self.nbits
    }
    /// All codebooks, `m x 2^nbits x dsub`.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    fn check_rows(&self, i: &Input<'_>, what: &'static str) -> Result<()> {
        check_f32(i, what)?;
        if i.dim() != self.dim {
            return Err(Error::DimensionMismatch {
                what,
                expected: self.dim,
                got: i.dim(),
            });
        }
        Ok(())
    }

    /// Encodes rows: in each sub-space the nearest centroid by squared L2
    /// (ties: the smaller index). Codes live on `ctx`'s device.
    pub fn encode<'a>(&self, ctx: &Context, data: impl Into<Input<'a>>) -> Result<PqCodes> {
        let data = data.into();
        self.check_rows(&data, "rows to encode")?;
        let bytes = match ctx.engine() {
            Engine::Cuda(dev) => {
                Store::Cuda(dev.clone(), cuda::quantize::pq_encode(dev, self, &data)?)
            }
            Engine::Cpu => {
                let mut hold = None;
                let v = view_or_download(&data, &mut hold)?;
                let (codes, _) = cpu::cluster::nearest_centroids(
                    v,
                    &self.centroids,
                    self.m,
                    self.dsub,
                    1 << self.nbits,
                );
                Store::Host(pack_codes(&codes, self.m, self.nbits))
            }
        };
        Ok(PqCodes {
            rows: data.rows(),
            m: self.m,
            nbits: self.nbits,
            bytes,
        })
    }

    pub(crate) fn check_codes(&self, ctx: &Context, codes: &PqCodes) -> Result<()> {
        check_device(codes.device(), ctx)?;
        if codes.m != self.m || codes.nbits != self.nbits {
            return Err(Error::invalid(
                "codes",
                format!("M {} nbits {}", codes.m, codes.nbits),
                format!("the quantizer has M {} nbits {}", self.m, self.nbits),
            ));
        }
        Ok(())
    }

    /// Decodes codes to `f32` rows on the host (each sub-space's centroid).
    pub fn decode(&self, ctx: &Context, codes: &PqCodes) -> Result<Matrix> {
        self.check_codes(ctx, codes)?;
        let bytes = codes.bytes.to_vec()?;
        Ok(cpu::quantize::pq_decode(self, &bytes, codes.rows))
    }

    /// Per-query lookup tables (`nq x m x 2^nbits`): squared L2 distance
    /// (or inner product) of each query's sub-vector to each centroid.
    pub fn lookup_tables(&self, queries: MatrixView<'_>, metric: Metric) -> Result<Vec<f32>> {
        let metric = code_metric(metric)?;
        self.check_rows(&Input::F32(queries), "queries")?;
        Ok(cpu::quantize::pq_tables(self, queries, metric))
    }

    /// The `k` nearest codes of each query by asymmetric distance (`l2`
    /// smallest first, or `ip` largest first: the sum over sub-spaces of the
    /// lookup table entries of the row's codes), ties by the smaller index;
    /// optionally re-ranked with the original vectors.
    pub fn search<'a>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        codes: &PqCodes,
        k: usize,
        metric: Metric,
        rerank: Option<Rerank<'_>>,
    ) -> Result<Neighbors> {
        let metric = code_metric(metric)?;
        self.check_codes(ctx, codes)?;
        let q = queries.into();
        self.check_rows(&q, "queries")?;
        if k == 0 {
            return Err(Error::InvalidK { k });
        }
        let kk = shortlist_len(k, rerank.as_ref())?;
        let mut hold = None;
        let qv = view_or_download(&q, &mut hold)?;
        let nn = match ctx.engine() {
            Engine::Cuda(dev) => cuda::quantize::pq_search(dev, self, qv, codes, kk, metric)?,
            Engine::Cpu => {
                let bytes = codes.bytes.host().expect("host codes on a CPU context");
                cpu::quantize::pq_search(self, qv, bytes, codes.rows, kk, metric)
            }
        };
        match rerank {
            Some(r) => rerank_exact(ctx, &q, &r.base, &nn, k, metric, codes.rows),
            None => Ok(nn),
        }
    }
}

/// Rows (all, or `idx`) zero-padded to `width` columns.
fn padded_rows(m: MatrixView<'_>, idx: Option<&[usize]>, width: usize) -> Matrix {
    let d = m.dim();
    let rows: Box<dyn Iterator<Item = usize>> = match idx {
        Some(i) => Box::new(i.iter().copied()),
        None => Box::new(0..m.rows()),
    };
    let mut v = Vec::with_capacity(m.rows() * width);
    for r in rows {
        v.extend_from_slice(m.row(r));
        v.extend(std::iter::repeat_n(0.0, width - d));
    }
    Matrix::new(v, width).expect("non-empty")
}

/// Batched Lloyd iterations over the `m` sub-spaces of `train` (already
/// padded to `m * ds` columns): random distinct rows as initial centroids
/// (one draw per sub-space), then assignment and update of every sub-space
/// together; empty clusters take the row farthest from its centroid.
fn train_codebooks(
    ctx: &Context,
    train: MatrixView<'_>,
    m: usize,
    ds: usize,
    kc: usize,
    opts: PqOptions,
    progress: &mut dyn FnMut(&KMeansProgress),
) -> Result<Vec<f32>> {
    let n = train.rows();
    let mut cent = vec![0f32; m * kc * ds];
    for j in 0..m {
        let idx = sample_indices(n, kc, opts.seed.wrapping_add(j as u64));
        for (c, &r) in idx.iter().enumerate() {
            let dst = &mut cent[(j * kc + c) * ds..(j * kc + c + 1) * ds];
            dst.copy_from_slice(&train.row(r)[j * ds..(j + 1) * ds]);
        }
    }
    // On CUDA the training rows stay on the device for every iteration.
    let resident = ctx.is_cuda().then(|| ctx.upload(train)).transpose()?;
    let lloyd = Lloyd {
        points: resident.as_ref().map_or(Input::F32(train), Input::Resident),
        host: train,
        groups: m,
        group_dim: ds,
        k: kc,
        spherical: false,
        max_abs: max_abs(train),
        max_iterations: opts.iterations,
        tolerance: None,
    };
    Ok(lloyd::run(ctx, &lloyd, cent, progress)?.centroids)
}

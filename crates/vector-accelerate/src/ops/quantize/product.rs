//! Product quantization: the dimensions are cut into `M` sub-spaces, each
//! with its own codebook of `2^nbits` centroids trained by k-means; a row's
//! code is the index of the nearest centroid in each sub-space. Search
//! compares a query with codes through per-query lookup tables
//! (asymmetric distance computation).

use super::codec::{wrong_kind, Codec, SearchOptions};
use super::inputs::check_f32;
use super::rerank::{finish, shortlist_len};
use crate::core::error::{Error, Result};
use crate::core::matrix::{Matrix, MatrixView};
use crate::core::metric::Metric;
use crate::core::neighbors::Neighbors;
use crate::core::quantize::{
    code_metric, layout, pq_row_bytes, PqOptions, ProductQuantizer, Quantizer,
};
use crate::core::rng::sample_indices;
use crate::cpu;
use crate::ops::cluster::lloyd::{self, Lloyd};
use crate::ops::cluster::{check_finite, max_abs, KMeansProgress};
use crate::runtime::codes::{check_device, PqCodes};
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

impl Codec for ProductQuantizer {
    type Options = PqOptions;
    type Codes = PqCodes;

    /// The `m` codebooks by k-means (random initialisation from distinct
    /// training rows, seeded; empty clusters re-seeded from the farthest
    /// points). On CUDA every sub-space is assigned and updated in one
    /// launch per step.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use vector_accelerate::quantize::{Codec, PqOptions, ProductQuantizer};
    /// use vector_accelerate::{Context, Matrix};
    /// let x = Matrix::new((0..4096).map(|i| (i as f32 * 0.37).sin()).collect(), 8)?;
    /// let inertia = Arc::new(Mutex::new(Vec::new()));
    /// let seen = inertia.clone();
    /// let opts = PqOptions::new(2, 4)
    ///     .with_iterations(5)
    ///     .with_progress(move |p| seen.lock().unwrap().push(p.inertia));
    /// ProductQuantizer::train(&Context::cpu(), &x, &opts)?;
    /// let inertia = inertia.lock().unwrap();
    /// assert_eq!(inertia.len(), 5);
    /// assert!(inertia[4] <= inertia[0]);
    /// # Ok::<(), vector_accelerate::Error>(())
    /// ```
    fn train<'a>(ctx: &Context, data: impl Into<Input<'a>>, opts: &PqOptions) -> Result<Self> {
        let data = data.into();
        check_f32(&data, "product quantizer training data")?;
        let dim = data.dim();
        let dsub = layout(dim, opts.m, opts.nbits, opts.pad)?;
        if opts.iterations == 0 {
            return Err(Error::invalid("iterations", 0, "must be at least 1"));
        }
        let mut hold = None;
        let all = data.host_view(&mut hold)?;
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
        let centroids = train_codebooks(ctx, train.view(), (opts.m, dsub, kc), opts)?;
        Ok(Self {
            dim,
            m: opts.m,
            nbits: opts.nbits,
            dsub,
            centroids,
        })
    }

    fn dim(&self) -> usize {
        self.dim
    }

    /// `m` codes of `nbits` bits, in whole bytes.
    fn code_size(&self) -> usize {
        pq_row_bytes(self.m, self.nbits)
    }

    /// In each sub-space the nearest centroid by squared L2 (ties: the
    /// smaller index).
    fn encode<'a>(&self, ctx: &Context, data: impl Into<Input<'a>>) -> Result<PqCodes> {
        let data = data.into();
        self.check_rows(&data, "rows to encode")?;
        ctx.backend().pq_encode(self, &data)
    }

    /// Each sub-space's centroid.
    fn decode(&self, ctx: &Context, codes: &PqCodes) -> Result<DeviceMatrix> {
        self.check_codes(ctx, codes)?;
        ctx.backend().pq_decode(self, codes)
    }

    /// By asymmetric distance (`l2` smallest first, or `ip` largest first:
    /// the sum over sub-spaces of the lookup table entries of the row's
    /// codes), ties by the smaller index.
    fn search<'a>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        codes: &PqCodes,
        k: usize,
        opts: &SearchOptions<'_>,
    ) -> Result<Neighbors> {
        let metric = code_metric(opts.metric)?;
        self.check_codes(ctx, codes)?;
        let q = queries.into();
        self.check_rows(&q, "queries")?;
        if k == 0 {
            return Err(Error::InvalidK { k });
        }
        let kk = shortlist_len(k, opts.rerank.as_ref())?;
        let mut hold = None;
        let qv = q.host_view(&mut hold)?;
        let nn = ctx.backend().pq_search(self, qv, codes, kk, metric)?;
        finish(ctx, &q, nn, (k, codes.rows), opts)
    }

    fn to_quantizer(&self) -> Quantizer {
        Quantizer::Product(self.clone())
    }

    fn from_quantizer(q: Quantizer) -> Result<Self> {
        match q {
            Quantizer::Product(p) => Ok(p),
            other => Err(wrong_kind(&other, "product")),
        }
    }
}

impl ProductQuantizer {
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

    /// Per-query lookup tables (`nq x m x 2^nbits`): squared L2 distance
    /// (or inner product) of each query's sub-vector to each centroid.
    pub fn lookup_tables(&self, queries: MatrixView<'_>, metric: Metric) -> Result<Vec<f32>> {
        let metric = code_metric(metric)?;
        self.check_rows(&Input::F32(queries), "queries")?;
        Ok(cpu::quantize::pq_tables(self, queries, metric))
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
    (m, ds, kc): (usize, usize, usize),
    opts: &PqOptions,
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
    let mut progress = |p: &KMeansProgress| {
        if let Some(f) = &opts.progress {
            f(p)
        }
    };
    Ok(lloyd::run(ctx, &lloyd, cent, &mut progress)?.centroids)
}

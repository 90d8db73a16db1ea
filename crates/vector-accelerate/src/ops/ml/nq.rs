//! Neural quantization: an encoder to a small latent, per-vector int8 codes
//! of the latent (each vector's scale kept), and a decoder back.

use super::linear::Linear;
use crate::core::error::{Error, Result};
use crate::core::linalg::Activation;
use crate::core::neighbors::Neighbors;
use crate::core::precision::Precision;
use crate::core::quantize::{ScalarBits, ScalarOptions, ScalarQuantizer, ScalarRange, ScalarScope};
use crate::ops::quantize::{Codec, SearchOptions};
use crate::ops::vector::normalize_in_place;
use crate::runtime::backend::{BackendCache, NqDecodeJob, NqEncodeJob};
use crate::runtime::codes::ScalarCodes;
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// The original's encoder/decoder shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NqPreset {
    /// 768 -> 128 (24x smaller than the f32 vector, with its 4-byte scale: 23.3x).
    D768To128,
    /// 768 -> 64.
    D768To64,
    /// 384 -> 64.
    D384To64,
}

impl NqPreset {
    /// `(d_in, latent)`.
    pub fn dims(self) -> (usize, usize) {
        match self {
            NqPreset::D768To128 => (768, 128),
            NqPreset::D768To64 => (768, 64),
            NqPreset::D384To64 => (384, 64),
        }
    }
}

/// Options of a [`NeuralQuantizer`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct NqOptions {
    /// Activation of the encoder, `z = act(W_e x + b_e)` (default none).
    pub activation: Activation,
    /// Scale each latent to unit L2 norm before quantising (default off;
    /// a zero latent stays zero).
    pub normalize_latent: bool,
    /// Precision of the encoder and decoder GEMMs (default `Exact`).
    pub precision: Precision,
}

impl Default for NqOptions {
    fn default() -> Self {
        Self {
            activation: Activation::None,
            normalize_latent: false,
            precision: Precision::Exact,
        }
    }
}

impl NqOptions {
    /// Sets the encoder's activation.
    pub fn with_activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    /// Normalises latents to unit length.
    pub fn with_normalized_latent(mut self, on: bool) -> Self {
        self.normalize_latent = on;
        self
    }
    /// Sets the GEMM precision.
    pub fn with_precision(mut self, p: Precision) -> Self {
        self.precision = p;
        self
    }
}

/// How close reconstructions are to the originals (computed in fp64).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fidelity {
    /// Mean squared error per value.
    pub mse: f64,
    /// Mean over rows of the cosine similarity of a row and its
    /// reconstruction (1 when both are zero, 0 when one is).
    pub mean_cosine: f64,
    /// Signal-to-noise ratio `10 log10(sum x^2 / sum (x - x')^2)` in dB
    /// (`inf` for an exact reconstruction).
    pub snr_db: f64,
}

/// Reconstruction quality of a [`NeuralQuantizer`] on some data: through the
/// int8 codes, and through the f32 latent (the loss of the encoder and
/// decoder alone), so the share of the int8 step is visible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reconstruction {
    /// `decode(encode(x))`.
    pub int8: Fidelity,
    /// The decoder applied to the unquantised latent.
    pub f32_latent: Fidelity,
}

/// Neural quantization: `z = act(W_e x + b_e)`, optionally scaled
/// to unit length, stored as per-vector symmetric int8 codes with each
/// vector's own scale kept (`scale = max |z| / 127`, codes
/// `round(z / scale)` in `-127..=127`; never an averaged scale), and decoded
/// by `x' = W_d (codes * scale) + b_d`.
///
/// The codes are [`ScalarCodes`] of a per-vector symmetric int8
/// [`ScalarQuantizer`], so everything the quantize family does with codes
/// (search, re-rank, bytes, files) applies to them.
///
/// ```
/// use vector_accelerate::ml::{Linear, NeuralQuantizer, NqOptions};
/// use vector_accelerate::{Context, Matrix, Metric};
/// let ctx = Context::cpu();
/// // 3 -> 2 -> 3: keep the first two coordinates.
/// let enc = Matrix::new(vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0], 3)?;
/// let dec = Matrix::new(vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0], 2)?;
/// let nq = NeuralQuantizer::new(
///     Linear::new(&ctx, &enc, None)?,
///     Linear::new(&ctx, &dec, None)?,
///     &NqOptions::default(),
/// )?;
/// let x = Matrix::new(vec![127.0, -63.5, 5.0], 3)?;
/// let codes = nq.encode(&ctx, &x)?;
/// // Two int8 codes and the vector's own scale, max |z| / 127 = 1.
/// let host = codes.to_host()?;
/// assert_eq!(host.as_bytes().unwrap(), &[127u8, (-64i8) as u8]);
/// assert_eq!(host.vector_params().unwrap().0, &[1.0]);
/// assert_eq!(nq.decode(&ctx, &codes)?.to_host()?.as_slice(), &[127.0, -64.0, 0.0]);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
#[derive(Debug)]
pub struct NeuralQuantizer {
    encoder: Linear,
    decoder: Linear,
    opts: NqOptions,
    codes: ScalarQuantizer,
    /// What the backend keeps of the decoder between decodes (on CUDA its
    /// weight in 16-bit pieces, made on first use).
    cache: BackendCache,
}

impl NeuralQuantizer {
    /// A quantizer from an encoder (`d_in -> latent`) and a decoder
    /// (`latent -> d_in`).
    pub fn new(encoder: Linear, decoder: Linear, opts: &NqOptions) -> Result<Self> {
        if decoder.d_in() != encoder.d_out() {
            return Err(Error::DimensionMismatch {
                what: "d_in of the decoder vs the latent width (d_out of the encoder)",
                expected: encoder.d_out(),
                got: decoder.d_in(),
            });
        }
        if decoder.d_out() != encoder.d_in() {
            return Err(Error::DimensionMismatch {
                what: "d_out of the decoder vs d_in of the encoder",
                expected: encoder.d_in(),
                got: decoder.d_out(),
            });
        }
        let codes = ScalarQuantizer {
            opts: ScalarOptions {
                bits: ScalarBits::Int8,
                range: ScalarRange::Symmetric,
                scope: ScalarScope::PerVector,
                clip: None,
            },
            dim: encoder.d_out(),
            scale: Vec::new(),
            inv: Vec::new(),
            offset: Vec::new(),
        };
        Ok(Self {
            encoder,
            decoder,
            opts: *opts,
            codes,
            cache: BackendCache::default(),
        })
    }

    /// An untrained quantizer of a preset's shape with Xavier weights (the
    /// encoder from `seed`, the decoder from `seed + 1`) and no biases: for
    /// trying the pipeline and measuring speed. Fit real weights (e.g.
    /// [`Pca`](super::pca::Pca)) or load them for useful reconstructions.
    pub fn xavier(ctx: &Context, preset: NqPreset, seed: u64, opts: &NqOptions) -> Result<Self> {
        let (d, l) = preset.dims();
        Self::new(
            Linear::xavier(ctx, d, l, seed)?,
            Linear::xavier(ctx, l, d, seed.wrapping_add(1))?,
            opts,
        )
    }

    /// A linear quantizer from a PCA fit: the encoder projects centred
    /// vectors on the components, the decoder maps back and adds the mean
    /// (see [`Pca::encoder`](super::pca::Pca::encoder)). The fit's
    /// `n_components` is the latent width.
    pub fn from_pca(ctx: &Context, pca: &super::pca::Pca, opts: &NqOptions) -> Result<Self> {
        Self::new(pca.encoder(ctx)?, pca.decoder(ctx)?, opts)
    }

    /// A quantizer from the tensors of a store, named as PyTorch names the
    /// parameters of two `nn.Linear` layers: `{prefix}encoder.weight`
    /// (`[latent, d_in]`), `{prefix}decoder.weight` (`[d_in, latent]`) and,
    /// when present, `{prefix}encoder.bias` / `{prefix}decoder.bias`.
    /// Shapes are checked (typed errors name the tensor and both shapes);
    /// device copies are the store's cached ones.
    pub fn from_store(
        ctx: &Context,
        store: &super::weights::WeightStore,
        prefix: &str,
        opts: &NqOptions,
    ) -> Result<Self> {
        let name = |s: &str| format!("{prefix}{s}");
        let enc = store.get(&name("encoder.weight"))?;
        let &[latent, d_in] = enc.shape() else {
            return Err(Error::invalid(
                "tensor shape",
                format!("'{}' {:?}", name("encoder.weight"), enc.shape()),
                "an encoder weight is a 2-D tensor [latent, d_in]",
            ));
        };
        let bias = |s: &str| store.contains(&name(s)).then(|| name(s));
        let (eb, db) = (bias("encoder.bias"), bias("decoder.bias"));
        Self::new(
            store.linear(ctx, &name("encoder.weight"), eb.as_deref(), (d_in, latent))?,
            store.linear(ctx, &name("decoder.weight"), db.as_deref(), (latent, d_in))?,
            opts,
        )
    }

    /// Puts the encoder and decoder into `store` under the names
    /// [`from_store`](Self::from_store) reads (f32 tensors, biases only
    /// when the maps have them), ready to be saved as a safetensors file.
    pub fn save(&self, store: &mut super::weights::WeightStore, prefix: &str) -> Result<()> {
        for (what, lin) in [("encoder", &self.encoder), ("decoder", &self.decoder)] {
            let w = lin.weight().to_host()?.into_vec();
            store.insert_f32(
                &format!("{prefix}{what}.weight"),
                &[lin.d_out(), lin.d_in()],
                w,
            )?;
            if let Some(b) = lin.bias() {
                store.insert_f32(&format!("{prefix}{what}.bias"), &[lin.d_out()], b.to_vec())?;
            }
        }
        Ok(())
    }

    /// Input (and output) width.
    pub fn d_in(&self) -> usize {
        self.encoder.d_in()
    }

    /// Latent width.
    pub fn latent(&self) -> usize {
        self.encoder.d_out()
    }

    /// The encoder.
    pub fn encoder(&self) -> &Linear {
        &self.encoder
    }

    /// The decoder.
    pub fn decoder(&self) -> &Linear {
        &self.decoder
    }

    /// The options.
    pub fn options(&self) -> NqOptions {
        self.opts
    }

    /// The per-vector int8 quantizer of the latents (for searching codes or
    /// reading their scales).
    pub fn code_quantizer(&self) -> &ScalarQuantizer {
        &self.codes
    }

    /// The f32 latents `act(W_e x + b_e)` (unit length when
    /// `normalize_latent`), on the context's device.
    pub fn encode_latent<'a>(
        &self,
        ctx: &Context,
        x: impl Into<Input<'a>>,
    ) -> Result<DeviceMatrix> {
        let mut z = self
            .encoder
            .apply(ctx, x, self.opts.activation, self.opts.precision)?;
        if self.opts.normalize_latent {
            normalize_in_place(ctx, &mut z)?;
        }
        Ok(z)
    }

    /// Int8 codes of the latents, with each vector's scale, on the
    /// context's device.
    ///
    /// On CUDA, for latents of up to 128 values, no activation or ReLU, and
    /// `Exact` or `Tf32`, one fused kernel reads `x` once: the encoder
    /// product on tensor cores (`Exact`: three TF32 products of split
    /// operands, near-fp32; `Tf32`: one), then bias, activation, unit
    /// length and the codes from the latent kept on chip. Otherwise the
    /// encoder GEMM, then the SQ encode of the latent.
    pub fn encode<'a>(&self, ctx: &Context, x: impl Into<Input<'a>>) -> Result<ScalarCodes> {
        let x = x.into();
        self.check_input(&x)?;
        if let Input::Resident(d) = &x {
            d.check_device(ctx)?;
        }
        let job = NqEncodeJob {
            x: &x,
            weight: self.encoder.weight(),
            bias: self.encoder.bias(),
            activation: self.opts.activation,
            normalize: self.opts.normalize_latent,
            precision: self.opts.precision,
        };
        if let Some(codes) = ctx.backend().nq_encode(job)? {
            return Ok(codes);
        }
        let z = self.encode_latent(ctx, x)?;
        self.codes.encode(ctx, &z)
    }

    fn check_input(&self, x: &Input<'_>) -> Result<()> {
        if x.rows() == 0 {
            return Err(Error::EmptyInput { what: "input" });
        }
        if x.dim() != self.d_in() {
            return Err(Error::DimensionMismatch {
                what: "columns of the input vs d_in of the encoder",
                expected: self.d_in(),
                got: x.dim(),
            });
        }
        Ok(())
    }

    /// Reconstructions `W_d (codes * scale) + b_d` of codes made by
    /// [`encode`](Self::encode), on the context's device.
    pub fn decode(&self, ctx: &Context, codes: &ScalarCodes) -> Result<DeviceMatrix> {
        self.codes.check_codes(ctx, codes)?;
        let job = NqDecodeJob {
            codes,
            weight: self.decoder.weight(),
            bias: self.decoder.bias(),
            precision: self.opts.precision,
            cache: &self.cache,
        };
        if let Some(y) = ctx.backend().nq_decode(job)? {
            return Ok(y);
        }
        let z = self.codes.decode(ctx, codes)?;
        self.decoder
            .apply(ctx, &z, Activation::None, self.opts.precision)
    }

    /// The decoder applied to f32 latents (`rows x latent`), on the
    /// context's device.
    pub fn decode_latent<'a>(
        &self,
        ctx: &Context,
        z: impl Into<Input<'a>>,
    ) -> Result<DeviceMatrix> {
        self.decoder
            .apply(ctx, z, Activation::None, self.opts.precision)
    }

    /// Reconstruction quality on `x`, through the int8 codes and through
    /// the f32 latent.
    pub fn reconstruction<'a>(
        &self,
        ctx: &Context,
        x: impl Into<Input<'a>>,
    ) -> Result<Reconstruction> {
        let x = x.into();
        let host_x = match &x {
            Input::F32(m) => m.as_slice().to_vec(),
            Input::Resident(d) => d.to_host()?.into_vec(),
            Input::Binary(_) => {
                return Err(Error::invalid(
                    "input",
                    "bit-packed rows",
                    "expected f32 rows",
                ))
            }
        };
        let z = self.encode_latent(ctx, x)?;
        let codes = self.codes.encode(ctx, &z)?;
        let via_codes = self.decode(ctx, &codes)?.into_host()?;
        let via_latent = self.decode_latent(ctx, &z)?.into_host()?;
        Ok(Reconstruction {
            int8: fidelity(&host_x, via_codes.as_slice(), self.d_in()),
            f32_latent: fidelity(&host_x, via_latent.as_slice(), self.d_in()),
        })
    }

    /// The `k` nearest codes of each query (encoded to its f32 latent here)
    /// by the distance between the query's latent and each code's decoded
    /// latent (the options' metric, `l2` or `ip`), optionally re-ranked: a
    /// re-rank whose base holds the f32 latents of the coded rows (from
    /// [`encode_latent`](Self::encode_latent)) re-scores the shortlist
    /// exactly.
    pub fn search<'a>(
        &self,
        ctx: &Context,
        queries: impl Into<Input<'a>>,
        codes: &ScalarCodes,
        k: usize,
        opts: &SearchOptions<'_>,
    ) -> Result<Neighbors> {
        let q = self.encode_latent(ctx, queries)?;
        self.codes.search(ctx, &q, codes, k, opts)
    }
}

/// Fidelity of reconstructions `y` of rows `x` (`dim` per row), in fp64.
fn fidelity(x: &[f32], y: &[f32], dim: usize) -> Fidelity {
    let (mut err, mut sig, mut cos) = (0.0f64, 0.0f64, 0.0f64);
    let rows = x.len() / dim;
    for (a, b) in x.chunks_exact(dim).zip(y.chunks_exact(dim)) {
        let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
        for (&p, &q) in a.iter().zip(b) {
            let (p, q) = (p as f64, q as f64);
            err += (p - q) * (p - q);
            ab += p * q;
            aa += p * p;
            bb += q * q;
        }
        sig += aa;
        cos += match (aa > 0.0, bb > 0.0) {
            (true, true) => ab / (aa.sqrt() * bb.sqrt()),
            (false, false) => 1.0,
            _ => 0.0,
        };
    }
    Fidelity {
        mse: err / x.len().max(1) as f64,
        mean_cosine: cos / rows.max(1) as f64,
        snr_db: 10.0 * (sig / err).log10(),
    }
}

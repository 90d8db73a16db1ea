//! `NeuralQuantizer` against fp64 of its formulas: the encoder's latent
//! (activation, unit length), the per-vector int8 codes and their scales,
//! the decoder at every precision and on many shapes, reconstruction
//! quality, search over codes with and without re-ranking, seeded presets
//! giving the same codes on every backend, every option shown to change
//! the output, and typed errors.

use super::{bias, dist64, mismatch, norm2, project64, scale64};
use crate::common::*;
use vector_accelerate::linalg::Activation;
use vector_accelerate::ml::{Linear, NeuralQuantizer, NqOptions, NqPreset};
use vector_accelerate::quantize::SearchOptions;
use vector_accelerate::{Matrix, Metric, Order, Precision};

/// Rows scaled by 1e-3, 1 and 1e3 in turn: very different magnitudes, each
/// row keeping its own scale.
fn vary_row_magnitudes(x: &mut Matrix) {
    let d = x.dim();
    for (i, row) in x.as_mut_slice().chunks_mut(d).enumerate() {
        let f = [1e-3f32, 1.0, 1e3][i % 3];
        row.iter_mut().for_each(|v| *v *= f);
    }
}

/// fp64 encoder output for one row: `act(W x + b)`, then unit length.
fn latent64(z: &[f64], act: Activation, normalize: bool) -> Vec<f64> {
    let a: Vec<f64> = z
        .iter()
        .map(|&v| match act {
            Activation::None => v,
            Activation::Relu => v.max(0.0),
            Activation::Tanh => v.tanh(),
            Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
            Activation::Gelu => unreachable!(),
        })
        .collect();
    if !normalize {
        return a;
    }
    let n = norm2(&a).sqrt();
    if n == 0.0 {
        a
    } else {
        a.iter().map(|v| v / n).collect()
    }
}

/// `x` rounded as a 16-bit precision rounds operands (to nearest even).
fn round16(x: f32, p: Precision) -> f32 {
    match p {
        Precision::Bf16 => half::bf16::from_f32(x).to_f32(),
        Precision::F16 => half::f16::from_f32(x).to_f32(),
        _ => x,
    }
}

/// Decoded rows `got` of per-vector int8 codes (`bytes`, `scales`)
/// against fp64 of `deq W_d^T + b_d`, `deq = code * scale` (f32), with the
/// weight rounded as precision `p` rounds it on `ctx`: 16-bit precisions
/// round the weight (the codes enter the product exactly and the scale
/// multiplies the sums), CUDA's TF32 rounds it to f16 (scaled), `Exact`
/// keeps all of it (three bf16 pieces on CUDA).
fn check_decode(
    ctx: &vector_accelerate::Context,
    label: &str,
    got: &Matrix,
    (bytes, scales): (&[u8], &[f32]),
    (wd, bd): (&Matrix, &[f32]),
    p: Precision,
) {
    let (d_out, latent) = (wd.rows(), wd.dim());
    let n = scales.len();
    assert_eq!((got.rows(), got.dim()), (n, d_out), "{label} {p}: shape");
    let deq: Vec<f32> = (0..n * latent)
        .map(|j| (bytes[j] as i8) as f32 * scales[j / latent])
        .collect();
    let deq = Matrix::new(deq, latent).unwrap();
    // CUDA's TF32 decode rounds the weight to f16 (scaled per output by a
    // power of two: the same significands), the CPU's computes in f32.
    let rp = if p == Precision::Tf32 && ctx.is_cuda() {
        Precision::F16
    } else {
        p
    };
    // f16 rounds each output's weights scaled by the power of two that
    // puts the largest in [2^14, 2^15) (no overflow for large weights).
    let mut w = wd.clone();
    for row in w.as_mut_slice().chunks_mut(latent) {
        let top = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let e = if rp == Precision::F16 && top > 0.0 {
            14 - top.log2().floor() as i32
        } else {
            0
        };
        for v in row.iter_mut() {
            *v = round16(*v * 2f32.powi(e), rp) * 2f32.powi(-e);
        }
    }
    let (y64, ys) = (project64(&deq, &w, Some(bd)), scale64(&deq, &w, Some(bd)));
    let rel = 8e-7 * (latent as f64 + 4.0);
    for i in 0..n {
        for o in 0..d_out {
            let (g, e) = (got.get(i, o) as f64, y64[i][o]);
            assert!(
                (g - e).abs() <= rel * ys[i][o] + 1e-30,
                "{label} {p}: decoded ({i},{o}) {g} vs fp64 {e}"
            );
        }
    }
}

/// The decoder on the shapes of the CUDA product's tiles (128 x 128,
/// stages of 64 16-bit values): rows, outputs and latent widths below, at
/// and past a tile, primes, widths not a multiple of 8 (the codes' rows
/// then read byte by byte); weights beyond and far below the f16 range;
/// every precision.
#[test]
fn nq_decode_shapes_match_fp64() {
    let s = seed();
    for_each_backend("nq_decode_shapes_match_fp64", |ctx| {
        let mut r = rng(s);
        for (n, latent, d_out) in [
            (1, 1, 1),
            (2, 3, 2),
            (3, 8, 3),
            (127, 64, 127),
            (128, 128, 128),
            (129, 65, 129),
            (131, 100, 257),
            (300, 127, 131),
            (5, 193, 70),
        ] {
            let we = gaussian(&mut r, latent, d_out);
            let mut wd = gaussian(&mut r, d_out, latent);
            // Decoder weights far beyond the f16 range and far below it.
            if n == 127 || n == 129 {
                let f = if n == 127 { 1e7f32 } else { 1e-7 };
                wd.as_mut_slice().iter_mut().for_each(|v| *v *= f);
            }
            let bd = bias(&mut r, d_out);
            let mut x = gaussian(&mut r, n, d_out);
            vary_row_magnitudes(&mut x);
            for p in [
                Precision::Exact,
                Precision::Tf32,
                Precision::Bf16,
                Precision::F16,
            ] {
                let nq = NeuralQuantizer::new(
                    Linear::new(ctx, &we, None).unwrap(),
                    Linear::new(ctx, &wd, Some(&bd)).unwrap(),
                    &NqOptions::default().with_precision(p),
                )
                .unwrap();
                let codes = nq.encode(ctx, &x).unwrap();
                let host = codes.to_host().unwrap();
                let (scales, _) = host.vector_params().unwrap();
                let label = format!("{} n {n} {latent}->{d_out}", ctx.device());
                // Twice: the second decode reuses the weight's pieces.
                for _ in 0..2 {
                    let y = nq.decode(ctx, &codes).unwrap().into_host().unwrap();
                    let codes_host = (host.as_bytes().unwrap(), scales);
                    check_decode(ctx, &label, &y, codes_host, (&wd, &bd), p);
                }
            }
        }
    });
}

#[test]
fn neural_quantization_matches_fp64() {
    let s = seed();
    for_each_backend("neural_quantization_matches_fp64", |ctx| {
        let mut r = rng(s);
        // Latents up to 128 take the fused CUDA encode (no activation or
        // ReLU; Exact or TF32); 130 and tanh the unfused path.
        for (d_in, latent, n) in [
            (1, 1, 1),
            (5, 3, 2),
            (67, 9, 33),
            (200, 24, 130),
            (150, 128, 129),
            (97, 130, 7),
        ] {
            let we = gaussian(&mut r, latent, d_in);
            let wd = gaussian(&mut r, d_in, latent);
            let (be, bd) = (bias(&mut r, latent), bias(&mut r, d_in));
            let mut x = gaussian(&mut r, n, d_in);
            vary_row_magnitudes(&mut x);
            let z64 = project64(&x, &we, Some(&be));
            for (act, normalize, p) in [
                (Activation::None, false, Precision::Exact),
                (Activation::Relu, true, Precision::Exact),
                (Activation::Tanh, false, Precision::Exact),
                (Activation::None, true, Precision::Tf32),
            ] {
                let opts = NqOptions::default()
                    .with_activation(act)
                    .with_normalized_latent(normalize)
                    .with_precision(p);
                // TF32 on CUDA: 10-bit significands, up to 2^-10 per operand.
                let tf32 = p == Precision::Tf32 && ctx.is_cuda();
                let rel_enc = if tf32 {
                    2f64.powi(-9)
                } else {
                    4e-7 * (d_in as f64 + 4.0)
                };
                let nq = NeuralQuantizer::new(
                    Linear::new(ctx, &we, Some(&be)).unwrap(),
                    Linear::new(ctx, &wd, Some(&bd)).unwrap(),
                    &opts,
                )
                .unwrap();
                let label = format!(
                    "{} {d_in}->{latent} n {n} {act:?} norm {normalize} {p}",
                    ctx.device()
                );
                let z = nq.encode_latent(ctx, &x).unwrap().into_host().unwrap();
                let codes = nq.encode(ctx, &x).unwrap().to_host().unwrap();
                let bytes = codes.as_bytes().unwrap();
                let (scales, offsets) = codes.vector_params().unwrap();
                assert!(
                    offsets.iter().all(|&o| o == 0.0),
                    "{label}: symmetric codes have no offset"
                );
                let xs = scale64(&x, &we, Some(&be));
                for i in 0..n {
                    let want = latent64(&z64[i], act, normalize);
                    let zi = z.row(i);
                    let tol = rel_enc * xs[i].iter().cloned().fold(0.0, f64::max)
                        / if normalize {
                            norm2(&z64[i]).sqrt().max(1e-30)
                        } else {
                            1.0
                        };
                    for o in 0..latent {
                        assert!(
                            ((zi[o] as f64) - want[o]).abs() <= tol * 4.0 + 1e-7,
                            "{label}: latent ({i},{o}) {} vs fp64 {}",
                            zi[o],
                            want[o]
                        );
                    }
                    // The row's own scale, max |z| / 127, and its codes
                    // round(z / scale), against the fp64 latent: within the
                    // latent's error bound (the codes may come from a fused
                    // kernel with its own rounding of the latent).
                    let err = tol * 4.0 + 1e-7;
                    let top = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    let sc = scales[i] as f64;
                    assert!(
                        (sc - top / 127.0).abs() <= err / 127.0 + 1e-6 * sc,
                        "{label}: scale of row {i}: {sc} vs fp64 {}",
                        top / 127.0
                    );
                    for o in 0..latent {
                        let c = bytes[i * latent + o] as i8;
                        assert_ne!(
                            c,
                            i8::MIN,
                            "{label}: code -128 is outside the symmetric range"
                        );
                        let exact = if sc == 0.0 { 0.0 } else { want[o] / sc };
                        let slack = if sc == 0.0 { 0.0 } else { err / sc + 1e-3 };
                        assert!(
                            (c as f64 - exact).abs() <= 0.5 + slack,
                            "{label}: code ({i},{o}) {c} for fp64 {exact} (slack {slack})"
                        );
                    }
                }
                // Decode against fp64 of the decoder on the dequantised
                // codes, at this precision and at the 16-bit ones.
                let y = nq
                    .decode(ctx, &nq.encode(ctx, &x).unwrap())
                    .unwrap()
                    .into_host()
                    .unwrap();
                check_decode(ctx, &label, &y, (bytes, scales), (&wd, &bd), p);
                let codes_dev = nq.encode(ctx, &x).unwrap();
                for p16 in [Precision::Bf16, Precision::F16] {
                    let q16 = NeuralQuantizer::new(
                        Linear::new(ctx, &we, Some(&be)).unwrap(),
                        Linear::new(ctx, &wd, Some(&bd)).unwrap(),
                        &opts.with_precision(p16),
                    )
                    .unwrap();
                    let got = q16.decode(ctx, &codes_dev).unwrap().into_host().unwrap();
                    check_decode(ctx, &label, &got, (bytes, scales), (&wd, &bd), p16);
                }
            }
        }
        // A zero latent keeps scale 0 and decodes to the bias.
        let nq = NeuralQuantizer::new(
            Linear::new(
                ctx,
                &Matrix::new(vec![1.0, 0.0, 0.0, 1.0], 2).unwrap(),
                None,
            )
            .unwrap(),
            Linear::new(
                ctx,
                &Matrix::new(vec![1.0, 0.0, 0.0, 1.0], 2).unwrap(),
                Some(&[0.5, -0.5]),
            )
            .unwrap(),
            &NqOptions::default().with_normalized_latent(true),
        )
        .unwrap();
        let zero = Matrix::new(vec![0.0, 0.0, 3.0, 4.0], 2).unwrap();
        let c = nq.encode(ctx, &zero).unwrap();
        assert_eq!(c.to_host().unwrap().vector_params().unwrap().0[0], 0.0);
        let y = nq.decode(ctx, &c).unwrap().into_host().unwrap();
        assert_eq!(y.row(0), &[0.5, -0.5]);
        // Normalised latent (0.6, 0.8): codes (95, 127), scale 0.8 / 127.
        assert_eq!(&c.to_host().unwrap().as_bytes().unwrap()[2..], &[95u8, 127]);
        // Reconstruction: identity maps lose only the int8 step.
        let id = Matrix::new(vec![1.0, 0.0, 0.0, 1.0], 2).unwrap();
        let nq = NeuralQuantizer::new(
            Linear::new(ctx, &id, None).unwrap(),
            Linear::new(ctx, &id, None).unwrap(),
            &NqOptions::default(),
        )
        .unwrap();
        let data = gaussian(&mut r, 50, 2);
        let rec = nq.reconstruction(ctx, &data).unwrap();
        assert_eq!(rec.f32_latent.mse, 0.0);
        assert!(rec.f32_latent.snr_db.is_infinite() && rec.f32_latent.mean_cosine > 1.0 - 1e-12);
        assert!(
            rec.int8.mse > 0.0 && rec.int8.snr_db > 35.0 && rec.int8.mean_cosine > 0.999,
            "{:?}",
            rec.int8
        );
        // Options change the output.
        let we = gaussian(&mut r, 6, 20);
        let wd = gaussian(&mut r, 20, 6);
        let x = gaussian(&mut r, 10, 20);
        let lat = |o: NqOptions| {
            NeuralQuantizer::new(
                Linear::new(ctx, &we, None).unwrap(),
                Linear::new(ctx, &wd, None).unwrap(),
                &o,
            )
            .unwrap()
            .encode_latent(ctx, &x)
            .unwrap()
            .into_host()
            .unwrap()
        };
        let base = lat(NqOptions::default());
        assert_ne!(
            base,
            lat(NqOptions::default().with_activation(Activation::Relu))
        );
        assert_ne!(base, lat(NqOptions::default().with_normalized_latent(true)));
        assert_ne!(
            base,
            lat(NqOptions::default().with_precision(Precision::Bf16))
        );
        // Presets have their shapes.
        let p = NeuralQuantizer::xavier(ctx, NqPreset::D384To64, 1, &NqOptions::default()).unwrap();
        assert_eq!((p.d_in(), p.latent()), (384, 64));
        // Typed errors.
        mismatch(NeuralQuantizer::new(
            Linear::new(ctx, &we, None).unwrap(),
            Linear::new(ctx, &we, None).unwrap(),
            &NqOptions::default(),
        ));
        mismatch(NeuralQuantizer::new(
            Linear::new(ctx, &we, None).unwrap(),
            Linear::new(ctx, &gaussian(&mut r, 21, 6), None).unwrap(),
            &NqOptions::default(),
        ));
        let good = NeuralQuantizer::new(
            Linear::new(ctx, &we, None).unwrap(),
            Linear::new(ctx, &wd, None).unwrap(),
            &NqOptions::default(),
        )
        .unwrap();
        mismatch(good.encode(ctx, &gaussian(&mut r, 2, 19)));
    });
}

#[test]
fn neural_quantization_search_over_codes() {
    let s = seed();
    for_each_backend("neural_quantization_search_over_codes", |ctx| {
        let mut r = rng(s);
        let (d_in, latent, n, nq_rows) = (48, 12, 300, 5);
        let nq = NeuralQuantizer::new(
            Linear::new(ctx, &gaussian(&mut r, latent, d_in), None).unwrap(),
            Linear::new(ctx, &gaussian(&mut r, d_in, latent), None).unwrap(),
            &NqOptions::default(),
        )
        .unwrap();
        let base = gaussian(&mut r, n, d_in);
        let q = gaussian(&mut r, nq_rows, d_in);
        let codes = nq.encode(ctx, &base).unwrap();
        let host = codes.to_host().unwrap();
        let (bytes, scales) = (host.as_bytes().unwrap(), host.vector_params().unwrap().0);
        let zq = nq.encode_latent(ctx, &q).unwrap().into_host().unwrap();
        let zb = nq.encode_latent(ctx, &base).unwrap();
        let zb_host = zb.to_host().unwrap().into_vec();
        let k = 10;
        let plain = nq
            .search(ctx, &q, &codes, k, &SearchOptions::default())
            .unwrap();
        let reranked = nq
            .search(
                ctx,
                &q,
                &codes,
                k,
                &SearchOptions::default().with_rerank(&zb, 40),
            )
            .unwrap();
        for i in 0..nq_rows {
            let zi: Vec<f64> = zq.row(i).iter().map(|&v| v as f64).collect();
            // Against the decoded codes.
            let refs: Vec<f64> = (0..n)
                .map(|j| {
                    let c: Vec<f64> = (0..latent)
                        .map(|o| (bytes[j * latent + o] as i8) as f64 * scales[j] as f64)
                        .collect();
                    dist64(&zi, &c, Metric::L2)
                })
                .collect();
            let t = 1e-5 * refs.iter().cloned().fold(1.0, f64::max);
            check_row(
                &format!("{} codes row {i}", ctx.device()),
                plain.row_ids(i),
                plain.row_distances(i),
                &refs,
                Order::Smallest,
                t,
            );
            // Re-ranked against the f32 latents.
            let exact: Vec<f64> = (0..n)
                .map(|j| {
                    let c: Vec<f64> = zb_host[j * latent..(j + 1) * latent]
                        .iter()
                        .map(|&v| v as f64)
                        .collect();
                    dist64(&zi, &c, Metric::L2)
                })
                .collect();
            for j in 0..k {
                let id = reranked.row_ids(i)[j] as usize;
                assert!(
                    (reranked.row_distances(i)[j] as f64 - exact[id]).abs() <= t,
                    "{} rerank row {i}",
                    ctx.device()
                );
            }
        }
    });
}

/// The presets and Xavier weights are seeded: same seed, same codes, on
/// every backend.
#[test]
fn presets_are_reproducible() {
    let data = gaussian(&mut rng(5), 20, 768);
    let mut prev: Option<Vec<u8>> = None;
    for ctx in backends() {
        let a =
            NeuralQuantizer::xavier(&ctx, NqPreset::D768To128, 9, &NqOptions::default()).unwrap();
        let b =
            NeuralQuantizer::xavier(&ctx, NqPreset::D768To128, 9, &NqOptions::default()).unwrap();
        let c =
            NeuralQuantizer::xavier(&ctx, NqPreset::D768To128, 10, &NqOptions::default()).unwrap();
        let code = |q: &NeuralQuantizer| {
            q.encode(&ctx, &data)
                .unwrap()
                .to_host()
                .unwrap()
                .as_bytes()
                .unwrap()
                .to_vec()
        };
        assert_eq!(code(&a), code(&b));
        assert_ne!(code(&a), code(&c));
        if let Some(p) = &prev {
            // Codes of another backend: equal up to rare rounding ties.
            let diff = p.iter().zip(code(&a)).filter(|(x, y)| **x != *y).count();
            assert!(
                diff * 100 <= p.len(),
                "{diff} of {} bytes differ across backends",
                p.len()
            );
        }
        prev = Some(code(&a));
    }
}

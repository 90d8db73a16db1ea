//! Matrix operations: GEMM against an fp64 reference on every size
//! of a grid over 1..=70 and odd shapes, every transpose combination, alpha
//! and beta, precision modes, GEMV, transposes, batched and fused GEMM, and
//! typed errors.

use crate::common::*;
use rand::rngs::StdRng;
use rand::Rng;
use vector_accelerate::linalg::{
    gemm, gemm_fused, gemv, transpose, transpose_in_place, Activation, GemmOptions,
};
use vector_accelerate::vector::{map, Unary};
use vector_accelerate::{BinaryMatrix, Context, Error, Input, Matrix, MatrixView, Precision};

const EPS: f64 = 1.0 / (1u64 << 24) as f64;

/// Stored shape of an operand whose `op` is `r x c`.
fn stored(r: usize, c: usize, t: bool) -> (usize, usize) {
    if t {
        (c, r)
    } else {
        (r, c)
    }
}

/// `op(X)[i][j]` of a stored row-major matrix.
fn at(x: &[f32], ld: usize, t: bool, i: usize, j: usize) -> f64 {
    (if t { x[j * ld + i] } else { x[i * ld + j] }) as f64
}

/// fp64 `alpha op(A) op(B) + beta C` and, per element, `|alpha| sum |a||b|
/// + |beta c|` (the scale of the rounding error).
fn reference(
    a: &[f32],
    b: &[f32],
    c: Option<&[f32]>,
    (m, n, k): (usize, usize, usize),
    o: &GemmOptions,
) -> (Vec<f64>, Vec<f64>) {
    let lda = if o.trans_a { m } else { k };
    let ldb = if o.trans_b { k } else { n };
    let mut v = vec![0.0; m * n];
    let mut s = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let (mut d, mut g) = (0.0f64, 0.0f64);
            for p in 0..k {
                let x = at(a, lda, o.trans_a, i, p) * at(b, ldb, o.trans_b, p, j);
                d += x;
                g += x.abs();
            }
            let (mut r, mut sc) = (o.alpha as f64 * d, (o.alpha as f64).abs() * g);
            if o.beta != 0.0 {
                let cv = c.unwrap()[i * n + j] as f64;
                r += o.beta as f64 * cv;
                sc += (o.beta as f64 * cv).abs();
            }
            v[i * n + j] = r;
            s[i * n + j] = sc;
        }
    }
    (v, s)
}

/// Relative error per unit of scale allowed for a precision on a backend
/// (the inputs of the reference already rounded to 16 bits where a mode
/// rounds them, so only TF32 on CUDA adds an operand error here).
fn rel_tol(ctx: &Context, p: Precision, k: usize) -> f64 {
    let acc = (k as f64 + 4.0) * EPS * 2.0;
    match p {
        // TF32: 10-bit significands, up to 2^-10 per operand (truncation),
        // so 2^-9 per product.
        Precision::Tf32 if ctx.is_cuda() => acc + 2.0f64.powi(-9),
        _ => acc,
    }
}

fn check(what: &str, got: &[f32], want: &[f64], scale: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((g, w), s)) in got.iter().zip(want).zip(scale).enumerate() {
        let err = (*g as f64 - w).abs();
        assert!(
            err <= tol * s + 1e-30,
            "{what}: element {i}: got {g}, want {w} (error {err:e}, bound {:e}, seed {})",
            tol * s,
            seed()
        );
    }
}

fn random(r: &mut StdRng, rows: usize, cols: usize) -> Matrix {
    gaussian(r, rows, cols)
}

fn opts(ta: bool, tb: bool, alpha: f32, beta: f32) -> GemmOptions {
    GemmOptions::default()
        .with_trans_a(ta)
        .with_trans_b(tb)
        .with_alpha(alpha)
        .with_beta(beta)
}

const TRANS: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// One GEMM on `ctx` (host and resident results) checked against fp64.
fn run_case(ctx: &Context, r: &mut StdRng, (m, n, k): (usize, usize, usize), o: &GemmOptions) {
    let (ar, ac) = stored(m, k, o.trans_a);
    let (br, bc) = stored(k, n, o.trans_b);
    let a = random(r, ar, ac);
    let b = random(r, br, bc);
    let c = random(r, m, n);
    let cin = (o.beta != 0.0).then(|| Input::from(&c));
    let got = gemm(ctx, &a, &b, cin, o).unwrap().into_host().unwrap();
    assert_eq!((got.rows(), got.dim()), (m, n));
    let (want, scale) = reference(a.as_slice(), b.as_slice(), Some(c.as_slice()), (m, n, k), o);
    let what = format!("{} gemm {m}x{n}x{k} {o:?}", ctx.device());
    check(
        &what,
        got.as_slice(),
        &want,
        &scale,
        rel_tol(ctx, o.precision, k),
    );
}

#[test]
fn gemm_every_size_on_a_grid_and_every_transpose() {
    const G: &[usize] = &[1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70];
    for_each_backend("gemm_every_size_on_a_grid_and_every_transpose", |ctx| {
        let mut r = rng(seed());
        for (ti, &(ta, tb)) in TRANS.iter().enumerate() {
            for (mi, &m) in G.iter().enumerate() {
                for (ni, &n) in G.iter().enumerate() {
                    for (ki, &k) in G.iter().enumerate() {
                        // Every size with the plain product; a rotating
                        // third of the grid for each transposed one.
                        if ti > 0 && (mi + ni + ki + ti) % 3 != 0 {
                            continue;
                        }
                        let alpha = if (mi + ki) % 2 == 0 { 1.0 } else { -0.75 };
                        run_case(ctx, &mut r, (m, n, k), &opts(ta, tb, alpha, 0.0));
                    }
                }
            }
        }
    });
}

#[test]
fn gemm_odd_shapes_with_beta() {
    for_each_backend("gemm_odd_shapes_with_beta", |ctx| {
        let mut r = rng(seed());
        for &shape in &[(1, 1000, 3), (1000, 1, 1000), (257, 129, 1031), (1, 1, 1)] {
            for &(ta, tb) in &TRANS {
                run_case(ctx, &mut r, shape, &opts(ta, tb, 1.5, 0.5));
                run_case(ctx, &mut r, shape, &opts(ta, tb, 1.0, 0.0));
            }
        }
    });
}

#[test]
fn alpha_and_beta_reach_the_product() {
    for_each_backend("alpha_and_beta_reach_the_product", |ctx| {
        let mut r = rng(seed());
        let (m, n, k) = (5, 7, 9);
        let a = random(&mut r, m, k);
        let b = random(&mut r, k, n);
        let c = random(&mut r, m, n);
        let plain = gemm(ctx, &a, &b, None, &GemmOptions::default())
            .unwrap()
            .into_host()
            .unwrap();
        // beta = 0 never reads C: NaN and infinities do not propagate.
        let poisoned = Matrix::new(
            (0..m * n)
                .map(|i| if i % 2 == 0 { f32::NAN } else { f32::INFINITY })
                .collect(),
            n,
        )
        .unwrap();
        let z = gemm(
            ctx,
            &a,
            &b,
            Some((&poisoned).into()),
            &opts(false, false, 1.0, 0.0),
        )
        .unwrap()
        .into_host()
        .unwrap();
        assert_eq!(z.as_slice(), plain.as_slice());
        // beta = 1 adds C; beta = -2 scales it.
        for beta in [1.0f32, -2.0] {
            let o = opts(false, false, 1.0, beta);
            let got = gemm(ctx, &a, &b, Some((&c).into()), &o)
                .unwrap()
                .into_host()
                .unwrap();
            let (want, scale) = reference(
                a.as_slice(),
                b.as_slice(),
                Some(c.as_slice()),
                (m, n, k),
                &o,
            );
            check(
                "beta",
                got.as_slice(),
                &want,
                &scale,
                rel_tol(ctx, o.precision, k),
            );
            assert_ne!(got.as_slice(), plain.as_slice());
        }
        // alpha = 0 leaves beta * C.
        let got = gemm(
            ctx,
            &a,
            &b,
            Some((&c).into()),
            &opts(false, false, 0.0, 3.0),
        )
        .unwrap()
        .into_host()
        .unwrap();
        for (g, cv) in got.as_slice().iter().zip(c.as_slice()) {
            assert_eq!(*g, 3.0 * cv);
        }
        // alpha scales the product.
        let got = gemm(ctx, &a, &b, None, &opts(false, false, -2.0, 0.0))
            .unwrap()
            .into_host()
            .unwrap();
        for (g, p) in got.as_slice().iter().zip(plain.as_slice()) {
            assert_eq!(*g, -2.0 * p);
        }
        // Transposes change the result (square operands so every
        // combination is defined).
        let sq = random(&mut r, 6, 6);
        let sq2 = random(&mut r, 6, 6);
        let outs: Vec<Vec<f32>> = TRANS
            .iter()
            .map(|&(ta, tb)| {
                gemm(ctx, &sq, &sq2, None, &opts(ta, tb, 1.0, 0.0))
                    .unwrap()
                    .into_host()
                    .unwrap()
                    .into_vec()
            })
            .collect();
        for i in 0..4 {
            for j in i + 1..4 {
                assert_ne!(outs[i], outs[j], "transposes {i} and {j}");
            }
        }
    });
}

#[test]
fn resident_inputs_and_outputs_equal_host_results() {
    for_each_backend("resident_inputs_and_outputs_equal_host_results", |ctx| {
        let mut r = rng(seed());
        let a = random(&mut r, 33, 17);
        let b = random(&mut r, 40, 17);
        let c = random(&mut r, 33, 40);
        let o = opts(false, true, 0.5, 2.0);
        let host = gemm(ctx, &a, &b, Some((&c).into()), &o)
            .unwrap()
            .into_host()
            .unwrap();
        let (ra, rb, rc) = (
            ctx.upload(&a).unwrap(),
            ctx.upload(&b).unwrap(),
            ctx.upload(&c).unwrap(),
        );
        let res = gemm(ctx, &ra, &rb, Some((&rc).into()), &o).unwrap();
        assert_eq!((res.rows(), res.dim()), (33, 40));
        assert_eq!(res.to_host().unwrap().into_vec(), host.as_slice());
        // A chain on the device: (A B^T)^T computed from the resident result.
        let t = transpose(ctx, &res).unwrap();
        assert_eq!((t.rows(), t.dim()), (40, 33));
        let t_host = transpose(ctx, &host).unwrap().into_host().unwrap();
        assert_eq!(t.to_host().unwrap().into_vec(), t_host.as_slice());
    });
}

/// The values of `x` as precision `p` multiplies them (rounded to nearest
/// in 16 bits for `Bf16` / `F16`, unchanged otherwise).
fn rounded(x: &Matrix, p: Precision) -> Vec<f32> {
    x.as_slice()
        .iter()
        .map(|&v| match p {
            Precision::Bf16 => half::bf16::from_f32(v).to_f32(),
            Precision::F16 => half::f16::from_f32(v).to_f32(),
            _ => v,
        })
        .collect()
}

/// Rows uploaded in 16 bits, and their values widened to f32 on the host.
fn upload_16(ctx: &Context, x: &Matrix, bf16: bool) -> (vector_accelerate::DeviceMatrix, Matrix) {
    let (d, wide): (_, Vec<f32>) = if bf16 {
        let h: Vec<half::bf16> = x
            .as_slice()
            .iter()
            .map(|&v| half::bf16::from_f32(v))
            .collect();
        (
            ctx.upload_bf16(&h, x.dim()).unwrap(),
            h.iter().map(|v| v.to_f32()).collect(),
        )
    } else {
        let h: Vec<half::f16> = x
            .as_slice()
            .iter()
            .map(|&v| half::f16::from_f32(v))
            .collect();
        (
            ctx.upload_f16(&h, x.dim()).unwrap(),
            h.iter().map(|v| v.to_f32()).collect(),
        )
    };
    (d, mat_from_slice(&wide, x.dim()))
}

#[test]
fn sixteen_bit_operands_give_the_product_of_their_values() {
    for_each_backend(
        "sixteen_bit_operands_give_the_product_of_their_values",
        |ctx| {
            let mut r = rng(seed());
            // Row widths 13 and 21 are padded to 16 and 24 on the device.
            for (m, n, k) in [(1, 1, 1), (7, 21, 13), (33, 40, 21), (64, 9, 130)] {
                for &(ta, tb) in &TRANS {
                    let (ar, ac) = stored(m, k, ta);
                    let (br, bc) = stored(k, n, tb);
                    let (a, b, c) = (
                        random(&mut r, ar, ac),
                        random(&mut r, br, bc),
                        random(&mut r, m, n),
                    );
                    for (bf_a, bf_b) in [(true, true), (false, false), (true, false)] {
                        let (da, wa) = upload_16(ctx, &a, bf_a);
                        let (db, wb) = upload_16(ctx, &b, bf_b);
                        let (dc, wc) = upload_16(ctx, &c, !bf_a);
                        for p in [
                            Precision::Exact,
                            Precision::Tf32,
                            Precision::Bf16,
                            Precision::F16,
                        ] {
                            let o = opts(ta, tb, 1.5, -0.5).with_precision(p);
                            let what = format!(
                                "{} {m}x{n}x{k} ta {ta} tb {tb} bf16 {bf_a}/{bf_b} {p}",
                                ctx.device()
                            );
                            // Kept operands, and a kept A with the widened host B.
                            let got = gemm(ctx, &da, &db, Some((&dc).into()), &o)
                                .unwrap()
                                .into_host()
                                .unwrap();
                            let mixed = gemm(ctx, &da, &wb, Some((&wc).into()), &o)
                                .unwrap()
                                .into_host()
                                .unwrap();
                            let round = |x: &Matrix| rounded(x, p);
                            let (want, scale) = reference(
                                &round(&wa),
                                &round(&wb),
                                Some(wc.as_slice()),
                                (m, n, k),
                                &o,
                            );
                            let tol = rel_tol(ctx, p, k);
                            check(&what, got.as_slice(), &want, &scale, tol);
                            check(
                                &format!("{what} mixed"),
                                mixed.as_slice(),
                                &want,
                                &scale,
                                tol,
                            );
                        }
                    }
                }
            }
            // Batches of 5 x 13 rows (padded to 16 on the device), gemv, the
            // fused product and transposes of 16-bit rows.
            let (a, b) = (random(&mut r, 15, 13), random(&mut r, 39, 6));
            let (da, wa) = upload_16(ctx, &a, true);
            let (db, wb) = upload_16(ctx, &b, true);
            for p in [Precision::Exact, Precision::Bf16] {
                let o = GemmOptions::default().with_precision(p);
                let got = gemm(ctx, &da, &db, None, &o.with_batch(3))
                    .unwrap()
                    .into_host()
                    .unwrap();
                let want = gemm(ctx, &wa, &wb, None, &o.with_batch(3))
                    .unwrap()
                    .into_host()
                    .unwrap();
                assert_close(
                    &format!("{} batched {p}", ctx.device()),
                    got.as_slice(),
                    want.as_slice(),
                );
                let f = gemm_fused(
                    ctx,
                    &da,
                    &db,
                    Some(&[0.25; 6]),
                    &o.with_activation(Activation::Tanh).with_batch(3),
                )
                .unwrap()
                .into_host()
                .unwrap();
                let fw = gemm_fused(
                    ctx,
                    &wa,
                    &wb,
                    Some(&[0.25; 6]),
                    &o.with_activation(Activation::Tanh).with_batch(3),
                )
                .unwrap()
                .into_host()
                .unwrap();
                assert_close(
                    &format!("{} fused {p}", ctx.device()),
                    f.as_slice(),
                    fw.as_slice(),
                );
            }
            let x: Vec<f32> = (0..13).map(|i| i as f32 - 6.0).collect();
            let o = GemmOptions::default();
            assert_close(
                &format!("{} gemv", ctx.device()),
                gemv(ctx, &da, &x, None, &o)
                    .unwrap()
                    .into_host()
                    .unwrap()
                    .as_slice(),
                gemv(ctx, &wa, &x, None, &o)
                    .unwrap()
                    .into_host()
                    .unwrap()
                    .as_slice(),
            );
            assert_eq!(
                transpose(ctx, &da).unwrap().into_host().unwrap(),
                transpose(ctx, &wa).unwrap().into_host().unwrap()
            );
            let t = transpose(ctx, &db).unwrap();
            assert_eq!(
                t.to_host().unwrap().into_vec(),
                transpose(ctx, &wb).unwrap().into_host().unwrap().as_slice()
            );
            // Resident f32 rows under bf16 (a rounded copy kept after the first
            // product): the same values as host rows, every time.
            let (ra, rb) = (ctx.upload(&a).unwrap(), ctx.upload(&b).unwrap());
            let o = GemmOptions::default().with_precision(Precision::Bf16);
            let host = gemm(ctx, &a, &b, None, &o.with_batch(3))
                .unwrap()
                .into_host()
                .unwrap();
            for _ in 0..2 {
                let res = gemm(ctx, &ra, &rb, None, &o.with_batch(3))
                    .unwrap()
                    .into_host()
                    .unwrap();
                assert_close(
                    &format!("{} resident bf16", ctx.device()),
                    res.as_slice(),
                    host.as_slice(),
                );
            }
        },
    );
}

/// Two results of the same product computed from operands of equal values
/// (possibly with different leading dimensions, so cuBLAS may sum in
/// another order): equal within fp32 accumulation error.
fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let top = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * top,
            "{what}: element {i}: got {g}, want {w} (seed {})",
            seed()
        );
    }
}

#[test]
fn precision_modes_stay_within_their_bounds() {
    for_each_backend("precision_modes_stay_within_their_bounds", |ctx| {
        let mut r = rng(seed());
        let (m, n, k) = (37, 45, 300);
        for &(ta, tb) in &TRANS {
            let (ar, ac) = stored(m, k, ta);
            let (br, bc) = stored(k, n, tb);
            let a = random(&mut r, ar, ac);
            let b = random(&mut r, br, bc);
            let c = random(&mut r, m, n);
            let exact = gemm(ctx, &a, &b, None, &opts(ta, tb, 1.0, 0.0))
                .unwrap()
                .into_host()
                .unwrap();
            for p in [Precision::Tf32, Precision::Bf16, Precision::F16] {
                let o = opts(ta, tb, 1.25, 0.5).with_precision(p);
                let got = gemm(ctx, &a, &b, Some((&c).into()), &o)
                    .unwrap()
                    .into_host()
                    .unwrap();
                // Against the fp64 product of the rounded operands.
                let round = |x: &Matrix| rounded(x, p);
                let (want, scale) =
                    reference(&round(&a), &round(&b), Some(c.as_slice()), (m, n, k), &o);
                check(
                    &format!("{} {p}", ctx.device()),
                    got.as_slice(),
                    &want,
                    &scale,
                    rel_tol(ctx, p, k),
                );
                // And against the unrounded product within the documented
                // bound of the format (2^-8 bf16, 2^-10 f16 per product).
                let per_product = match p {
                    Precision::Bf16 => 2.0f64.powi(-8),
                    Precision::F16 => 2.0f64.powi(-10),
                    _ => 0.0,
                };
                let (want, scale) = reference(
                    a.as_slice(),
                    b.as_slice(),
                    Some(c.as_slice()),
                    (m, n, k),
                    &o,
                );
                check(
                    &format!("{} {p} vs unrounded", ctx.device()),
                    got.as_slice(),
                    &want,
                    &scale,
                    rel_tol(ctx, p, k) + per_product,
                );
                // 16-bit modes change the result on every backend, TF32
                // on CUDA (the CPU computes it in fp32).
                if matches!(p, Precision::Bf16 | Precision::F16) || ctx.is_cuda() {
                    let again = gemm(ctx, &a, &b, None, &opts(ta, tb, 1.0, 0.0).with_precision(p))
                        .unwrap()
                        .into_host()
                        .unwrap();
                    assert_ne!(again.as_slice(), exact.as_slice(), "{p} changes the output");
                }
            }
        }
    });
}

fn mat_from_slice(v: &[f32], dim: usize) -> Matrix {
    Matrix::new(v.to_vec(), dim).unwrap()
}

#[test]
fn gemv_matches_fp64() {
    for_each_backend("gemv_matches_fp64", |ctx| {
        let mut r = rng(seed());
        for &(rows, cols) in &[(1, 1), (1, 70), (70, 1), (33, 65), (300, 17)] {
            let a = random(&mut r, rows, cols);
            for ta in [false, true] {
                let (m, k) = stored(rows, cols, ta);
                let x: Vec<f32> = (0..k).map(|_| r.random::<f32>() - 0.5).collect();
                let y: Vec<f32> = (0..m).map(|_| r.random::<f32>() - 0.5).collect();
                for (alpha, beta) in [(1.0, 0.0), (-0.5, 2.0)] {
                    let o = opts(ta, false, alpha, beta);
                    let got = gemv(ctx, &a, &x, (beta != 0.0).then_some(&y[..]), &o)
                        .unwrap()
                        .into_host()
                        .unwrap();
                    let (want, scale) = reference(a.as_slice(), &x, Some(&y), (m, 1, k), &o);
                    let got = got.as_slice();
                    check("gemv", got, &want, &scale, rel_tol(ctx, o.precision, k));
                }
            }
        }
    });
}

#[test]
fn transposes_out_of_place_and_in_place() {
    for_each_backend("transposes_out_of_place_and_in_place", |ctx| {
        let mut r = rng(seed());
        for &(rows, cols) in &[(1, 1), (1, 5), (5, 1), (33, 65), (100, 100), (257, 31)] {
            let a = random(&mut r, rows, cols);
            let t = transpose(ctx, &a).unwrap().into_host().unwrap();
            assert_eq!((t.rows(), t.dim()), (cols, rows));
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(t.get(j, i), a.get(i, j));
                }
            }
            let tr = transpose(ctx, &ctx.upload(&a).unwrap()).unwrap();
            assert_eq!(tr.to_host().unwrap().into_vec(), t.as_slice());
            if rows == cols {
                let mut b = ctx.upload(&a).unwrap();
                transpose_in_place(ctx, &mut b).unwrap();
                assert_eq!(b.to_host().unwrap(), t);
            } else {
                let mut b = ctx.upload(&a).unwrap();
                assert!(matches!(
                    transpose_in_place(ctx, &mut b),
                    Err(Error::InvalidParameter { name: "shape", .. })
                ));
            }
        }
    });
}

#[test]
fn batched_gemm_equals_separate_products() {
    for_each_backend("batched_gemm_equals_separate_products", |ctx| {
        let mut r = rng(seed());
        for &batch in &[1usize, 3, 17] {
            for &(ta, tb) in &TRANS {
                let (m, n, k) = (7, 33, 19);
                let (ar, ac) = stored(m, k, ta);
                let (br, bc) = stored(k, n, tb);
                let a = random(&mut r, batch * ar, ac);
                let b = random(&mut r, batch * br, bc);
                let c = random(&mut r, batch * m, n);
                for p in [Precision::Exact, Precision::Bf16] {
                    let o = opts(ta, tb, 0.75, -1.0).with_precision(p);
                    let got = gemm(ctx, &a, &b, Some((&c).into()), &o.with_batch(batch))
                        .unwrap()
                        .into_host()
                        .unwrap();
                    assert_eq!((got.rows(), got.dim()), (batch * m, n));
                    let res = gemm(ctx, &a, &b, Some((&c).into()), &o.with_batch(batch)).unwrap();
                    assert_eq!(res.to_host().unwrap().into_vec(), got.as_slice());
                    for i in 0..batch {
                        let ai = mat_from_slice(&a.as_slice()[i * ar * ac..(i + 1) * ar * ac], ac);
                        let bi = mat_from_slice(&b.as_slice()[i * br * bc..(i + 1) * br * bc], bc);
                        let ci = mat_from_slice(&c.as_slice()[i * m * n..(i + 1) * m * n], n);
                        let one = gemm(ctx, &ai, &bi, Some((&ci).into()), &o)
                            .unwrap()
                            .into_host()
                            .unwrap();
                        let part = &got.as_slice()[i * m * n..(i + 1) * m * n];
                        let (want, scale) = reference(
                            ai.as_slice(),
                            bi.as_slice(),
                            Some(ci.as_slice()),
                            (m, n, k),
                            &o,
                        );
                        let tol = rel_tol(ctx, Precision::Exact, k);
                        if p == Precision::Exact {
                            check("batch vs fp64", part, &want, &scale, tol);
                        }
                        let (one64, _) = (
                            one.as_slice().iter().map(|&v| v as f64).collect::<Vec<_>>(),
                            (),
                        );
                        check("batch vs separate", part, &one64, &scale, 2.0 * tol);
                    }
                }
            }
        }
    });
}

#[test]
fn fused_gemm_equals_gemm_then_bias_and_activation() {
    let acts = [
        Activation::None,
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
    ];
    for_each_backend("fused_gemm_equals_gemm_then_bias_and_activation", |ctx| {
        let mut r = rng(seed());
        let cpu = Context::cpu();
        for &batch in &[1usize, 3] {
            let (m, n, k) = (9, 21, 40);
            let a = random(&mut r, batch * m, k);
            let b = random(&mut r, batch * n, k); // used transposed
            let bias: Vec<f32> = (0..n).map(|_| r.random::<f32>() * 2.0 - 1.0).collect();
            let o = opts(false, true, 0.5, 0.0);
            let prod = gemm(ctx, &a, &b, None, &o.with_batch(batch))
                .unwrap()
                .into_host()
                .unwrap();
            let mut outs = Vec::new();
            for act in acts {
                for with_bias in [false, true] {
                    let bs = with_bias.then_some(&bias[..]);
                    let got =
                        gemm_fused(ctx, &a, &b, bs, &o.with_activation(act).with_batch(batch))
                            .unwrap()
                            .into_host()
                            .unwrap();
                    let res =
                        gemm_fused(ctx, &a, &b, bs, &o.with_activation(act).with_batch(batch))
                            .unwrap();
                    assert_eq!(res.to_host().unwrap().into_vec(), got.as_slice());
                    // GEMM, bias on the host, activation with the CPU vector map.
                    let mut z = prod.clone().into_vec();
                    if with_bias {
                        for row in z.chunks_mut(n) {
                            for (v, bb) in row.iter_mut().zip(&bias) {
                                *v += bb;
                            }
                        }
                    }
                    let chain: &[Unary] = match act {
                        Activation::None => &[],
                        Activation::Relu => &[Unary::Relu],
                        Activation::Tanh => &[Unary::Tanh],
                        Activation::Sigmoid => &[Unary::Sigmoid],
                        Activation::Gelu => &[Unary::Gelu],
                    };
                    let want = map(&cpu, MatrixView::new(&z, n).unwrap(), chain)
                        .unwrap()
                        .into_host()
                        .unwrap();
                    for (i, (g, w)) in got.as_slice().iter().zip(want.as_slice()).enumerate() {
                        let tol = 16.0 * f32::EPSILON * w.abs().max(1e-6);
                        assert!(
                            (g - w).abs() <= tol,
                            "{} fused {act:?} bias {with_bias} batch {batch} element {i}: {g} vs {w} (seed {})",
                            ctx.device(),
                            seed()
                        );
                    }
                    outs.push(got.into_vec());
                }
            }
            // Every activation and the bias change the output.
            for i in 0..outs.len() {
                for j in i + 1..outs.len() {
                    assert_ne!(outs[i], outs[j], "fused variants {i} and {j} agree");
                }
            }
        }
    });
}

#[test]
fn matrix_operation_errors_are_typed() {
    for_each_backend("matrix_operation_errors_are_typed", |ctx| {
        let a = Matrix::new(vec![1.0; 6], 3).unwrap(); // 2 x 3
        let b = Matrix::new(vec![1.0; 8], 4).unwrap(); // 2 x 4
        let d = GemmOptions::default();
        let inv = |r: Result<vector_accelerate::DeviceMatrix, Error>, name: &str| match r {
            Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("expected invalid {name}, got {other:?}"),
        };
        // 2x3 by 2x4: inner sizes differ; A^T (3x2) by B (2x4) is fine.
        match gemm(ctx, &a, &b, None, &d) {
            Err(Error::InvalidParameter {
                name: "shapes",
                value,
                ..
            }) => {
                assert!(
                    value.contains("op(A) 2 x 3") && value.contains("op(B) 2 x 4"),
                    "{value}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            gemm(ctx, &a, &b, None, &opts(true, false, 1.0, 0.0))
                .unwrap()
                .into_host()
                .unwrap()
                .rows(),
            3
        );
        let empty = MatrixView::new(&[], 3).unwrap();
        assert!(matches!(
            gemm(ctx, empty, &b, None, &d),
            Err(Error::EmptyInput { what: "A" })
        ));
        assert!(matches!(
            gemm(ctx, &a, empty, None, &d),
            Err(Error::EmptyInput { what: "B" })
        ));
        let bits = BinaryMatrix::new(vec![1, 2], 3).unwrap();
        inv(gemm(ctx, &bits, &a, None, &d), "input");
        // beta without C; C of the wrong shape.
        let at = opts(true, false, 1.0, 1.0);
        inv(gemm(ctx, &a, &b, None, &at), "beta");
        inv(gemm(ctx, &a, &b, Some((&a).into()), &at), "C shape");
        // Batches.
        inv(gemm(ctx, &a, &a, None, &d.with_batch(0)), "batch");
        let six = Matrix::new(vec![1.0; 9], 3).unwrap(); // 3 rows
        inv(gemm(ctx, &six, &six, None, &d.with_batch(2)), "batch");
        // Fused: beta and bias length.
        inv(
            gemm_fused(ctx, &a, &b, None, &at.with_activation(Activation::Relu)),
            "beta",
        );
        assert!(matches!(
            gemm_fused(
                ctx,
                &a,
                &b,
                Some(&[1.0; 3]),
                &opts(true, false, 1.0, 0.0).with_activation(Activation::Relu)
            ),
            Err(Error::DimensionMismatch {
                expected: 4,
                got: 3,
                ..
            })
        ));
        // GEMV.
        assert!(matches!(
            gemv(ctx, &a, &[1.0; 2], None, &d),
            Err(Error::DimensionMismatch {
                expected: 3,
                got: 2,
                ..
            })
        ));
        assert!(matches!(
            gemv(ctx, &a, &[], None, &d),
            Err(Error::EmptyInput { what: "x" })
        ));
        assert!(gemv(ctx, &a, &[1.0; 3], None, &opts(false, true, 1.0, 0.0)).is_err());
        assert!(matches!(
            gemv(
                ctx,
                &a,
                &[1.0; 3],
                Some(&[1.0; 3]),
                &opts(false, false, 1.0, 1.0)
            ),
            Err(Error::InvalidParameter {
                name: "C shape",
                ..
            })
        ));
        assert!(matches!(
            transpose(ctx, empty),
            Err(Error::EmptyInput { what: "A" })
        ));
    });
}

#[test]
fn f16_range_and_determinism() {
    for_each_backend("f16_range_and_determinism", |ctx| {
        // 70000 is beyond the f16 range: it becomes +inf (nothing clamped);
        // the same product in fp32 or bf16 is finite.
        let a = Matrix::new(vec![70000.0, 1.0], 2).unwrap();
        let b = Matrix::new(vec![1.0, 1.0], 1).unwrap();
        let with = |p: Precision| {
            let o = GemmOptions::default().with_precision(p);
            gemm(ctx, &a, &b, None, &o)
                .unwrap()
                .into_host()
                .unwrap()
                .as_slice()[0]
        };
        assert_eq!(with(Precision::Exact), 70001.0);
        assert_eq!(with(Precision::F16), f32::INFINITY);
        assert!(with(Precision::Bf16).is_finite());
        // Same input, same backend, same bits.
        let mut r = rng(seed());
        let x = random(&mut r, 129, 257);
        let y = random(&mut r, 257, 65);
        for p in Precision::ALL {
            let o = GemmOptions::default().with_precision(p);
            let first = gemm(ctx, &x, &y, None, &o).unwrap().into_host().unwrap();
            for _ in 0..3 {
                assert_eq!(
                    gemm(ctx, &x, &y, None, &o)
                        .unwrap()
                        .into_host()
                        .unwrap()
                        .as_slice(),
                    first.as_slice()
                );
            }
        }
    });
}

#[test]
fn cuda_agrees_with_the_cpu_reference() {
    let Some(gpu) = cuda() else {
        return;
    };
    let cpu = Context::cpu();
    let mut r = rng(seed());
    for &(m, n, k) in &[
        (1, 1, 1),
        (2, 3, 31),
        (32, 33, 127),
        (127, 31, 1031),
        (3, 1031, 2),
    ] {
        for &(ta, tb) in &TRANS {
            let (ar, ac) = stored(m, k, ta);
            let (br, bc) = stored(k, n, tb);
            let a = random(&mut r, ar, ac);
            let b = random(&mut r, br, bc);
            let c = random(&mut r, m, n);
            for p in [Precision::Exact, Precision::Bf16, Precision::F16] {
                let o = opts(ta, tb, 0.5, 1.5).with_precision(p);
                let x = gemm(&cpu, &a, &b, Some((&c).into()), &o)
                    .unwrap()
                    .into_host()
                    .unwrap();
                let y = gemm(&gpu, &a, &b, Some((&c).into()), &o)
                    .unwrap()
                    .into_host()
                    .unwrap();
                // Both multiply the same (rounded) operands: the difference
                // is that of two fp32 summation orders.
                let (_, scale) = reference(
                    a.as_slice(),
                    b.as_slice(),
                    Some(c.as_slice()),
                    (m, n, k),
                    &o,
                );
                let x64: Vec<f64> = x.as_slice().iter().map(|&v| v as f64).collect();
                check(
                    &format!("cuda vs cpu {m}x{n}x{k} {p}"),
                    y.as_slice(),
                    &x64,
                    &scale,
                    2.0 * rel_tol(&cpu, Precision::Exact, k) * 1.01,
                );
            }
        }
    }
}

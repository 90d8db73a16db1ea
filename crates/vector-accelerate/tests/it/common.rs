//! Shared test helpers: the backend matrix, seeded random data and fp64 oracles.

use std::sync::Once;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use vector_accelerate::{BinaryMatrix, Context, Matrix, Metric, Neighbors, Order, MISSING_ID};

/// Sizes and dimensions every family is checked on.
pub const SIZES: &[usize] = &[1, 2, 3, 31, 32, 33, 127, 1031];
pub const DIMS: &[usize] = &[1, 3, 17, 128, 769];

fn require_gpu() -> bool {
    std::env::var("VECTOR_ACCELERATE_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// The contexts a test runs on: the CPU, plus CUDA device 0 when usable.
pub fn backends() -> Vec<Context> {
    static POISON: Once = Once::new();
    POISON.call_once(|| vector_accelerate::debug::poison_outputs(true));
    let mut v = vec![Context::cpu()];
    match Context::cuda(0) {
        Ok(c) => v.push(c),
        Err(e) => {
            if require_gpu() {
                panic!("VECTOR_ACCELERATE_REQUIRE_GPU=1 but CUDA cannot be used: {e}");
            }
            static SKIP: Once = Once::new();
            SKIP.call_once(|| eprintln!("skip: CUDA halves of the backend matrix not run ({e})"));
        }
    }
    v
}

/// Runs `f` on every backend; on CUDA, logs `[cuda] name` so a GPU run can count them.
pub fn for_each_backend(name: &str, f: impl Fn(&Context)) {
    for ctx in backends() {
        if ctx.is_cuda() {
            eprintln!("[cuda] {name}");
        }
        f(&ctx);
    }
}

/// The CUDA context when present (for CUDA-vs-CPU agreement checks).
pub fn cuda() -> Option<Context> {
    backends().into_iter().find(|c| c.is_cuda())
}

/// A fresh seed per run unless `VA_TEST_SEED` pins it; printed in failures.
pub fn seed() -> u64 {
    std::env::var("VA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn gaussian(r: &mut StdRng, rows: usize, dim: usize) -> Matrix {
    Matrix::new(
        (0..rows * dim)
            .map(|_| r.sample::<f32, _>(StandardNormal))
            .collect(),
        dim,
    )
    .unwrap()
}

pub fn nonneg(r: &mut StdRng, rows: usize, dim: usize) -> Matrix {
    // Some exact zeros so that min/max sums see them.
    Matrix::new(
        (0..rows * dim)
            .map(|_| {
                let v: f32 = r.random();
                if v < 0.2 {
                    0.0
                } else {
                    v
                }
            })
            .collect(),
        dim,
    )
    .unwrap()
}

pub fn bits(r: &mut StdRng, rows: usize, nbits: usize) -> BinaryMatrix {
    let w = nbits.div_ceil(64);
    let mut words: Vec<u64> = (0..rows * w).map(|_| r.random()).collect();
    if !nbits.is_multiple_of(64) {
        for row in 0..rows {
            words[row * w + w - 1] &= (1u64 << (nbits % 64)) - 1;
        }
    }
    BinaryMatrix::new(words, nbits).unwrap()
}

/// fp64 reference of every metric on f32 rows.
pub fn ref_f32(a: &[f32], b: &[f32], m: Metric, w: Option<&[f32]>, thr: f32) -> f64 {
    let a: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    let b: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum();
    let nb: f64 = b.iter().map(|x| x * x).sum();
    let diff = |i: usize| (a[i] - b[i]).abs() * w.map_or(1.0, |w| w[i] as f64);
    let cos = || {
        let den = na.sqrt() * nb.sqrt();
        if den == 0.0 {
            0.0
        } else {
            (dot / den).clamp(-1.0, 1.0)
        }
    };
    match m {
        Metric::L2 => a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum(),
        Metric::Euclidean => a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt(),
        Metric::Cosine => 1.0 - cos(),
        Metric::CosineSimilarity => cos(),
        Metric::InnerProduct => dot,
        Metric::AbsInnerProduct => dot.abs(),
        Metric::L1 => (0..a.len()).map(diff).sum(),
        Metric::Linf => (0..a.len()).map(diff).fold(0.0, f64::max),
        Metric::Minkowski(p) => (0..a.len())
            .map(|i| diff(i).powf(p as f64))
            .sum::<f64>()
            .powf(1.0 / p as f64),
        Metric::Hamming | Metric::HammingNormalized => {
            let t = thr as f64;
            let c = (0..a.len()).filter(|&i| (a[i] > t) != (b[i] > t)).count() as f64;
            if m == Metric::Hamming {
                c
            } else {
                c / a.len() as f64
            }
        }
        Metric::Jaccard => {
            let smin: f64 = a.iter().zip(&b).map(|(x, y)| x.min(*y)).sum();
            let smax: f64 = a.iter().zip(&b).map(|(x, y)| x.max(*y)).sum();
            if smax == 0.0 {
                0.0
            } else {
                1.0 - smin / smax
            }
        }
    }
}

/// fp64 (exact integer) reference on bit-packed rows.
pub fn ref_bits(a: &[u64], b: &[u64], nbits: usize, m: Metric) -> f64 {
    let x: u32 = a.iter().zip(b).map(|(p, q)| (p ^ q).count_ones()).sum();
    let i: u32 = a.iter().zip(b).map(|(p, q)| (p & q).count_ones()).sum();
    let u: u32 = a.iter().zip(b).map(|(p, q)| (p | q).count_ones()).sum();
    match m {
        Metric::Hamming => x as f64,
        Metric::HammingNormalized => x as f64 / nbits as f64,
        Metric::Jaccard => {
            if u == 0 {
                0.0
            } else {
                1.0 - i as f64 / u as f64
            }
        }
        _ => f64::NAN,
    }
}

/// Absolute tolerance of an fp32 result of `m` between rows with these
/// squared norms, for dimension `d` (value `v` for relative metrics).
pub fn tol(m: Metric, d: usize, qn: f64, xn: f64, v: f64) -> f64 {
    let s = (d as f64).sqrt().max(1.0);
    match m {
        Metric::L2 => 2e-6 * s * (qn + xn) + 1e-30,
        Metric::Euclidean => (2e-6 * s * (qn + xn)).sqrt() + 1e-6 * v,
        Metric::Cosine | Metric::CosineSimilarity => 2e-6 * s + 1e-6,
        Metric::InnerProduct | Metric::AbsInnerProduct => 2e-6 * s * (qn * xn).sqrt() + 1e-30,
        Metric::L1 => 2e-6 * s * v.abs() + 1e-30,
        Metric::Linf => 1e-6 * v.abs() + 1e-30,
        Metric::Minkowski(_) => 1e-4 * v.abs() + 1e-30,
        Metric::Hamming | Metric::HammingNormalized | Metric::Jaccard => 1e-6,
    }
}

/// Checks a k-NN (or top-k) result row against fp64 values of every
/// candidate: the returned values are within `tol` of the fp64 values of
/// their ids, the ranking is the fp64 ranking up to genuine ties (fp64 value
/// at each position equals the sorted reference within `tol`), ids are
/// distinct, and the tail beyond the candidates is missing.
pub fn check_row(
    label: &str,
    got_ids: &[u64],
    got_d: &[f32],
    ref_vals: &[f64],
    order: Order,
    tol: f64,
) {
    let k = got_ids.len();
    let mut sorted: Vec<f64> = ref_vals.to_vec();
    sorted.sort_by(|a, b| match order {
        Order::Smallest => a.total_cmp(b),
        Order::Largest => b.total_cmp(a),
    });
    let have = ref_vals.len().min(k);
    let mut seen = std::collections::HashSet::new();
    for j in 0..k {
        if j >= have {
            assert_eq!(
                got_ids[j], MISSING_ID,
                "{label}: position {j} should be missing"
            );
            let miss = vector_accelerate::missing_value(order);
            assert_eq!(got_d[j], miss, "{label}: missing value at {j}");
            continue;
        }
        let id = got_ids[j];
        assert!(
            (id as usize) < ref_vals.len(),
            "{label}: position {j} has id {id} (n = {})",
            ref_vals.len()
        );
        assert!(seen.insert(id), "{label}: id {id} returned twice");
        let exact = ref_vals[id as usize];
        assert!(
            (got_d[j] as f64 - exact).abs() <= tol,
            "{label}: value of id {id} at {j}: got {}, fp64 {exact}, tol {tol}",
            got_d[j]
        );
        assert!(
            (exact - sorted[j]).abs() <= 2.0 * tol,
            "{label}: rank {j}: id {id} has fp64 {exact} but the {j}-th best is {} (tol {tol})",
            sorted[j]
        );
    }
}

/// Two results agree: values within `tol`, and ids equal wherever the
/// values are not within `tol` of a neighbour (genuine ties may swap).
pub fn assert_close_neighbors(
    label: &str,
    a: &Neighbors,
    b: &Neighbors,
    tol: impl Fn(usize) -> f64,
) {
    assert_eq!((a.rows(), a.k()), (b.rows(), b.k()), "{label}: shapes");
    for r in 0..a.rows() {
        let t = tol(r);
        let (ai, bi) = (a.row_ids(r), b.row_ids(r));
        let (ad, bd) = (a.row_distances(r), b.row_distances(r));
        for j in 0..a.k() {
            assert_eq!(
                ai[j] == MISSING_ID,
                bi[j] == MISSING_ID,
                "{label}: row {r} pos {j} missing on one side only"
            );
            if ai[j] == MISSING_ID {
                continue;
            }
            let same = ad[j] == bd[j] || (ad[j].is_nan() && bd[j].is_nan());
            assert!(
                same || ((ad[j] - bd[j]) as f64).abs() <= t,
                "{label}: row {r} pos {j}: {} vs {} (tol {t})",
                ad[j],
                bd[j]
            );
            if ai[j] != bi[j] {
                // A swap is allowed only among values within tolerance.
                let near = |d: &[f32], x: f32| d.iter().any(|v| ((*v - x) as f64).abs() <= 2.0 * t);
                assert!(
                    near(bd, ad[j]) && near(ad, bd[j]),
                    "{label}: row {r} pos {j}: ids {} vs {} with values {} vs {}",
                    ai[j],
                    bi[j],
                    ad[j],
                    bd[j]
                );
            }
        }
    }
}

/// Squared norm in fp64.
pub fn sqn(a: &[f32]) -> f64 {
    a.iter().map(|&v| v as f64 * v as f64).sum()
}

/// A Gaussian mixture like real embeddings: `centers` unit-variance centres,
/// each row one centre plus noise of standard deviation `spread`, so that
/// neighbours sit close together relative to the rows' norms.
pub fn clustered(r: &mut StdRng, rows: usize, dim: usize, centers: usize, spread: f32) -> Matrix {
    let mut cr = rng(0xC1A5_7E25 ^ dim as u64 ^ ((centers as u64) << 20));
    let c = gaussian(&mut cr, centers.max(1), dim);
    let mut v = Vec::with_capacity(rows * dim);
    for _ in 0..rows {
        let ci = r.random_range(0..centers.max(1));
        for &cv in c.row(ci) {
            v.push(cv + spread * r.sample::<f32, _>(StandardNormal));
        }
    }
    Matrix::new(v, dim).unwrap()
}

/// Serialises the tests that run or count the 16-bit k-NN filter passes:
/// their launch and overflow counters are process-wide.
pub fn sixteen_bit_passes() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

//! Exact k-nearest-neighbour search: a resident base, several metrics, a
//! fast precision mode, and the result checked against a brute-force scan.
//!
//! `cargo run --release --example knn` (CUDA when a GPU is present; set
//! `VECTOR_ACCELERATE_DEVICE=cpu` to force the CPU).

use vector_accelerate::{knn, knn_with, Context, KnnOptions, Matrix, Metric, Precision};

/// Deterministic pseudo-random rows in [-1, 1).
fn rows(n: usize, dim: usize, seed: u64) -> Matrix {
    let v = (0..(n * dim) as u64)
        .map(|i| {
            // SplitMix64 of the element's index.
            let mut z = (i + (seed << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Matrix::new(v, dim).expect("whole rows")
}

fn main() -> vector_accelerate::Result<()> {
    let ctx = Context::new()?;
    println!("device: {} ({})", ctx.device(), ctx.info().name);
    let (base, queries) = (rows(20_000, 96, 1), rows(64, 96, 2));
    // Upload the base once; every search then reads it on the device.
    let resident = ctx.upload(&base)?;
    for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
        let hits = knn(&ctx, &queries, &resident, 5, metric)?;
        println!("{metric}: query 0 -> {:?}", hits.row_ids(0));
    }
    // Exact: the first neighbour of each query is the brute-force best.
    let hits = knn(&ctx, &queries, &resident, 1, Metric::L2)?;
    for q in 0..queries.rows() {
        let d = |r: usize| -> f64 {
            let (a, b) = (queries.row(q), base.row(r));
            a.iter()
                .zip(b)
                .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
                .sum()
        };
        let best = (0..base.rows()).map(d).fold(f64::INFINITY, f64::min);
        assert!((d(hits.row_ids(q)[0] as usize) - best).abs() <= 1e-3 * best.max(1.0));
    }
    // A fast mode ranks with bf16 copies and still returns fp32 distances.
    let opts = KnnOptions::default().with_precision(Precision::Bf16);
    let fast = knn_with(&ctx, &queries, &resident, 5, &opts)?;
    println!("bf16 ranking: query 0 -> {:?}", fast.row_ids(0));
    Ok(())
}

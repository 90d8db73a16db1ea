//! ML kernels: PCA trained on data, a neural quantizer built from it, a
//! learned distance through a linear projection, and attention scores.
//!
//! `cargo run --release --example ml`

use vector_accelerate::ml::{
    AttentionSimilarity, LearnedDistance, Linear, NeuralQuantizer, NqOptions, Pca,
};
use vector_accelerate::quantize::SearchOptions;
use vector_accelerate::{Context, Matrix, Metric};

fn main() -> vector_accelerate::Result<()> {
    let ctx = Context::new()?;
    let v: Vec<f32> = (0..2000 * 64)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let x = Matrix::new(v, 64)?;
    let pca = Pca::train(&ctx, &x, 16)?;
    let kept: f32 = pca.explained_variance_ratio().iter().sum();
    println!("PCA 64 -> 16 keeps {:.1}% of the variance", 100.0 * kept);
    let nq = NeuralQuantizer::from_pca(&ctx, &pca, &NqOptions::default())?;
    let codes = nq.encode(&ctx, &x)?;
    let hits = nq.search(&ctx, &x, &codes, 3, &SearchOptions::default())?;
    println!("int8 latent codes: row 0 -> {:?}", hits.row_ids(0));
    let report = nq.reconstruction(&ctx, &x)?;
    println!("reconstruction mean cosine {:.4}", report.int8.mean_cosine);
    let ld = LearnedDistance::new(Linear::xavier(&ctx, 64, 32, 1)?, Metric::Cosine)?;
    let base = ld.project(&ctx, &x)?;
    println!(
        "learned distance: row 5 -> {:?}",
        ld.knn(&ctx, &x, &base, 3)?.row_ids(5)
    );
    let att = AttentionSimilarity::new(
        Linear::xavier(&ctx, 64, 64, 2)?,
        Linear::xavier(&ctx, 64, 64, 3)?,
        4,
    )?;
    let scores = att.scores(&ctx, &x, &x)?.to_host()?;
    println!("attention scores {} x {}", scores.rows(), scores.dim());
    Ok(())
}

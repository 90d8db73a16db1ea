//! Compression: scalar, binary and product quantizers through one `Codec`
//! interface, a search with exact re-ranking, quality metrics, and a saved
//! quantizer read back.
//!
//! `cargo run --release --example quantize`

use vector_accelerate::quantize::{
    BinaryOptions, Codec, PqOptions, Quality, Quantizer, QuantizerOptions, ScalarOptions,
    SearchOptions,
};
use vector_accelerate::{Context, Matrix};

fn main() -> vector_accelerate::Result<()> {
    let ctx = Context::new()?;
    let v: Vec<f32> = (0..4096 * 32)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let x = Matrix::new(v, 32)?;
    let queries = Matrix::new(x.as_slice()[..32 * 4].to_vec(), 32)?;
    let rerank = SearchOptions::default().with_rerank(&x, 50);
    for opts in [
        QuantizerOptions::Scalar(ScalarOptions::int8()),
        QuantizerOptions::Binary(BinaryOptions::default()),
        QuantizerOptions::Product(PqOptions::new(8, 6).with_iterations(10)),
    ] {
        let q = Quantizer::train(&ctx, &x, &opts)?;
        let codes = q.encode(&ctx, &x)?;
        let hits = q.search(&ctx, &queries, &codes, 3, &rerank)?;
        let back = q.decode(&ctx, &codes)?.into_host()?;
        let quality = Quality::measure(x.view(), back.view(), q.code_size() * x.rows())?;
        println!(
            "{}: {} bytes per vector, query 0 -> {:?}, reconstruction MSE {:.4}",
            q.kind_name(),
            q.code_size(),
            hits.row_ids(0),
            quality.mse
        );
        assert_eq!(hits.row_ids(0)[0], 0); // each query is a base row
    }
    let path = std::env::temp_dir().join("vector-accelerate-example.vaq");
    let sq = Quantizer::train(&ctx, &x, &QuantizerOptions::Scalar(ScalarOptions::int4()))?;
    sq.save(&path)?;
    assert_eq!(Quantizer::load(&path)?, sq);
    std::fs::remove_file(&path).ok();
    Ok(())
}

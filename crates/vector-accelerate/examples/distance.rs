//! Distances: one pair on the host, and every pair of two sets of rows
//! under several metrics, including a weighted L1.
//!
//! `cargo run --release --example distance`

use vector_accelerate::distance::{distance, pairwise};
use vector_accelerate::{Context, Distance, Matrix, Metric};

fn main() -> vector_accelerate::Result<()> {
    let ctx = Context::new()?;
    let a = Matrix::new(vec![0.0, 0.0, 1.0, 1.0, 3.0, 4.0], 2)?;
    let b = Matrix::new(vec![1.0, 0.0, 0.0, 2.0], 2)?;
    println!("l2(a0, b0) = {}", distance(a.row(0), b.row(0), Metric::L2)?);
    for metric in [Metric::L2, Metric::Euclidean, Metric::L1, Metric::Cosine] {
        let d = pairwise(&ctx, &a, &b, metric)?;
        println!("{metric}: {:?}", d.as_slice());
    }
    let weighted = Distance::new(Metric::L1).with_weights(vec![1.0, 0.25]);
    let d = pairwise(&ctx, &a, &b, weighted)?;
    assert_eq!(d.get(2, 1), 3.0 + 0.25 * 2.0);
    println!("weighted l1: {:?}", d.as_slice());
    Ok(())
}

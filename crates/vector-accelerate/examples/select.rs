//! Selection: the k smallest values of each row, and the merge of two
//! lists of candidates (as partial searches produce them).
//!
//! `cargo run --release --example select`

use vector_accelerate::select::{merge, topk};
use vector_accelerate::{Context, Matrix, Order};

fn main() -> vector_accelerate::Result<()> {
    let ctx = Context::new()?;
    let scores = Matrix::new(
        (0..4 * 1000).map(|i| ((i * 7919) % 1000) as f32).collect(),
        1000,
    )?;
    let best = topk(&ctx, &scores, 3, Order::Smallest)?;
    for r in 0..best.rows() {
        println!(
            "row {r}: ids {:?} values {:?}",
            best.row_ids(r),
            best.row_distances(r)
        );
    }
    // Lists from two searches (here: the same scores shifted by 0.5) merge
    // into the best 3 of both.
    let shifted = Matrix::new(scores.as_slice().iter().map(|v| v + 0.5).collect(), 1000)?;
    let other = topk(&ctx, &shifted, 3, Order::Smallest)?;
    let both = merge(&ctx, &[best.clone(), other], 3)?;
    println!("merged row 0: values {:?}", both.row_distances(0));
    assert_eq!(both.row_distances(0), &[0.0, 0.5, 1.0]);
    Ok(())
}

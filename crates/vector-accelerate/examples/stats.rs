//! Statistics: descriptive moments per column, quantiles, and a
//! correlation matrix; non-finite values refused or skipped on request.
//!
//! `cargo run --release --example stats`

use vector_accelerate::stats::{correlation, describe, quantiles, StatsOptions};
use vector_accelerate::vector::Axis;
use vector_accelerate::{Context, Matrix};

fn main() -> vector_accelerate::Result<()> {
    let ctx = Context::new()?;
    let v: Vec<f32> = (0..3000)
        .map(|i| ((i * 7919) % 1000) as f32 / 100.0)
        .collect();
    let x = Matrix::new(v, 3)?; // 1000 x 3
    let opts = StatsOptions::default();
    for (j, m) in describe(&ctx, &x, Axis::PerColumn, &opts)?
        .iter()
        .enumerate()
    {
        println!(
            "column {j}: mean {:?}, std {:?}",
            m.mean(),
            m.variance(1).map(f64::sqrt)
        );
    }
    let q = quantiles(&ctx, &x, &[0.25, 0.5, 0.75], Axis::All, &opts)?;
    println!("quartiles of all values: {:?}", q[0]);
    let r = correlation(&ctx, &x)?;
    assert_eq!(r.get(0, 0), 1.0);
    let mut gap = x.clone();
    gap.as_mut_slice()[4] = f32::NAN;
    assert!(describe(&ctx, &gap, Axis::PerColumn, &opts).is_err());
    let skip = StatsOptions::default().with_skip_non_finite(true);
    let m = describe(&ctx, &gap, Axis::PerColumn, &skip)?;
    println!("column 1 skipped {} non-finite value(s)", m[1].non_finite());
    Ok(())
}

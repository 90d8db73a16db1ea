//! Histograms and kernel density: uniform and custom bins, outliers
//! counted or clipped, densities, and a Gaussian KDE.
//!
//! `cargo run --release --example histogram`

use vector_accelerate::histogram::{
    histogram, kde, Bandwidth, BinSpec, HistogramOptions, Outliers,
};
use vector_accelerate::{Context, Matrix};

fn main() -> vector_accelerate::Result<()> {
    let ctx = Context::new()?;
    let v: Vec<f32> = (0..10_000)
        .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 1.0)
        .collect();
    let x = Matrix::new(v, 100)?;
    let spec = BinSpec::Uniform {
        bins: 8,
        range: Some((0.0, 8.0)),
    };
    let h = histogram(&ctx, &x, &spec, &HistogramOptions::default())?;
    println!(
        "counts {:?}, below {}, above {}",
        h.counts, h.below, h.above
    );
    let clipped = HistogramOptions::default()
        .with_outliers(Outliers::Clip)
        .with_density(true);
    let h = histogram(&ctx, &x, &spec, &clipped)?;
    assert_eq!(h.counts.iter().sum::<u64>(), 10_000);
    println!("densities {:?}", h.density);
    let edges = BinSpec::Edges(vec![-1.0, 0.0, 1.0, 9.0]);
    println!(
        "custom bins {:?}",
        histogram(&ctx, &x, &edges, &HistogramOptions::default())?.counts
    );
    let k = kde(&ctx, &x, 16, None, Bandwidth::Scott)?;
    println!(
        "kde bandwidth {:.4}, density at grid[8] {:.4}",
        k.bandwidth, k.density[8]
    );
    Ok(())
}

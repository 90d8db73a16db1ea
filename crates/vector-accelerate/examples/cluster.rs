//! k-means: training with progress, then assigning new points to the
//! trained centroids.
//!
//! `cargo run --release --example cluster`

use vector_accelerate::cluster::{assign, kmeans, KMeansOptions};
use vector_accelerate::{Context, Matrix};

fn main() -> vector_accelerate::Result<()> {
    let ctx = Context::new()?;
    // Four blobs around (±5, ±5).
    let v: Vec<f32> = (0..4000 * 2)
        .map(|i| {
            let (p, c) = (i / 2, i % 2);
            let centre = if (p >> c) & 1 == 1 { 5.0 } else { -5.0 };
            centre + ((i * 7919) % 1000) as f32 / 1000.0 - 0.5
        })
        .collect();
    let x = Matrix::new(v, 2)?;
    let opts = KMeansOptions::new(4)
        .with_seed(7)
        .with_progress(|p| println!("iteration {}: inertia {:.3}", p.iteration, p.inertia));
    let km = kmeans(&ctx, &x, &opts)?;
    println!(
        "centroids {:?} after {} iterations",
        km.centroids.as_slice(),
        km.iterations
    );
    assert_eq!(km.counts.iter().sum::<usize>(), 4000);
    let probe = Matrix::new(vec![4.9, 5.2, -5.1, -4.8], 2)?;
    let a = assign(&ctx, &probe, &km.centroids, false)?;
    println!(
        "probe clusters {:?}, distances {:?}",
        a.clusters, a.distances
    );
    Ok(())
}

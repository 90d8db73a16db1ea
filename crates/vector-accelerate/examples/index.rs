//! A vector index: IVF-Flat built from a factory string, searched with
//! and without a filter, a removal, then saved and loaded.
//!
//! `cargo run --release --example index`

use vector_accelerate::index::{IdSelector, Index, SearchParams};
use vector_accelerate::{knn, Context, Matrix, Metric};

fn main() -> vector_accelerate::Result<()> {
    let ctx = Context::new()?;
    let (n, dim) = (20_000, 64);
    let data = Matrix::new(
        (0..n * dim)
            .map(|i| {
                ((i * 2_654_435_761usize) % 10_007) as f32 / 10_007.0 - 0.5 + (i / dim % 50) as f32
            })
            .collect(),
        dim,
    )?;
    let mut index = Index::new(&ctx, dim, "IVF,Flat", Metric::L2)?;
    index.train(&data)?;
    let ids: Vec<u64> = (0..n as u64).map(|i| 1_000_000 + i).collect();
    index.add_with_ids(&data, &ids)?;
    println!(
        "{}: {} vectors, {:.1} MB",
        index.factory(),
        index.len(),
        index.memory_usage() as f64 / 1e6
    );

    let queries = data.view().slice_rows(0, 100);
    let exact = knn(&ctx, queries, &data, 10, Metric::L2)?;
    for nprobe in [1, 4, 16] {
        let hits = index.search(queries, 10, &SearchParams::default().with_nprobe(nprobe))?;
        let found = (0..100)
            .map(|r| {
                let got = hits.row_ids(r);
                exact
                    .row_ids(r)
                    .iter()
                    .filter(|&&i| got.contains(&ids[i as usize]))
                    .count()
            })
            .sum::<usize>();
        println!("nprobe {nprobe:>2}: recall@10 {:.3}", found as f64 / 1000.0);
    }

    let even = IdSelector::from_fn(|id| id % 2 == 0);
    let hits = index.search(
        queries,
        10,
        &SearchParams::default().with_nprobe(4).with_filter(&even),
    )?;
    assert!(hits.ids().iter().all(|id| id % 2 == 0));
    index.remove_ids(&IdSelector::range(1_000_000..1_000_010))?;
    let path = std::env::temp_dir().join("example-index.vai");
    index.save(&path)?;
    let back = Index::load(&ctx, &path)?;
    println!(
        "saved and loaded: {} vectors, first id gone: {}",
        back.len(),
        !back.contains(1_000_000)
    );
    Ok(())
}

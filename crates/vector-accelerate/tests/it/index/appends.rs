//! Adds after a search: the new rows wait beside the packed lists (a tail
//! scanned on its own) until they pass a share of them. Searches must
//! equal those of an index that packed every row at once.

use super::tol_of;
use crate::common::{assert_close_neighbors, clustered, for_each_backend, rng, seed};
use vector_accelerate::index::{IdSelector, Index, SearchParams};
use vector_accelerate::{Context, Matrix, Metric};

/// An empty index trained on `train`, twice: the second loaded from the
/// first's file, so both have the same centroids and codecs.
fn twins(ctx: &Context, factory: &str, train: &Matrix, m: Metric) -> (Index, Index) {
    let mut a = Index::new(ctx, train.dim(), factory, m).unwrap();
    a.train(train).unwrap();
    let dir = std::env::temp_dir().join(format!("va-tail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{m}.vai", factory.replace(',', "-")));
    a.save(&path).unwrap();
    let b = Index::load(ctx, &path).unwrap();
    (a, b)
}

/// Searches of `got` and `want` with and without filters, compared.
fn compare(label: &str, got: &Index, want: &Index, q: &Matrix, filters: &[IdSelector]) {
    for nprobe in [1, 3, 16] {
        let plain = SearchParams::default().with_nprobe(nprobe);
        let mut params = vec![("plain".to_string(), plain)];
        for f in filters {
            params.push((format!("{f:?}"), plain.with_filter(f)));
        }
        for (what, p) in &params {
            for k in [1, 7, 40] {
                let w = want.search(q, k, p).unwrap();
                let g = got.search(q, k, p).unwrap();
                let l = format!("{label} {what} nprobe {nprobe} k {k}");
                assert_close_neighbors(&l, &g, &w, tol_of(&w));
            }
        }
    }
}

#[test]
fn rows_added_after_a_search_are_found_as_if_packed_with_the_rest() {
    let s = seed();
    for_each_backend("index tail adds", |ctx| {
        let mut r = rng(s);
        let dim = 24;
        let base = clustered(&mut r, 4_000, dim, 40, 0.6);
        let q = clustered(&mut r, 37, dim, 40, 0.6);
        let cases = [
            ("IVF16,Flat", Metric::L2),
            ("IVF16,Flat", Metric::Cosine),
            ("IVF16,Flat", Metric::InnerProduct),
            ("IVF16,Flat", Metric::L1),
            ("IVF16,SQ8", Metric::Euclidean),
            ("IVF16,PQ6x8", Metric::CosineSimilarity),
            ("IVF16,PQ8x8,Refine", Metric::L2),
        ];
        for (factory, m) in cases {
            let (mut got, mut want) = twins(ctx, factory, &base, m);
            let label = format!("seed {s} {factory} {m}");
            // Packed after the first search; later adds of 1, 3, 50 and
            // then 1,100 rows (past the tail's limit: a repack).
            let cuts = [0, 2_000, 2_001, 2_004, 2_054, 3_154, 4_000];
            let mut deny = Vec::new();
            for w in cuts.windows(2) {
                let part = base.view().slice_rows(w[0], w[1]);
                got.add(part).unwrap();
                want.add(part).unwrap();
                deny.push(w[1] as u64 - 1);
                // Every other row of the last adds, and a range, allowed.
                let filters = [
                    IdSelector::from_fn(|id| {
                        (id >= 1_990 && id % 2 == 0) || (100..400).contains(&id)
                    }),
                    IdSelector::deny((0..4_000).step_by(97)),
                ];
                // `want` packs its lists afresh for this search.
                let fresh = Index::load(ctx, save(&want, &label)).unwrap();
                compare(
                    &format!("{label} rows {}", w[1]),
                    &got,
                    &fresh,
                    &q,
                    &filters,
                );
                got.remove_ids(&IdSelector::allow([w[1] as u64 - 1]))
                    .unwrap();
                want.remove_ids(&IdSelector::allow([w[1] as u64 - 1]))
                    .unwrap();
            }
            assert_eq!(got.len(), 4_000 - deny.len(), "{label}");
        }
    });
}

/// `index` saved to a scratch file named after `label`.
fn save(index: &Index, label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("va-tail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let path = dir.join(format!("{name}.vai"));
    index.save(&path).unwrap();
    path
}

//! Bad input to indexes: typed errors, and nothing changed by a refused call.

use crate::common::{gaussian, rng, seed};
use vector_accelerate::index::{Index, SearchParams};
use vector_accelerate::{BinaryMatrix, Context, Error, Matrix, Metric, MISSING_ID};

#[test]
fn bad_factories_and_dimensions_are_refused() {
    let ctx = Context::cpu();
    for spec in [
        "",
        "HNSW32",
        "IVF0,Flat",
        "IVFx,Flat",
        "IVF16",
        "IVF16,Flat,Refine",
        "IVF16,PQ8x0",
        "Flat,Flat",
    ] {
        assert!(
            matches!(
                Index::new(&ctx, 8, spec, Metric::L2),
                Err(Error::BadFactory { .. })
            ),
            "{spec}"
        );
    }
    assert!(matches!(
        Index::new(&ctx, 0, "Flat", Metric::L2),
        Err(Error::ZeroDimension { .. })
    ));
    assert!(Index::new(&ctx, 8, " ivf16 , flat ", Metric::L2).is_ok());
    assert!(Index::new(&ctx, 8, "IVF16,SQ8", Metric::L2).is_ok());
    // PQ sub-spaces must divide the dimension.
    assert!(matches!(
        Index::new(&ctx, 8, "IVF16,PQ3", Metric::L2),
        Err(Error::BadFactory { .. })
    ));
    let weights = vector_accelerate::Distance::new(Metric::L1).with_weights(vec![1.0; 3]);
    assert!(
        Index::new(&ctx, 8, "Flat", weights).is_err(),
        "3 weights for 8 dimensions"
    );
}

#[test]
fn bad_vectors_ids_and_parameters_are_refused_without_a_change() {
    let ctx = Context::cpu();
    let mut r = rng(seed());
    let x = gaussian(&mut r, 20, 5);
    let mut index = Index::new(&ctx, 5, "Flat", Metric::L2).unwrap();
    index
        .add_with_ids(&x, &(0..20).collect::<Vec<_>>())
        .unwrap();
    let wrong = gaussian(&mut r, 3, 4);
    assert!(matches!(
        index.add(&wrong),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        index.search(&wrong, 1, &SearchParams::default()),
        Err(Error::DimensionMismatch { .. })
    ));
    let two = x.view().slice_rows(0, 2);
    assert!(matches!(
        index.add_with_ids(two, &[7, 100]),
        Err(Error::DuplicateId { id: 7 })
    ));
    assert!(matches!(
        index.add_with_ids(two, &[100, 100]),
        Err(Error::DuplicateId { id: 100 })
    ));
    assert!(index.add_with_ids(two, &[100, MISSING_ID]).is_err());
    assert!(matches!(
        index.add_with_ids(two, &[100]),
        Err(Error::DimensionMismatch { .. })
    ));
    let mut nan = x.view().slice_rows(0, 2).as_slice().to_vec();
    nan[3] = f32::NAN;
    assert!(index.add(&Matrix::new(nan, 5).unwrap()).is_err());
    let bits = BinaryMatrix::new(vec![0u64; 2], 5).unwrap();
    assert!(index.add(&bits).is_err());
    assert_eq!(index.len(), 20, "refused adds change nothing");
    assert!(!index.contains(100));
    assert!(matches!(
        index.search(&x, 0, &SearchParams::default()),
        Err(Error::InvalidK { k: 0 })
    ));
    assert!(index.set_nprobe(0).is_err());
    assert!(index.set_compaction_threshold(1.5).is_err());
    assert!(index
        .range_search(&x, f32::NAN, &SearchParams::default())
        .is_err());
    let mut ivf = Index::new(&ctx, 5, "IVF2,Flat", Metric::L2).unwrap();
    ivf.train(&x).unwrap();
    ivf.add(&x).unwrap();
    assert!(ivf
        .search(&x, 3, &SearchParams::default().with_nprobe(0))
        .is_err());
}

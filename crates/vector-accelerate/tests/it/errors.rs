//! Bad input gives a typed error naming the values, never a panic.

use crate::common::*;
use vector_accelerate::distance::{distance, pairwise};
use vector_accelerate::select::{merge, topk, StreamingTopK};
use vector_accelerate::{
    knn, BinaryMatrix, BinaryView, Distance, Error, Matrix, MatrixView, Metric, Order,
};

#[test]
fn shape_and_parameter_errors_are_typed() {
    for_each_backend("shape_and_parameter_errors_are_typed", |ctx| {
        let q = Matrix::new(vec![1.0; 6], 3).unwrap();
        let x = Matrix::new(vec![1.0; 8], 4).unwrap();
        let empty = MatrixView::new(&[], 3).unwrap();
        assert!(matches!(
            knn(ctx, &q, &x, 1, Metric::L2),
            Err(Error::DimensionMismatch {
                expected: 4,
                got: 3,
                ..
            })
        ));
        assert!(matches!(
            knn(ctx, &q, &q, 0, Metric::L2),
            Err(Error::InvalidK { k: 0 })
        ));
        assert!(matches!(
            knn(ctx, empty, &q, 1, Metric::L2),
            Err(Error::EmptyInput { what: "queries" })
        ));
        assert!(matches!(
            knn(ctx, &q, empty, 1, Metric::L2),
            Err(Error::EmptyInput { what: "base" })
        ));
        assert!(matches!(
            knn(ctx, &q, &q, 1, Metric::Minkowski(0.0)),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            knn(ctx, &q, &q, 1, Metric::Minkowski(f32::NAN)),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            knn(ctx, &q, &q, 1, Metric::Minkowski(-2.0)),
            Err(Error::InvalidParameter { .. })
        ));
        let bad_w = Distance::new(Metric::L1).with_weights(vec![1.0; 2]);
        assert!(matches!(
            knn(ctx, &q, &q, 1, bad_w),
            Err(Error::DimensionMismatch {
                expected: 3,
                got: 2,
                ..
            })
        ));
        let neg_w = Distance::new(Metric::L1).with_weights(vec![1.0, -1.0, 1.0]);
        assert!(matches!(
            knn(ctx, &q, &q, 1, neg_w),
            Err(Error::InvalidParameter { .. })
        ));
        let w_on_l2 = Distance::new(Metric::L2).with_weights(vec![1.0; 3]);
        assert!(matches!(
            knn(ctx, &q, &q, 1, w_on_l2),
            Err(Error::UnsupportedMetric { .. })
        ));
        let norm_on_l1 = Distance::new(Metric::L1).normalized_inputs();
        assert!(matches!(
            knn(ctx, &q, &q, 1, norm_on_l1),
            Err(Error::UnsupportedMetric { .. })
        ));
        let thr_on_l2 = Distance::new(Metric::L2).with_threshold(0.5);
        assert!(matches!(
            knn(ctx, &q, &q, 1, thr_on_l2),
            Err(Error::UnsupportedMetric { .. })
        ));
        let b = BinaryMatrix::new(vec![1, 2], 3).unwrap();
        assert!(matches!(
            knn(ctx, &b, &b, 1, Metric::L2),
            Err(Error::UnsupportedMetric { .. })
        ));
        assert!(matches!(
            knn(ctx, &q, &b, 1, Metric::Hamming),
            Err(Error::InvalidParameter { .. })
        ));
        let neg = Matrix::new(vec![1.0, -0.5, 2.0], 3).unwrap();
        let e = knn(ctx, &neg, &q, 1, Metric::Jaccard).unwrap_err();
        assert!(e.to_string().contains("negative"), "{e}");
        let resident_neg = ctx.upload(&neg).unwrap();
        let e = knn(ctx, &q, &resident_neg, 1, Metric::Jaccard).unwrap_err();
        assert!(e.to_string().contains("negative"), "{e}");
        assert!(matches!(
            pairwise(ctx, &q, &x, Metric::L1),
            Err(Error::DimensionMismatch { .. })
        ));
        assert!(matches!(
            topk(ctx, q.view(), 0, Order::Smallest),
            Err(Error::InvalidK { .. })
        ));
        let words = vector_accelerate::BinaryMatrix::new(vec![1, 2], 64).unwrap();
        let e = topk(ctx, &words, 1, Order::Smallest).unwrap_err();
        assert!(e.to_string().contains("f32 values"), "{e}");
        let e = topk(ctx, &ctx.upload(&words).unwrap(), 1, Order::Smallest).unwrap_err();
        assert!(e.to_string().contains("f32 values"), "{e}");
        assert!(matches!(merge(ctx, &[], 3), Err(Error::EmptyInput { .. })));
        assert!(matches!(
            ctx.alloc_pinned(3, 0),
            Err(Error::ZeroDimension { .. })
        ));
        assert!(matches!(
            ctx.alloc_pinned(usize::MAX, 2),
            Err(Error::InvalidParameter { .. })
        ));
        let mut st = StreamingTopK::new(ctx, 2, 3, Order::Smallest).unwrap();
        assert!(matches!(
            st.push(q.view(), &[1, 2]),
            Err(Error::DimensionMismatch { .. })
        ));
        assert!(matches!(
            st.push(q.view(), &[1, 2, u64::MAX]),
            Err(Error::InvalidParameter { .. })
        ));
    });
}

#[test]
fn constructors_validate() {
    assert!(matches!(
        MatrixView::new(&[1.0; 7], 3),
        Err(Error::RaggedData { len: 7, dim: 3, .. })
    ));
    assert!(matches!(
        Matrix::new(vec![1.0; 3], 0),
        Err(Error::ZeroDimension { .. })
    ));
    // A set padding bit past `bits` is rejected.
    assert!(matches!(
        BinaryView::new(&[1 << 5], 5),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        BinaryMatrix::from_packed_bytes(&[1, 2, 3], 2, 9),
        Err(Error::RaggedData { .. })
    ));
    assert!(matches!(
        distance(&[1.0], &[1.0, 2.0], Metric::L2),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        "bogus".parse::<Metric>(),
        Err(Error::UnknownMetric { .. })
    ));
    assert!(matches!(
        "minkowski:-1".parse::<Metric>(),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        "minkowski:x".parse::<Metric>(),
        Err(Error::InvalidParameter { .. })
    ));
    assert_eq!(
        "minkowski:inf".parse::<Metric>().unwrap(),
        Metric::Minkowski(f32::INFINITY)
    );
    assert_eq!(
        "MINKOWSKI:2.5".parse::<Metric>().unwrap(),
        Metric::Minkowski(2.5)
    );
    let e = Error::OutOfDeviceMemory {
        what: "tile",
        requested: 10,
        available: 5,
    };
    assert!(e.to_string().contains("10") && e.to_string().contains('5'));
}

#[test]
fn resident_data_on_another_device_is_refused() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: resident_data_on_another_device_is_refused needs a GPU");
        return;
    };
    eprintln!("[cuda] resident_data_on_another_device_is_refused");
    let cpu = vector_accelerate::Context::cpu();
    let x = Matrix::new(vec![1.0; 6], 3).unwrap();
    let on_gpu = gpu.upload(&x).unwrap();
    let on_cpu = cpu.upload(&x).unwrap();
    assert!(matches!(
        knn(&cpu, &x, &on_gpu, 1, Metric::L2),
        Err(Error::DeviceMismatch { .. })
    ));
    assert!(matches!(
        knn(&gpu, &x, &on_cpu, 1, Metric::L2),
        Err(Error::DeviceMismatch { .. })
    ));
    // An explicit budget too small for one tile is a typed error with the numbers.
    let tiny = gpu.clone().with_memory_budget(100);
    assert!(matches!(
        knn(&tiny, &x, &x, 1, Metric::L2),
        Err(Error::OutOfDeviceMemory { available: 100, .. })
    ));
}

//! `knn_resident` (results left on the device) and DLPack import/export of
//! rows and results.

use crate::common::*;
use vector_accelerate::dlpack::{DLManagedTensor, DEVICE_CPU, DEVICE_CUDA};
use vector_accelerate::{
    knn, knn_resident, Context, DeviceMatrix, Error, KnnOptions, Metric, ResidentNeighbors,
};

/// Resident results read back equal the host call's, bit for bit, on shapes
/// around the tiles and with a budget that splits the queries into several
/// super-blocks.
#[test]
fn resident_results_equal_the_host_call() {
    for_each_backend("resident_results_equal_the_host_call", |ctx| {
        let s = seed();
        let mut r = rng(s);
        for &(nq, nb, dim, k) in &[
            (1, 1, 1, 1),
            (3, 31, 17, 5),
            (33, 1031, 128, 10),
            (257, 4099, 19, 100),
        ] {
            let q = gaussian(&mut r, nq, dim);
            let x = gaussian(&mut r, nb, dim);
            for m in [Metric::L2, Metric::CosineSimilarity, Metric::L1] {
                let opts = KnnOptions::default().with_metric(m);
                let want = knn(ctx, &q, &x, k, m).unwrap();
                let got = knn_resident(ctx, &q, &x, k, &opts).unwrap();
                assert_eq!((got.rows(), got.k()), (nq, k));
                assert_eq!(got.ids().device(), ctx.device());
                let host = got.to_host().unwrap();
                let what = format!("seed {s} {m} {nq}x{nb}x{dim} k {k}");
                assert_eq!(host.ids(), want.ids(), "{what}");
                assert_eq!(host.distances(), want.distances(), "{what}");
            }
        }
        // A small budget: many super-blocks copied into one result.
        let small = ctx.clone().with_memory_budget(1 << 20);
        let (q, x) = (gaussian(&mut r, 3001, 64), gaussian(&mut r, 5003, 64));
        let want = knn(&small, &q, &x, 7, Metric::L2).unwrap();
        let got = knn_resident(&small, &q, &x, 7, &KnnOptions::default()).unwrap();
        let host = got.to_host().unwrap();
        assert_eq!(host.ids(), want.ids(), "seed {s} split queries");
        assert_eq!(host.distances(), want.distances(), "seed {s} split queries");
        // Host results uploaded read back unchanged, missing ids included.
        let tiny = knn(ctx, &q, x.view().slice_rows(0, 3), 5, Metric::L2).unwrap();
        let up = ResidentNeighbors::upload(ctx, &tiny).unwrap();
        assert_eq!(up.ids().device(), ctx.device());
        assert_eq!(up.to_host().unwrap(), tiny, "seed {s} upload");
    });
}

/// Reads an exported tensor's shape, strides and device, then frees it.
fn inspect(t: *mut DLManagedTensor) -> (Vec<i64>, Vec<i64>, i32, (u8, u8)) {
    // SAFETY: `t` is a live export; its deleter is called once, last.
    unsafe {
        let d = &(*t).dl_tensor;
        let n = d.ndim as usize;
        let shape = std::slice::from_raw_parts(d.shape, n).to_vec();
        let strides = std::slice::from_raw_parts(d.strides, n).to_vec();
        let out = (
            shape,
            strides,
            d.device.device_type,
            (d.dtype.code, d.dtype.bits),
        );
        ((*t).deleter.unwrap())(t);
        out
    }
}

/// Exports carry the result's shape, dtype and device; ids export as
/// int64 with the shape checked; device tensors come back in place and
/// search like the host rows; a tensor on another device, of another dtype
/// or strided is a typed error.
#[test]
fn dlpack_exports_and_imports_in_place() {
    for_each_backend("dlpack_exports_and_imports_in_place", |ctx| {
        let s = seed();
        let mut r = rng(s);
        let (q, x) = (gaussian(&mut r, 5, 13), gaussian(&mut r, 301, 13));
        let res = knn_resident(ctx, &q, &x, 4, &KnnOptions::default()).unwrap();
        let (ids, dist) = res.into_parts();
        let kind = if ctx.is_cuda() {
            DEVICE_CUDA
        } else {
            DEVICE_CPU
        };
        let t = dist.into_dlpack(None).unwrap();
        assert_eq!(inspect(t), (vec![5, 4], vec![4, 1], kind, (2, 32)));
        let bad = ids.into_dlpack([4, 4], None).unwrap_err();
        assert!(
            matches!(
                bad,
                Error::DimensionMismatch {
                    expected: 20,
                    got: 16,
                    ..
                }
            ),
            "{bad}"
        );
        let ids = knn_resident(ctx, &q, &x, 4, &KnnOptions::default())
            .unwrap()
            .into_parts()
            .0;
        assert_eq!(
            inspect(ids.into_dlpack([5, 4], Some(1)).unwrap()).3,
            (0, 64)
        );

        // Waiting for another stream (here the default one) is a no-op on
        // the CPU and an ordering on CUDA.
        ctx.wait_for_stream(0).unwrap();
        let rows = ctx.upload(&x).unwrap();
        let t = rows.into_dlpack(Some(1)).unwrap();
        // SAFETY: `t` stays alive until its deleter runs below.
        let back = unsafe { DeviceMatrix::from_dlpack(ctx, &(*t).dl_tensor) };
        if !ctx.is_cuda() {
            let e = back.unwrap_err();
            assert!(matches!(e, Error::DeviceMismatch { .. }), "{e}");
        } else {
            let back = back.unwrap();
            assert_eq!((back.rows(), back.dim()), (301, 13));
            let want = knn(ctx, &q, &x, 4, Metric::L2).unwrap();
            let got = knn(ctx, &q, &*back, 4, Metric::L2).unwrap();
            assert_eq!(got.ids(), want.ids(), "seed {s}");
            drop(back);
            // Rows 100.. of the same memory through byte_offset, as a view.
            // SAFETY: the offset stays inside the live export.
            unsafe {
                let mut view = std::ptr::read(&(*t).dl_tensor);
                let mut shape = [201i64, 13];
                view.shape = shape.as_mut_ptr();
                view.byte_offset = 100 * 13 * 4;
                let part = DeviceMatrix::from_dlpack(ctx, &view).unwrap();
                let tail = x.view().slice_rows(100, 301);
                let want = knn(ctx, &q, tail, 4, Metric::L2).unwrap();
                let got = knn(ctx, &q, &*part, 4, Metric::L2).unwrap();
                assert_eq!(got.ids(), want.ids(), "seed {s} offset view");
                // Column-major strides are refused, not misread.
                let mut strides = [1i64, 201];
                view.strides = strides.as_mut_ptr();
                let e = DeviceMatrix::from_dlpack(ctx, &view).unwrap_err();
                assert!(e.to_string().contains("C-contiguous"), "{e}");
                view.dtype.bits = 64;
                let e = DeviceMatrix::from_dlpack(ctx, &view).unwrap_err();
                assert!(e.to_string().contains("float32"), "{e}");
            }
            let cpu = Context::cpu();
            // SAFETY: as above.
            let e = unsafe { DeviceMatrix::from_dlpack(&cpu, &(*t).dl_tensor) }.unwrap_err();
            assert!(matches!(e, Error::DeviceMismatch { .. }), "{e}");
        }
        // SAFETY: the export is freed once, after every view of it.
        unsafe { ((*t).deleter.unwrap())(t) };
    });
}

/// One to four queries over a resident base (on CUDA the two-launch direct
/// path): the CPU's neighbours within tolerance on shapes around a warp's
/// two rows and the select's limits (k above the rows, dimensions not a
/// multiple of 4), and for one query the streamed base's lists exactly
/// (both keep the re-score's values).
#[test]
fn few_queries_over_a_resident_base_match_the_cpu() {
    let cpu = Context::cpu();
    for_each_backend("few_queries_over_a_resident_base_match_the_cpu", |ctx| {
        let s = seed();
        let mut r = rng(s);
        for &(nq, nb, dim, k) in &[
            (1, 1, 1, 1),
            (1, 2, 3, 5),
            (2, 17, 5, 3),
            (3, 4097, 128, 10),
            (4, 9001, 33, 32),
            (1, 70_001, 96, 100),
            (2, 513, 768, 7),
        ] {
            let q = gaussian(&mut r, nq, dim);
            let x = gaussian(&mut r, nb, dim);
            let xr = ctx.upload(&x).unwrap();
            let xmax = (0..nb).map(|j| sqn(x.row(j))).fold(0.0, f64::max);
            for m in [
                Metric::L2,
                Metric::Euclidean,
                Metric::InnerProduct,
                Metric::Cosine,
                Metric::CosineSimilarity,
            ] {
                let want = knn(&cpu, &q, &x, k, m).unwrap();
                let got = knn(ctx, &q, &xr, k, m).unwrap();
                let what = format!("seed {s} {m} {nq}x{nb}x{dim} k {k}");
                assert_close_neighbors(&what, &want, &got, |i| {
                    tol(m, dim, sqn(q.row(i)), xmax, 0.0)
                });
                if nq == 1 {
                    let streamed = knn(ctx, &q, &x, k, m).unwrap();
                    assert_eq!(got.ids(), streamed.ids(), "{what}: streamed ids");
                    assert_eq!(got.distances(), streamed.distances(), "{what}");
                }
            }
        }
    });
}

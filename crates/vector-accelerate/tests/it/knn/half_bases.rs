//! Bases kept in 16 bits (`Context::upload_f16` / `upload_bf16`) as `knn`
//! bases: on CUDA the GEMM metrics give the CPU's results on the widened
//! f32 rows (alone, with the fast precision modes, and for queries f16
//! cannot hold); on the CPU the rows are widened at upload; any other use
//! of 16-bit device rows on CUDA, and ragged or empty uploads, are typed
//! errors.

use crate::common::*;
use vector_accelerate::half::{bf16, f16};
use vector_accelerate::select::topk;
use vector_accelerate::{
    distance::pairwise, knn, knn_with, Context, DeviceMatrix, Distance, Error, KnnOptions, Matrix,
    Metric, Order, Precision,
};

/// The rows rounded to f16 or bf16: the uploaded matrix and the f32 rows it
/// holds exactly.
fn sixteen_bit(ctx: &Context, x: &Matrix, bf: bool) -> (DeviceMatrix, Matrix) {
    let dim = x.dim();
    if bf {
        let h: Vec<bf16> = x.as_slice().iter().map(|&v| bf16::from_f32(v)).collect();
        let wide: Vec<f32> = h.iter().map(|v| v.to_f32()).collect();
        (
            ctx.upload_bf16(&h, dim).unwrap(),
            Matrix::new(wide, dim).unwrap(),
        )
    } else {
        let h: Vec<f16> = x.as_slice().iter().map(|&v| f16::from_f32(v)).collect();
        let wide: Vec<f32> = h.iter().map(|v| v.to_f32()).collect();
        (
            ctx.upload_f16(&h, dim).unwrap(),
            Matrix::new(wide, dim).unwrap(),
        )
    }
}

#[test]
fn sixteen_bit_bases_match_their_widened_rows() {
    let _g = sixteen_bit_passes();
    let s = seed();
    for_each_backend("sixteen_bit_bases_match_their_widened_rows", |ctx| {
        let cpu = Context::cpu();
        let mut r = rng(s);
        // One query (the exact single-row filter), a few (GEMM path), 64+
        // (16-bit tensor cores), dims not multiples of 8, bases past the
        // first tile.
        for &(nq, nb, dim) in &[
            (1usize, 9001usize, 3usize),
            (1, 20_011, 768),
            (5, 12_289, 100),
            (16, 30_011, 129),
            (64, 9001, 17),
            (200, 33_000, 128),
            (130, 17_000, 768),
        ] {
            for (kind, q, x) in [
                (
                    "gaussian",
                    gaussian(&mut r, nq, dim),
                    gaussian(&mut r, nb, dim),
                ),
                (
                    "clustered",
                    clustered(&mut r, nq, dim, 50, 0.1),
                    clustered(&mut r, nb, dim, 50, 0.1),
                ),
            ] {
                for bf in [false, true] {
                    let (up, wide) = sixteen_bit(ctx, &x, bf);
                    assert_eq!(up.to_host().unwrap().into_vec(), wide.as_slice().to_vec());
                    let xmax = (0..nb).map(|j| sqn(wide.row(j))).fold(0.0, f64::max);
                    for d in [
                        Distance::from(Metric::L2),
                        Metric::Euclidean.into(),
                        Metric::Cosine.into(),
                        Metric::InnerProduct.into(),
                    ] {
                        let m = d.metric;
                        for k in [1, 10, 100] {
                            let want = knn(&cpu, &q, &wide, k, d.clone()).unwrap();
                            let got = knn(ctx, &q, &up, k, d.clone()).unwrap();
                            let vmax = want
                                .distances()
                                .iter()
                                .filter(|v| v.is_finite())
                                .fold(0.0f64, |a, v| a.max((*v as f64).abs()));
                            let label = format!(
                                "seed {s} {} {kind} {} {nq}x{nb}x{dim} {m} k {k}",
                                ctx.device(),
                                if bf { "bf16" } else { "f16" }
                            );
                            assert_close_neighbors(&label, &want, &got, |i| {
                                tol(m, dim, sqn(q.row(i)), xmax, vmax)
                            });
                        }
                    }
                }
            }
        }
    });
}

#[test]
fn sixteen_bit_bases_with_fast_modes_and_unrepresentable_queries() {
    let _g = sixteen_bit_passes();
    let Some(gpu) = cuda() else {
        eprintln!(
            "skip: sixteen_bit_bases_with_fast_modes_and_unrepresentable_queries needs a GPU"
        );
        return;
    };
    eprintln!("[cuda] sixteen_bit_bases_with_fast_modes_and_unrepresentable_queries");
    let cpu = Context::cpu();
    let s = seed();
    let mut r = rng(s);
    let (nq, nb, dim) = (150, 20_000, 96);
    let q = gaussian(&mut r, nq, dim);
    let x = gaussian(&mut r, nb, dim);
    let (up, wide) = sixteen_bit(&gpu, &x, false);
    let xmax = (0..nb).map(|j| sqn(wide.row(j))).fold(0.0, f64::max);
    // Fast modes rank with the stored format and a narrower margin: every
    // returned value is still the fp32 value of its pair.
    for p in [Precision::Bf16, Precision::F16] {
        let got = knn_with(
            &gpu,
            &q,
            &up,
            10,
            &KnnOptions::default()
                .with_precision(p)
                .with_metric(Metric::L2),
        )
        .unwrap();
        for i in 0..nq {
            for (j, &id) in got.row_ids(i).iter().enumerate() {
                let v = ref_f32(q.row(i), wide.row(id as usize), Metric::L2, None, 0.0);
                let t = tol(Metric::L2, dim, sqn(q.row(i)), xmax, 0.0);
                assert!(
                    (got.row_distances(i)[j] as f64 - v).abs() <= t,
                    "seed {s} {p} q{i}"
                );
            }
        }
    }
    // Queries f16 cannot hold: the tiles go through the widened GEMM path.
    let mut qv = q.clone().into_vec();
    qv[7] = 9.0e4;
    let q2 = Matrix::new(qv, dim).unwrap();
    let want = knn(&cpu, &q2, &wide, 10, Metric::InnerProduct).unwrap();
    let got = knn(&gpu, &q2, &up, 10, Metric::InnerProduct).unwrap();
    assert_close_neighbors(&format!("seed {s} big queries"), &want, &got, |i| {
        tol(Metric::InnerProduct, dim, sqn(q2.row(i)), xmax, 0.0)
    });
}

#[test]
fn sixteen_bit_device_rows_are_only_a_knn_base() {
    let _g = sixteen_bit_passes();
    let Some(gpu) = cuda() else {
        eprintln!("skip: sixteen_bit_device_rows_are_only_a_knn_base needs a GPU");
        return;
    };
    eprintln!("[cuda] sixteen_bit_device_rows_are_only_a_knn_base");
    let mut r = rng(seed());
    let q = gaussian(&mut r, 3, 8);
    let (up, _) = sixteen_bit(&gpu, &gaussian(&mut r, 50, 8), true);
    let refused = |e: Error| {
        assert!(matches!(e, Error::InvalidParameter { .. }), "{e}");
        assert!(e.to_string().contains("16 bits"), "{e}");
    };
    refused(pairwise(&gpu, &q, &up, Metric::L2).unwrap_err());
    refused(knn(&gpu, &q, &up, 3, Metric::L1).unwrap_err());
    refused(knn(&gpu, &up, &q, 3, Metric::L2).unwrap_err());
    refused(topk(&gpu, &up, 3, Order::Smallest).unwrap_err());
    // Ragged and empty uploads are typed errors on every backend.
    for ctx in [Context::cpu(), gpu] {
        assert!(matches!(
            ctx.upload_f16(&[f16::ONE; 5], 2),
            Err(Error::RaggedData { .. })
        ));
        assert!(matches!(
            ctx.upload_bf16(&[], 2),
            Err(Error::EmptyInput { .. })
        ));
        assert!(matches!(
            ctx.upload_bf16(&[bf16::ONE], 0),
            Err(Error::ZeroDimension { .. })
        ));
    }
}

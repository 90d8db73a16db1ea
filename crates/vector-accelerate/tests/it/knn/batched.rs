//! `knn` with many queries at once (64 rows or more) over bases larger than
//! one tile, for the GEMM metrics (L2, Euclidean, cosine, inner products):
//! results equal the CPU's up to genuine ties on Gaussian and clustered
//! data, for dims that are not multiples of the kernels' tiles; they match
//! fp64 and hold for k up to 5,000; they stay right when many candidates
//! tie with the k-th best (tight clusters, duplicate rows, ties to the
//! smaller id) and on a resident base under a small memory budget. CUDA
//! only (the shapes of its tensor-core path); skipped without a GPU.

use crate::common::*;
use vector_accelerate::{knn, Context, Distance, Matrix, Metric};

fn gemm_metrics() -> Vec<Distance> {
    vec![
        Metric::L2.into(),
        Metric::Euclidean.into(),
        Metric::Cosine.into(),
        Metric::CosineSimilarity.into(),
        Metric::InnerProduct.into(),
        Metric::AbsInnerProduct.into(),
    ]
}

fn agree(
    label: &str,
    cpu: &Context,
    gpu: &Context,
    q: &Matrix,
    x: &Matrix,
    k: usize,
    d: &Distance,
) {
    let a = knn(cpu, q, x, k, d.clone()).unwrap();
    let b = knn(gpu, q, x, k, d.clone()).unwrap();
    let m = d.metric;
    let xmax = (0..x.rows()).map(|j| sqn(x.row(j))).fold(0.0, f64::max);
    let vmax = a
        .distances()
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |acc, v| acc.max((*v as f64).abs()));
    assert_close_neighbors(&format!("{label} {m} k {k}"), &a, &b, |i| {
        tol(m, q.dim(), sqn(q.row(i)), xmax, vmax)
    });
}

#[test]
fn fused_path_matches_the_cpu_on_gaussian_and_clustered_data() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: fused_path_matches_the_cpu_on_gaussian_and_clustered_data needs a GPU");
        return;
    };
    eprintln!("[cuda] fused_path_matches_the_cpu_on_gaussian_and_clustered_data");
    let cpu = Context::cpu();
    let s = seed();
    let mut r = rng(s);
    // Query counts around the 128-row block tile, base sizes past the
    // 4,096-row first tile (several doubling tiles), dims around the
    // 32-wide pipeline stage and not multiples of 4.
    for &(nq, nb, dim) in &[
        (64usize, 4097usize, 1usize),
        (127, 9001, 3),
        (128, 12_289, 17),
        (129, 20_011, 100),
        (300, 33_000, 128),
        (257, 17_000, 129),
        (96, 10_007, 768),
        // Few queries: the exact one-warp-per-row filter.
        (1, 9001, 3),
        (3, 20_011, 128),
        (16, 70_001, 768),
        (5, 12_289, 1000),
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
            for d in gemm_metrics() {
                for k in [1, 10, 100] {
                    agree(
                        &format!("seed {s} {kind} {nq}x{nb}x{dim}"),
                        &cpu,
                        &gpu,
                        &q,
                        &x,
                        k,
                        &d,
                    );
                }
            }
        }
    }
}

#[test]
fn fused_path_matches_fp64_and_handles_large_k() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: fused_path_matches_fp64_and_handles_large_k needs a GPU");
        return;
    };
    eprintln!("[cuda] fused_path_matches_fp64_and_handles_large_k");
    let cpu = Context::cpu();
    let s = seed();
    let mut r = rng(s);
    let (nq, nb, dim) = (70, 24_000, 36);
    let q = clustered(&mut r, nq, dim, 20, 0.2);
    let x = clustered(&mut r, nb, dim, 20, 0.2);
    for d in [
        Distance::from(Metric::L2),
        Metric::InnerProduct.into(),
        Metric::Cosine.into(),
    ] {
        let got = knn(&gpu, &q, &x, 10, d.clone()).unwrap();
        let m = d.metric;
        let xmax = (0..nb).map(|j| sqn(x.row(j))).fold(0.0, f64::max);
        for i in 0..nq {
            let vals: Vec<f64> = (0..nb)
                .map(|j| ref_f32(q.row(i), x.row(j), m, None, 0.0))
                .collect();
            let vmax = vals.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            check_row(
                &format!("seed {s} fp64 {m} q{i}"),
                got.row_ids(i),
                got.row_distances(i),
                &vals,
                m.order(),
                tol(m, dim, sqn(q.row(i)), xmax, vmax),
            );
        }
        for k in [1000, 2049, 5000] {
            agree(&format!("seed {s} large k"), &cpu, &gpu, &q, &x, k, &d);
        }
    }
}

#[test]
fn fused_path_survives_overflowing_candidate_lists() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: fused_path_survives_overflowing_candidate_lists needs a GPU");
        return;
    };
    eprintln!("[cuda] fused_path_survives_overflowing_candidate_lists");
    let cpu = Context::cpu();
    let s = seed();
    let mut r = rng(s);
    let (nq, nb, dim) = (130, 16_411, 32);
    // Ever tighter clusters around few centres: the TF32 bound covers more
    // and more of a cluster until the three-pass filter, and then the GEMM
    // path, must take over.
    for spread in [0.3f32, 0.03, 0.003, 0.0003] {
        let q = clustered(&mut r, nq, dim, 3, spread);
        let x = clustered(&mut r, nb, dim, 3, spread);
        for d in gemm_metrics() {
            for k in [1, 16] {
                agree(
                    &format!("seed {s} spread {spread}"),
                    &cpu,
                    &gpu,
                    &q,
                    &x,
                    k,
                    &d,
                );
            }
        }
    }
    // Exact duplicates: every row of a cluster ties with the k-th best, more
    // of them than a query's candidate room (8 k, at least 512), so every
    // pass overflows and the rescue ranks the tile's rows on the device.
    let proto = gaussian(&mut r, 5, dim);
    let rows: Vec<f32> = (0..nb).flat_map(|j| proto.row(j % 5).to_vec()).collect();
    let x = Matrix::new(rows, dim).unwrap();
    let q = gaussian(&mut r, nq, dim);
    let cases = gemm_metrics().into_iter().flat_map(|d| {
        [
            (d.clone(), q.clone(), 20),
            (d.clone(), q.clone(), 300),
            (d.clone(), gaussian(&mut r, 7, dim), 20),
            (d, gaussian(&mut r, 1, dim), 20),
        ]
    });
    for (d, q, k) in cases.collect::<Vec<_>>() {
        let nq = q.rows();
        let a = knn(&cpu, &q, &x, k, d.clone()).unwrap();
        let b = knn(&gpu, &q, &x, k, d.clone()).unwrap();
        let m = d.metric;
        assert_close_neighbors(
            &format!("seed {s} duplicates {m} {nq}q k {k}"),
            &a,
            &b,
            |i| tol(m, dim, sqn(q.row(i)), 100.0, 100.0),
        );
        // Ties go to the smaller id: the duplicates of the best prototype in order.
        for i in 0..nq {
            let ids = b.row_ids(i);
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{m} q{i}: {ids:?}");
        }
    }
}

#[test]
fn fused_path_on_a_resident_base_under_a_small_budget() {
    // A resident base with a budget far below one distance tile: the fused
    // filter's doubling tiles outgrow the GEMM path's tiles, and when lists
    // overflow (duplicates) the GEMM path walks such a tile in parts.
    let Some(gpu) = cuda() else {
        eprintln!("skip: fused_path_on_a_resident_base_under_a_small_budget needs a GPU");
        return;
    };
    eprintln!("[cuda] fused_path_on_a_resident_base_under_a_small_budget");
    let cpu = Context::cpu();
    let s = seed();
    let mut r = rng(s);
    let (nq, nb, dim) = (100, 40_009, 64);
    let proto = gaussian(&mut r, 7, dim);
    let dup: Vec<f32> = (0..nb).flat_map(|j| proto.row(j % 7).to_vec()).collect();
    for (kind, x) in [
        ("gaussian", gaussian(&mut r, nb, dim)),
        ("clustered", clustered(&mut r, nb, dim, 40, 0.05)),
        ("duplicates", Matrix::new(dup, dim).unwrap()),
    ] {
        let q = gaussian(&mut r, nq, dim);
        let small = gpu.clone().with_memory_budget(3 << 20);
        let resident = small.upload(&x).unwrap();
        for d in gemm_metrics() {
            for k in [1, 10, 64] {
                let a = knn(&cpu, &q, &x, k, d.clone()).unwrap();
                let b = knn(&small, &q, &resident, k, d.clone()).unwrap();
                let m = d.metric;
                let xmax = (0..nb).map(|j| sqn(x.row(j))).fold(0.0, f64::max);
                assert_close_neighbors(&format!("seed {s} {kind} budget {m} k {k}"), &a, &b, |i| {
                    tol(m, dim, sqn(q.row(i)), xmax, 1e4)
                });
            }
        }
    }
}

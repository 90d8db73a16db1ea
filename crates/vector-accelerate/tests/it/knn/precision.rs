//! `knn_with` and a fast `Precision` (`Tf32`, `Bf16`, `F16` in
//! `KnnOptions`): every returned value is the fp32 value of its pair,
//! recall against the exact result stays near 1, the fast mode really ran
//! rather than falling back (`debug::filter_stats`), results are
//! deterministic and the same for resident and streamed bases, data f16
//! cannot hold falls back to TF32, precision names parse, and the CPU
//! ignores the mode.

use crate::common::*;
use vector_accelerate::debug::filter_stats;
use vector_accelerate::{
    knn, knn_with, Context, Distance, KnnOptions, Matrix, Metric, Neighbors, Precision, MISSING_ID,
};

/// Index of a precision's filter pass in `filter_stats`.
fn pass_index(p: Precision) -> usize {
    match p {
        Precision::Exact | Precision::Tf32 => 0,
        Precision::Bf16 => 2,
        Precision::F16 => 3,
    }
}

/// Fraction of the exact result's ids found by `got`, row by row, counting
/// an id of `got` as found when its value ties the exact k-th best.
fn recall(exact: &Neighbors, got: &Neighbors, t: f64) -> f64 {
    let (mut hit, mut all) = (0usize, 0usize);
    for r in 0..exact.rows() {
        let ids: std::collections::HashSet<u64> = exact.row_ids(r).iter().copied().collect();
        let kth = *exact.row_distances(r).last().unwrap() as f64;
        for (j, &id) in got.row_ids(r).iter().enumerate() {
            if id == MISSING_ID {
                continue;
            }
            all += 1;
            if ids.contains(&id) || (got.row_distances(r)[j] as f64 - kth).abs() <= t {
                hit += 1;
            }
        }
    }
    hit as f64 / all.max(1) as f64
}

#[test]
fn fast_precisions_return_fp32_values_with_high_recall() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: fast_precisions_return_fp32_values_with_high_recall needs a GPU");
        return;
    };
    eprintln!("[cuda] fast_precisions_return_fp32_values_with_high_recall");
    let _g = sixteen_bit_passes();
    let cpu = Context::cpu();
    let s = seed();
    let mut r = rng(s);
    for &(nq, nb, dim) in &[
        (64usize, 9001usize, 3usize),
        (129, 20_011, 17),
        (200, 33_000, 128),
        (130, 17_000, 129),
        (96, 12_289, 768),
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
            let xmax = (0..nb).map(|j| sqn(x.row(j))).fold(0.0, f64::max);
            let xr = gpu.upload(&x).unwrap();
            for d in [
                Distance::from(Metric::L2),
                Metric::Cosine.into(),
                Metric::InnerProduct.into(),
            ] {
                let m = d.metric;
                let k = 10;
                let exact = knn(&cpu, &q, &x, k, d.clone()).unwrap();
                for p in [Precision::Tf32, Precision::Bf16, Precision::F16] {
                    let label = format!("seed {s} {kind} {nq}x{nb}x{dim} {m} {p}");
                    let opts = KnnOptions::default()
                        .with_metric(d.clone())
                        .with_precision(p);
                    let before = filter_stats()[pass_index(p)];
                    // Resident base (cached 16-bit copy) and a streamed one.
                    let a = knn_with(&gpu, &q, &xr, k, &opts).unwrap();
                    let b = knn_with(&gpu, &q, &x, k, &opts).unwrap();
                    let after = filter_stats()[pass_index(p)];
                    // (Tf32 shares the exact passes, which other tests run
                    // concurrently: only the 16-bit passes are counted.)
                    if p != Precision::Tf32 {
                        assert!(after.0 > before.0, "{label}: the fast pass never ran");
                        if kind == "gaussian" && dim >= 17 {
                            assert_eq!(after.1, before.1, "{label}: the fast pass overflowed");
                        }
                    }
                    assert_eq!(a.ids(), b.ids(), "{label}: resident vs streamed ids");
                    assert_eq!(
                        a.distances(),
                        b.distances(),
                        "{label}: resident vs streamed"
                    );
                    let again = knn_with(&gpu, &q, &xr, k, &opts).unwrap();
                    assert_eq!(a.ids(), again.ids(), "{label}: not deterministic");
                    assert_eq!(
                        a.distances(),
                        again.distances(),
                        "{label}: not deterministic"
                    );
                    let vmax = exact
                        .distances()
                        .iter()
                        .fold(0.0f64, |acc, v| acc.max((*v as f64).abs()));
                    for i in 0..nq {
                        let t = tol(m, dim, sqn(q.row(i)), xmax, vmax);
                        for (j, &id) in a.row_ids(i).iter().enumerate() {
                            let v = ref_f32(q.row(i), x.row(id as usize), m, None, 0.0);
                            let got = a.row_distances(i)[j] as f64;
                            assert!(
                                (got - v).abs() <= t,
                                "{label}: q{i} pos {j} id {id}: {got} vs fp64 {v} (tol {t})"
                            );
                        }
                        let w = a.row_distances(i);
                        assert!(
                            w.windows(2).all(|p| match m.order() {
                                vector_accelerate::Order::Smallest => p[0] <= p[1],
                                vector_accelerate::Order::Largest => p[0] >= p[1],
                            }),
                            "{label}: q{i} not sorted: {w:?}"
                        );
                    }
                    let t = tol(m, dim, xmax, xmax, vmax);
                    let rc = recall(&exact, &a, t);
                    assert!(rc >= 0.995, "{label}: recall@{k} {rc}");
                }
            }
        }
    }
}

#[test]
fn f16_precision_falls_back_to_tf32_beyond_the_f16_range() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: f16_precision_falls_back_to_tf32_beyond_the_f16_range needs a GPU");
        return;
    };
    eprintln!("[cuda] f16_precision_falls_back_to_tf32_beyond_the_f16_range");
    let _g = sixteen_bit_passes();
    let cpu = Context::cpu();
    let s = seed();
    let mut r = rng(s);
    let (nq, nb, dim) = (100, 10_000, 64);
    let q = gaussian(&mut r, nq, dim);
    let mut xv = gaussian(&mut r, nb, dim).into_vec();
    // One base value f16 cannot hold: the whole call ranks with TF32
    // (nothing is clamped), and the results are still right.
    xv[5 * dim + 3] = 1.0e5;
    let x = Matrix::new(xv, dim).unwrap();
    let xr = gpu.upload(&x).unwrap();
    let opts = KnnOptions::default().with_precision(Precision::F16);
    let ip = opts.clone().with_metric(Metric::InnerProduct);
    let exact = knn(&cpu, &q, &x, 10, Metric::L2).unwrap();
    let xmax = (0..nb).map(|j| sqn(x.row(j))).fold(0.0, f64::max);
    for (name, base) in [
        ("streamed", vector_accelerate::Input::from(&x)),
        ("resident", (&xr).into()),
    ] {
        let before = filter_stats()[3].0;
        let got = knn_with(&gpu, &q, base, 10, &opts).unwrap();
        assert_close_neighbors(&format!("seed {s} f16 range {name}"), &exact, &got, |i| {
            tol(Metric::L2, dim, sqn(q.row(i)), xmax, 0.0)
        });
        // A resident base is converted whole: no f16 pass at all. (A
        // streamed base loses the f16 pass only for the big row's tile.)
        if name == "resident" {
            assert_eq!(
                filter_stats()[3].0,
                before,
                "f16 pass on a resident base f16 cannot hold"
            );
        }
    }
    // Queries f16 cannot hold: no f16 pass at all.
    let mut qv = q.clone().into_vec();
    qv[3] = -7.0e4;
    let q2 = Matrix::new(qv, dim).unwrap();
    let before = filter_stats()[3].0;
    let got = knn_with(&gpu, &q2, &xr, 10, &ip).unwrap();
    assert_eq!(
        filter_stats()[3].0,
        before,
        "f16 pass ran on f16-unrepresentable queries"
    );
    let exact = knn(&cpu, &q2, &x, 10, Metric::InnerProduct).unwrap();
    assert_close_neighbors(&format!("seed {s} f16 range queries"), &exact, &got, |i| {
        tol(Metric::InnerProduct, dim, sqn(q2.row(i)), xmax, 0.0)
    });
}

#[test]
fn precision_names_parse_and_cpu_ignores_the_mode() {
    for p in Precision::ALL {
        assert_eq!(p.name().parse::<Precision>().unwrap(), p);
    }
    assert!("fp8".parse::<Precision>().is_err());
    let cpu = Context::cpu();
    let mut r = rng(seed());
    let q = gaussian(&mut r, 5, 12);
    let x = gaussian(&mut r, 300, 12);
    let exact = knn(&cpu, &q, &x, 7, Metric::L2).unwrap();
    for p in Precision::ALL {
        let opts = KnnOptions::default().with_precision(p);
        let got = knn_with(&cpu, &q, &x, 7, &opts).unwrap();
        assert_eq!(got.ids(), exact.ids(), "{p}");
        assert_eq!(got.distances(), exact.distances(), "{p}");
    }
}

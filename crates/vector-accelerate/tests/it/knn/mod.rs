//! `knn` (exact k-NN) on every metric and shape against fp64, CPU-vs-CUDA
//! agreement, memory budgets that force tiling, resident data, large bases
//! with few queries, and ties and NaN ranked by id. The submodules cover
//! many queries over large bases (`batched`), the fast precision modes
//! (`precision`) and bases kept in 16 bits (`half_bases`).

mod batched;
mod half_bases;
mod precision;
mod resident;

use crate::common::*;
use rand::Rng;
use vector_accelerate::{knn, Distance, Matrix, Metric, Order};

fn metrics() -> Vec<Distance> {
    vec![
        Metric::L2.into(),
        Metric::Euclidean.into(),
        Metric::Cosine.into(),
        Metric::CosineSimilarity.into(),
        Metric::InnerProduct.into(),
        Metric::AbsInnerProduct.into(),
        Metric::L1.into(),
        Metric::Linf.into(),
        Metric::Minkowski(3.0).into(),
        Metric::Minkowski(0.7).into(),
        Metric::Hamming.into(),
    ]
}

fn check_against_fp64(
    label: &str,
    q: &Matrix,
    x: &Matrix,
    d: &Distance,
    res: &vector_accelerate::Neighbors,
) {
    let m = d.metric;
    let xmax = (0..x.rows()).map(|j| sqn(x.row(j))).fold(0.0, f64::max);
    for i in 0..q.rows() {
        let vals: Vec<f64> = (0..x.rows())
            .map(|j| {
                ref_f32(
                    q.row(i),
                    x.row(j),
                    m,
                    d.weights.as_deref(),
                    d.binarize_threshold,
                )
            })
            .collect();
        let vmax = vals.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        let t = tol(m, q.dim(), sqn(q.row(i)), xmax, vmax);
        check_row(
            &format!("{label} {m} q{i}"),
            res.row_ids(i),
            res.row_distances(i),
            &vals,
            m.order(),
            t,
        );
    }
}

#[test]
fn knn_matches_fp64_on_every_metric_and_shape() {
    let s = seed();
    for_each_backend("knn_matches_fp64_on_every_metric_and_shape", |ctx| {
        let mut r = rng(s);
        for &dim in DIMS {
            for &nb in SIZES {
                let q = gaussian(&mut r, 3, dim);
                let x = gaussian(&mut r, nb, dim);
                for d in metrics() {
                    for k in [1, 10, nb, nb + 3] {
                        let res = knn(ctx, &q, &x, k, d.clone()).unwrap();
                        assert_eq!((res.rows(), res.k()), (3, k));
                        check_against_fp64(
                            &format!("seed {s} {} nb {nb} dim {dim} k {k}", ctx.device()),
                            &q,
                            &x,
                            &d,
                            &res,
                        );
                    }
                }
                let (qa, xa) = (nonneg(&mut r, 3, dim), nonneg(&mut r, nb, dim));
                let d: Distance = Metric::Jaccard.into();
                let res = knn(ctx, &qa, &xa, 5, d.clone()).unwrap();
                check_against_fp64(&format!("seed {s} nb {nb} dim {dim}"), &qa, &xa, &d, &res);
            }
        }
    });
}

#[test]
fn binary_knn_matches_exact_counts() {
    let s = seed();
    for_each_backend("binary_knn_matches_exact_counts", |ctx| {
        let mut r = rng(s);
        for &nbits in &[1usize, 17, 64, 256, 769] {
            for &nb in &[1usize, 33, 1031] {
                let q = bits(&mut r, 4, nbits);
                let x = bits(&mut r, nb, nbits);
                for m in [Metric::Hamming, Metric::HammingNormalized, Metric::Jaccard] {
                    for k in [1, 8, nb + 2] {
                        let res = knn(ctx, &q, &x, k, m).unwrap();
                        for i in 0..4 {
                            let vals: Vec<f64> = (0..nb)
                                .map(|j| ref_bits(q.row(i), x.row(j), nbits, m))
                                .collect();
                            check_row(
                                &format!("seed {s} {m} bits {nbits} nb {nb} k {k}"),
                                res.row_ids(i),
                                res.row_distances(i),
                                &vals,
                                Order::Smallest,
                                1e-6,
                            );
                        }
                    }
                }
            }
        }
    });
}

#[test]
fn cuda_agrees_with_cpu_on_larger_inputs() {
    let Some(gpu) = cuda() else {
        eprintln!("skip: cuda_agrees_with_cpu_on_larger_inputs needs a GPU");
        return;
    };
    eprintln!("[cuda] cuda_agrees_with_cpu_on_larger_inputs");
    let cpu = vector_accelerate::Context::cpu();
    let s = seed();
    let mut r = rng(s);
    for &(nq, nb, dim) in &[
        (100usize, 5000usize, 128usize),
        (37, 20011, 769),
        (1, 70001, 3),
    ] {
        let q = gaussian(&mut r, nq, dim);
        let x = gaussian(&mut r, nb, dim);
        for d in metrics() {
            for k in [1, 10, 100] {
                let a = knn(&cpu, &q, &x, k, d.clone()).unwrap();
                let b = knn(&gpu, &q, &x, k, d.clone()).unwrap();
                let m = d.metric;
                let xmax = (0..nb).map(|j| sqn(x.row(j))).fold(0.0, f64::max);
                let vmax = a
                    .distances()
                    .iter()
                    .fold(0.0f64, |acc, v| acc.max((*v as f64).abs()));
                assert_close_neighbors(
                    &format!("seed {s} {m} {nq}x{nb}x{dim} k {k}"),
                    &a,
                    &b,
                    |i| tol(m, dim, sqn(q.row(i)), xmax, vmax),
                );
            }
        }
    }
}

#[test]
fn small_memory_budget_tiles_and_streams_the_base() {
    let s = seed();
    for_each_backend("small_memory_budget_tiles_and_streams_the_base", |ctx| {
        let mut r = rng(s);
        let (nq, nb, dim) = (300, 6000, 33);
        let q = gaussian(&mut r, nq, dim);
        let x = gaussian(&mut r, nb, dim);
        // 300 x 6000 distances are 7.2 MB; a 256 KiB budget forces many tiles,
        // query super-blocks and a host base streamed tile by tile.
        let small = ctx.clone().with_memory_budget(256 << 10);
        let mut pinned = ctx.alloc_pinned(nb, dim).unwrap();
        assert_eq!((pinned.rows(), pinned.dim()), (nb, dim));
        assert!(pinned.as_slice().iter().all(|v| *v == 0.0));
        pinned.as_mut_slice().copy_from_slice(x.as_slice());
        for d in [
            Distance::from(Metric::L2),
            Metric::Euclidean.into(),
            Metric::Cosine.into(),
            Metric::CosineSimilarity.into(),
            Metric::InnerProduct.into(),
            Metric::AbsInnerProduct.into(),
            Metric::L1.into(),
        ] {
            for k in [1, 7, 300] {
                let full = knn(ctx, &q, &x, k, d.clone()).unwrap();
                let tiled = knn(&small, &q, &x, k, d.clone()).unwrap();
                // The same base in page-locked memory (transferred without
                // the staging copy): identical results.
                let from_pinned = knn(&small, &q, &pinned, k, d.clone()).unwrap();
                assert_eq!(
                    from_pinned, tiled,
                    "seed {s} pinned base {} k {k}",
                    d.metric
                );
                let m = d.metric;
                assert_close_neighbors(&format!("seed {s} budget {m} k {k}"), &full, &tiled, |i| {
                    tol(m, dim, sqn(q.row(i)), 200.0, 400.0)
                });
                if k == 7 {
                    check_against_fp64(&format!("seed {s} budget"), &q, &x, &d, &tiled);
                }
            }
        }
        // Cosine on unit rows with the inputs_normalized option (no norms).
        let unit = |m: &Matrix| {
            let v: Vec<f32> = (0..m.rows())
                .flat_map(|i| {
                    let n = sqn(m.row(i)).sqrt() as f32;
                    m.row(i).iter().map(move |x| x / n).collect::<Vec<_>>()
                })
                .collect();
            Matrix::new(v, m.dim()).unwrap()
        };
        let (uq, ux) = (unit(&q), unit(&x));
        let d = Distance::new(Metric::Cosine).normalized_inputs();
        let full = knn(ctx, &uq, &ux, 9, d.clone()).unwrap();
        let tiled = knn(&small, &uq, &ux, 9, d.clone()).unwrap();
        assert_close_neighbors("normalized cosine under budget", &full, &tiled, |_| {
            tol(Metric::Cosine, dim, 1.0, 1.0, 1.0)
        });
        check_against_fp64(
            &format!("seed {s} normalized cosine"),
            &uq,
            &ux,
            &Metric::Cosine.into(),
            &tiled,
        );
        // Resident base with the same budget.
        let resident = small.upload(&x).unwrap();
        let a = knn(&small, &q, &resident, 5, Metric::L2).unwrap();
        let b = knn(ctx, &q, &x, 5, Metric::L2).unwrap();
        assert_close_neighbors("resident under budget", &a, &b, |i| {
            tol(Metric::L2, dim, sqn(q.row(i)), 200.0, 0.0)
        });
    });
}

#[test]
fn resident_data_gives_the_same_results_as_host_data() {
    let s = seed();
    for_each_backend("resident_data_gives_the_same_results_as_host_data", |ctx| {
        let mut r = rng(s);
        let q = gaussian(&mut r, 20, 17);
        let x = gaussian(&mut r, 500, 17);
        let rq = ctx.upload(&q).unwrap();
        let rx = ctx.upload(&x).unwrap();
        assert_eq!((rx.rows(), rx.dim(), rx.is_binary()), (500, 17, false));
        assert_eq!(rx.to_host().unwrap().into_vec(), x.as_slice());
        for d in metrics() {
            let host = knn(ctx, &q, &x, 9, d.clone()).unwrap();
            let res = knn(ctx, &rq, &rx, 9, d.clone()).unwrap();
            let mixed = knn(ctx, &q, &rx, 9, d.clone()).unwrap();
            assert_eq!(host, res, "{}", d.metric);
            assert_eq!(host, mixed, "{}", d.metric);
        }
        let b = bits(&mut r, 100, 100);
        let rb = ctx.upload(&b).unwrap();
        assert!(rb.is_binary());
        assert_eq!(
            knn(ctx, &b, &b, 3, Metric::Hamming).unwrap(),
            knn(ctx, &b, &rb, 3, Metric::Hamming).unwrap()
        );
    });
}

#[test]
fn self_query_finds_itself_first() {
    for_each_backend("self_query_finds_itself_first", |ctx| {
        let mut r = rng(seed());
        let x = gaussian(&mut r, 2000, 64);
        let res = knn(ctx, &x, &x, 1, Metric::L1).unwrap();
        for i in 0..x.rows() {
            assert_eq!(res.row_ids(i)[0], i as u64);
            assert_eq!(res.row_distances(i)[0], 0.0);
        }
    });
}

#[test]
fn later_tiles_that_beat_every_kept_neighbour_fall_back_correctly() {
    // Rows ordered so that each base tile is entirely closer to the query
    // than the previous one (every candidate filter overflows), with many
    // exact ties; and the reverse order, where later tiles never qualify.
    // All values are exact in fp32, so every backend must agree exactly.
    let nb = 12_000;
    let base: Vec<f32> = (0..nb)
        .flat_map(|j| [((nb - j) / 3) as f32 / 64.0, 0.5, 0.0])
        .collect();
    let x = Matrix::new(base, 3).unwrap();
    let q = Matrix::new(vec![0.0, 0.5, 0.0, -1.0, 0.0, 0.0, 8.0, 0.0, 0.0], 3).unwrap();
    let cpu = vector_accelerate::Context::cpu();
    for_each_backend(
        "later_tiles_that_beat_every_kept_neighbour_fall_back_correctly",
        |ctx| {
            for m in [Metric::L2, Metric::InnerProduct, Metric::L1] {
                for k in [1, 10, 300, 1500] {
                    // A budget that leaves base tiles of a few thousand rows
                    // after the per-query lists and candidate buffers.
                    let lists = 3 * ((4 * k).max(256) * 12 + k * 36);
                    let small = ctx.clone().with_memory_budget((96 << 10) + lists);
                    let want = knn(&cpu, &q, &x, k, m).unwrap();
                    let got = knn(&small, &q, &x, k, m).unwrap();
                    assert_eq!(want, got, "{m} k {k} on {}", ctx.device());
                }
            }
        },
    );
}

#[test]
fn few_queries_against_a_large_base_split_rows_across_blocks() {
    // One to five queries over several 65,536-row tiles: on CUDA each row is
    // selected and filtered by many blocks, then their lists are merged.
    let s = seed();
    let cpu = vector_accelerate::Context::cpu();
    for_each_backend(
        "few_queries_against_a_large_base_split_rows_across_blocks",
        |ctx| {
            let mut r = rng(s);
            for &(nq, dim) in &[(1usize, 3usize), (2, 19), (5, 8)] {
                let q = gaussian(&mut r, nq, dim);
                let x = gaussian(&mut r, 150_001, dim);
                for d in metrics() {
                    for k in [1, 10, 3000] {
                        let got = knn(ctx, &q, &x, k, d.clone()).unwrap();
                        if k == 10 {
                            check_against_fp64(
                                &format!("seed {s} few queries nq {nq} dim {dim}"),
                                &q,
                                &x,
                                &d,
                                &got,
                            );
                        } else if ctx.is_cuda() {
                            let want = knn(&cpu, &q, &x, k, d.clone()).unwrap();
                            let m = d.metric;
                            let xmax = (0..x.rows()).map(|j| sqn(x.row(j))).fold(0.0, f64::max);
                            let vmax = want
                                .distances()
                                .iter()
                                .fold(0.0f64, |a, v| a.max((*v as f64).abs()));
                            assert_close_neighbors(
                                &format!("seed {s} few queries {m} k {k}"),
                                &want,
                                &got,
                                |i| tol(m, dim, sqn(q.row(i)), xmax, vmax),
                            );
                        }
                    }
                }
            }
        },
    );
}

#[test]
fn cpu_knn_ranks_ties_by_id_and_nan_last() {
    // Small integer coordinates make every dot product exact, so any
    // summation order gives the same values: many exact ties, duplicated
    // rows, and rows with NaN. The k-NN lists must equal a full sort of
    // the pairwise matrix by (value, id) with NaN last.
    let s = seed();
    let cpu = vector_accelerate::Context::cpu();
    let mut r = rng(s);
    for &(nq, nb, dim) in &[(1usize, 5usize, 3usize), (29, 3001, 20), (13, 700, 300)] {
        let mut ints = |rows: usize| {
            let v: Vec<f32> = (0..rows * dim)
                .map(|_| r.random_range(-2i32..=2) as f32)
                .collect();
            Matrix::new(v, dim).unwrap()
        };
        let q = ints(nq);
        let mut xv = ints(nb).into_vec();
        for j in (0..nb).step_by(7) {
            // Duplicate an earlier row (exact ties with different ids).
            let src = j / 2;
            let row: Vec<f32> = xv[src * dim..(src + 1) * dim].to_vec();
            xv[j * dim..(j + 1) * dim].copy_from_slice(&row);
        }
        for j in (3..nb).step_by(11) {
            xv[j * dim + j % dim] = f32::NAN;
        }
        let x = Matrix::new(xv, dim).unwrap();
        for m in [Metric::L2, Metric::Euclidean, Metric::InnerProduct] {
            let all = vector_accelerate::distance::pairwise(&cpu, &q, &x, m).unwrap();
            for k in [1, 10, 64] {
                let got = knn(&cpu, &q, &x, k, m).unwrap();
                for i in 0..nq {
                    let row = all.row(i);
                    let mut ids: Vec<usize> = (0..nb).collect();
                    ids.sort_by(|&a, &b| {
                        let (va, vb) = (row[a], row[b]);
                        let ord = match (va.is_nan(), vb.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ if m.order() == Order::Smallest => va.partial_cmp(&vb).unwrap(),
                            _ => vb.partial_cmp(&va).unwrap(),
                        };
                        ord.then(a.cmp(&b))
                    });
                    let want: Vec<u64> = ids.iter().take(k.min(nb)).map(|&j| j as u64).collect();
                    assert_eq!(
                        &got.row_ids(i)[..k.min(nb)],
                        &want[..],
                        "seed {s} {m} nq {nq} nb {nb} dim {dim} k {k} q{i}"
                    );
                    for (t, &j) in want.iter().enumerate() {
                        let (a, b) = (got.row_distances(i)[t], row[j as usize]);
                        assert!(
                            a == b || (a.is_nan() && b.is_nan()),
                            "{m} q{i} #{t}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn cpu_cosine_knn_keeps_zero_rows_ties_and_nan() {
    // Integer rows with duplicates (exact ties: the same unit row under
    // another id), zero rows, NaN rows and a zero query. Cosine of a zero
    // vector is 0 (distance exactly 1), NaN ranks last, ties go to the
    // smaller id, and values match fp64 and the pairwise matrix.
    let s = seed();
    let cpu = vector_accelerate::Context::cpu();
    let mut r = rng(s);
    for &(nq, nb, dim) in &[(3usize, 40usize, 3usize), (29, 3001, 20), (13, 700, 300)] {
        let mut ints = |rows: usize| -> Vec<f32> {
            (0..rows * dim)
                .map(|_| r.random_range(-2i32..=2) as f32)
                .collect()
        };
        let mut qv = ints(nq);
        qv[..dim].fill(0.0);
        let q = Matrix::new(qv, dim).unwrap();
        let mut xv = ints(nb);
        for j in 0..nb {
            let row = j * dim..(j + 1) * dim;
            if j.is_multiple_of(7) {
                let src = j / 2 * dim;
                xv.copy_within(src..src + dim, row.start);
            } else if j % 13 == 5 {
                xv[row].fill(0.0);
            } else if j % 11 == 3 {
                xv[row.start + j % dim] = f32::NAN;
            }
        }
        let x = Matrix::new(xv, dim).unwrap();
        let nan_row = |j: usize| x.row(j).iter().any(|v| v.is_nan());
        let zero_row = |j: usize| x.row(j).iter().all(|&v| v == 0.0);
        for m in [Metric::Cosine, Metric::CosineSimilarity] {
            let zero_value = if m == Metric::Cosine { 1.0 } else { 0.0 };
            let all = vector_accelerate::distance::pairwise(&cpu, &q, &x, m).unwrap();
            for k in [1, 10, 64] {
                let got = knn(&cpu, &q, &x, k, m).unwrap();
                for i in 0..nq {
                    let label = format!("seed {s} {m} nb {nb} dim {dim} k {k} q{i}");
                    let (ids, vals) = (got.row_ids(i), got.row_distances(i));
                    let fp64: Vec<f64> = (0..nb)
                        .map(|j| ref_f32(q.row(i), x.row(j), m, None, 0.0))
                        .collect();
                    let finite = (0..nb).filter(|&j| !nan_row(j)).count();
                    for (t, (&id, &v)) in ids.iter().zip(vals).take(k.min(nb)).enumerate() {
                        let j = id as usize;
                        assert_eq!(nan_row(j), t >= finite, "{label} #{t}: NaN must rank last");
                        if nan_row(j) {
                            assert!(v.is_nan(), "{label} #{t}");
                            continue;
                        }
                        if i == 0 || zero_row(j) {
                            assert_eq!(v, zero_value, "{label} #{t}: zero vector");
                        }
                        let close = tol(m, dim, 1.0, 1.0, 1.0);
                        assert!((v as f64 - fp64[j]).abs() <= close, "{label} #{t}");
                        assert!(((v - all.row(i)[j]) as f64).abs() <= close, "{label} #{t}");
                        if t > 0 && v == vals[t - 1] {
                            assert!(id > ids[t - 1], "{label} #{t}: tie not by id");
                        }
                        // A duplicate's source row has the same value and
                        // a smaller id, so it comes first.
                        if j.is_multiple_of(7) && j / 2 != j {
                            assert!(ids[..t].contains(&((j / 2) as u64)), "{label} #{t}");
                        }
                    }
                    if i == 0 {
                        // Zero query: every finite row ties; smallest ids first.
                        let want: Vec<u64> = (0..nb as u64)
                            .filter(|&j| !nan_row(j as usize))
                            .take(k.min(finite))
                            .collect();
                        assert_eq!(&ids[..want.len()], &want[..], "{label}");
                    }
                }
            }
        }
    }
}

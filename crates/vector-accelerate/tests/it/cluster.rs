//! k-means: separated clusters recovered, one Lloyd step equal to an f64
//! reference and equal across backends, inertia falling, empty clusters
//! re-seeded, spherical centroids unit length, every option changing the
//! result, determinism and typed errors.

use std::sync::{Arc, Mutex};

use crate::common::*;
use vector_accelerate::cluster::{assign, kmeans, KMeansInit, KMeansOptions};
use vector_accelerate::{Context, Matrix};

/// `groups` well-separated blobs of `per` points each, in blob order.
fn blobs(r: &mut rand::rngs::StdRng, groups: usize, per: usize, dim: usize) -> Matrix {
    let c = gaussian(r, groups, dim);
    let noise = gaussian(r, groups * per, dim);
    let mut v = Vec::with_capacity(groups * per * dim);
    for g in 0..groups {
        for p in 0..per {
            for t in 0..dim {
                v.push(20.0 * c.row(g)[t] + 0.05 * noise.row(g * per + p)[t]);
            }
        }
    }
    Matrix::new(v, dim).unwrap()
}

#[test]
fn kmeans_recovers_separated_clusters_on_every_backend() {
    let s = seed();
    for_each_backend("kmeans_recovers_separated_clusters", |ctx| {
        let mut r = rng(s);
        for &(groups, per, dim) in &[
            (2usize, 5usize, 1usize),
            (5, 40, 3),
            (16, 50, 17),
            (33, 30, 130),
        ] {
            let x = blobs(&mut r, groups, per, dim);
            for init in [KMeansInit::KMeansPlusPlus, KMeansInit::Random] {
                let random = init == KMeansInit::Random;
                let res = kmeans(
                    ctx,
                    &x,
                    &KMeansOptions::new(groups).with_seed(s).with_init(init),
                )
                .unwrap();
                assert_eq!(res.assignments.len(), groups * per);
                assert_eq!(res.counts.iter().sum::<usize>(), groups * per);
                assert!(
                    res.counts.iter().all(|&c| c > 0),
                    "seed {s}: empty cluster left"
                );
                // k-means++ finds every blob; random init may merge two, so
                // only check consistency there.
                if !random {
                    for g in 0..groups {
                        let a = res.assignments[g * per];
                        assert!(
                            (0..per).all(|p| res.assignments[g * per + p] == a),
                            "seed {s} {groups}x{dim}: blob {g} split"
                        );
                    }
                    assert!(
                        res.counts.iter().all(|&c| c == per),
                        "seed {s}: {:?}",
                        res.counts
                    );
                }
                // Assignments and inertia agree with an f64 reference on the
                // returned centroids.
                let mut inertia = 0f64;
                let mut scale = 0f64;
                for i in 0..x.rows() {
                    scale += sqn(x.row(i)) + sqn(res.centroids.row(res.assignments[i]));
                    let d = |c: usize| -> f64 {
                        x.row(i)
                            .iter()
                            .zip(res.centroids.row(c))
                            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                            .sum()
                    };
                    let best = (0..groups).map(d).fold(f64::INFINITY, f64::min);
                    let got = d(res.assignments[i]);
                    let t = 1e-6 * (sqn(x.row(i)) + sqn(res.centroids.row(res.assignments[i])));
                    assert!(got <= best * (1.0 + 1e-5) + t, "seed {s}: point {i}");
                    inertia += got;
                }
                // (fp32 distances from norms and dot products: the rounding
                // follows the squared norms.)
                let tol = 1e-4 * inertia + 1e-6 * scale;
                assert!(
                    (res.inertia - inertia).abs() <= tol,
                    "seed {s}: {} vs {inertia}",
                    res.inertia
                );
            }
        }
    });
}

#[test]
fn one_lloyd_step_equals_the_reference_on_every_backend() {
    let s = seed();
    let mut r = rng(s);
    for &(n, dim, k) in &[
        (1usize, 1usize, 1usize),
        (2, 3, 2),
        (257, 17, 7),
        (1031, 64, 31),
        (3000, 129, 100),
    ] {
        let x = gaussian(&mut r, n, dim);
        let c0 = Matrix::new(
            x.as_slice()[..k * dim].iter().map(|v| v + 0.01).collect(),
            dim,
        )
        .unwrap();
        // f64 reference: assignment to c0, then means.
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for i in 0..n {
            let d = |c: usize| -> f64 {
                x.row(i)
                    .iter()
                    .zip(c0.row(c))
                    .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                    .sum()
            };
            let a = (0..k)
                .min_by(|&a, &b| d(a).partial_cmp(&d(b)).unwrap().then(a.cmp(&b)))
                .unwrap();
            counts[a] += 1;
            for t in 0..dim {
                sums[a * dim + t] += x.row(i)[t] as f64;
            }
        }
        let mut results = Vec::new();
        for ctx in backends() {
            let o = KMeansOptions::new(k)
                .with_max_iterations(1)
                .with_init(KMeansInit::Centroids(c0.clone()));
            let res = kmeans(&ctx, &x, &o).unwrap();
            assert_eq!(res.iterations, 1);
            for j in 0..k {
                if counts[j] == 0 {
                    continue; // re-seeded
                }
                for t in 0..dim {
                    let want = sums[j * dim + t] / counts[j] as f64;
                    let got = res.centroids.row(j)[t] as f64;
                    assert!(
                        (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
                        "seed {s} {n}x{dim} k {k} on {}: centroid {j}[{t}] {got} vs {want}",
                        ctx.device()
                    );
                }
            }
            results.push(res);
        }
        if results.len() == 2 {
            assert_eq!(
                results[0].assignments, results[1].assignments,
                "seed {s} {n}x{dim}"
            );
            let diff = results[0]
                .centroids
                .as_slice()
                .iter()
                .zip(results[1].centroids.as_slice())
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                diff <= 1e-6,
                "seed {s}: CPU and CUDA centroids differ by {diff}"
            );
        }
    }
}

#[test]
fn inertia_falls_and_progress_is_reported() {
    let s = seed();
    for_each_backend("inertia_falls", |ctx| {
        let mut r = rng(s);
        let x = clustered(&mut r, 2000, 24, 40, 0.5);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let o = KMeansOptions::new(40)
            .with_seed(s)
            .with_max_iterations(15)
            .with_tolerance(0.0)
            .with_progress(move |p| log.lock().unwrap().push(*p));
        let res = kmeans(ctx, &x, &o).unwrap();
        let p = seen.lock().unwrap();
        assert_eq!(p.len(), res.iterations);
        assert!(
            p.windows(2)
                .all(|w| w[1].inertia <= w[0].inertia * (1.0 + 1e-6)),
            "seed {s}: {:?}",
            p.iter().map(|p| p.inertia).collect::<Vec<_>>()
        );
        assert_eq!(p[0].changed, 2000);
        assert!(p
            .iter()
            .enumerate()
            .all(|(i, q)| q.iteration == i + 1 && q.max_iterations == 15));
        if res.converged {
            assert_eq!(p.last().unwrap().changed, 0);
        }
        // Determinism: the same call gives the same result.
        let again = kmeans(
            ctx,
            &x,
            &KMeansOptions::new(40)
                .with_seed(s)
                .with_max_iterations(15)
                .with_tolerance(0.0),
        )
        .unwrap();
        assert_eq!(again, res);
    });
}

#[test]
fn cuda_iterations_report_what_the_cpu_reports() {
    let Some(ctx) = cuda() else { return };
    eprintln!("[cuda] cuda_iterations_report_what_the_cpu_reports");
    let s = seed();
    let mut r = rng(s);
    // Iterations after the first start from the previous assignment on the
    // device and count changed ids and inertia there: both agree with the
    // CPU's host loop, iteration by iteration.
    for &(n, d, k, spherical) in &[
        (3000usize, 24usize, 40usize, false),
        (2500, 67, 97, false),
        (3000, 24, 40, true),
    ] {
        let x = clustered(&mut r, n, d, k, 0.5);
        let c0 = Matrix::new(x.as_slice()[..k * d].to_vec(), d).unwrap();
        let run = |ctx: &Context| {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let log = seen.clone();
            let o = KMeansOptions::new(k)
                .with_init(KMeansInit::Centroids(c0.clone()))
                .with_spherical(spherical)
                .with_max_iterations(8)
                .with_tolerance(0.0)
                .with_progress(move |p| log.lock().unwrap().push(*p));
            let res = kmeans(ctx, &x, &o).unwrap();
            let p = seen.lock().unwrap().clone();
            (res, p)
        };
        let (gpu, pg) = run(&ctx);
        let (cpu, pc) = run(&Context::cpu());
        let what = format!("seed {s} {n}x{d} k {k} spherical {spherical}");
        assert_eq!(pg.len(), pc.len(), "{what}: iterations");
        for (i, (g, c)) in pg.iter().zip(&pc).enumerate() {
            assert!(
                g.changed.abs_diff(c.changed) <= n / 200,
                "{what}: iteration {i} changed {} vs {}",
                g.changed,
                c.changed
            );
            assert!(
                (g.inertia - c.inertia).abs() <= 1e-4 * c.inertia,
                "{what}: iteration {i} inertia {} vs {}",
                g.inertia,
                c.inertia
            );
            assert_eq!(g.reseeded, c.reseeded, "{what}: iteration {i}");
        }
        assert!(
            pg.iter().skip(1).any(|p| p.changed > 0 && p.changed < n),
            "{what}: {pg:?}"
        );
        let same = gpu
            .assignments
            .iter()
            .zip(&cpu.assignments)
            .filter(|(a, b)| a == b)
            .count();
        assert!(same >= n - n / 100, "{what}: {same} of {n} equal");
    }
}

#[test]
fn empty_clusters_are_reseeded_from_the_farthest_points() {
    for_each_backend("empty_clusters_reseeded", |ctx| {
        let x = Matrix::new(
            vec![
                0.0, 0.0, 0.1, 0.0, 0.0, 0.1, 10.0, 10.0, 10.1, 10.0, 30.0, 30.0,
            ],
            2,
        )
        .unwrap();
        // Two identical far-away starting centroids: one stays empty.
        let c0 = Matrix::new(vec![0.0, 0.0, 100.0, 100.0, 100.0, 100.0], 2).unwrap();
        let o = KMeansOptions::new(3)
            .with_init(KMeansInit::Centroids(c0))
            .with_max_iterations(10);
        let res = kmeans(ctx, &x, &o).unwrap();
        assert!(res.centroids.as_slice().iter().all(|v| v.is_finite()));
        assert!(res.counts.iter().all(|&c| c > 0), "{:?}", res.counts);
        // The three groups end in three clusters.
        assert_eq!(res.assignments[0], res.assignments[1]);
        assert_ne!(res.assignments[0], res.assignments[3]);
        assert_ne!(res.assignments[3], res.assignments[5]);
        assert_eq!(res.assignments[3], res.assignments[4]);
    });
}

#[test]
fn spherical_and_subsampled_kmeans_change_the_result() {
    let s = seed();
    for_each_backend("spherical_and_subsampled", |ctx| {
        let mut r = rng(s);
        let x = clustered(&mut r, 1500, 16, 20, 0.4);
        let base = KMeansOptions::new(12).with_seed(s).with_max_iterations(8);
        let plain = kmeans(ctx, &x, &base).unwrap();
        let sph = kmeans(ctx, &x, &base.clone().with_spherical(true)).unwrap();
        for j in 0..12 {
            let n: f64 = sph
                .centroids
                .row(j)
                .iter()
                .map(|v| (*v as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!((n - 1.0).abs() < 1e-5, "seed {s}: norm {n}");
        }
        assert!(sph.inertia < 2.0 * 1500.0 && sph.inertia >= 0.0);
        assert_ne!(sph.centroids, plain.centroids);
        // Spherical assignment is by cosine distance.
        let a = assign(ctx, &x, &sph.centroids, true).unwrap();
        assert_eq!(a.clusters, sph.assignments);
        let sub = kmeans(ctx, &x, &base.clone().with_max_training_points(300)).unwrap();
        assert_eq!(sub.assignments.len(), 1500);
        assert_ne!(sub.centroids, plain.centroids);
        let other_seed = kmeans(ctx, &x, &base.clone().with_seed(s ^ 1)).unwrap();
        assert_ne!(other_seed.centroids, plain.centroids);
        let random = kmeans(ctx, &x, &base.clone().with_init(KMeansInit::Random)).unwrap();
        assert_ne!(random.centroids, plain.centroids);
        let one = kmeans(ctx, &x, &base.clone().with_max_iterations(1)).unwrap();
        assert_ne!(one.centroids, plain.centroids);
        let loose = kmeans(
            ctx,
            &x,
            &base.clone().with_max_iterations(50).with_tolerance(0.5),
        )
        .unwrap();
        assert!(loose.converged && loose.iterations < 50);
    });
}

#[test]
fn kmeans_refuses_bad_input_with_typed_errors() {
    let ctx = Context::cpu();
    let mut r = rng(seed());
    let x = gaussian(&mut r, 10, 4);
    let e = kmeans(&ctx, &x, &KMeansOptions::new(11)).unwrap_err();
    assert!(e.to_string().contains("only 10 training points"), "{e}");
    let e = kmeans(&ctx, &x, &KMeansOptions::new(0)).unwrap_err();
    assert!(e.to_string().contains("at least one cluster"), "{e}");
    let e = kmeans(&ctx, &x, &KMeansOptions::new(3).with_max_training_points(2)).unwrap_err();
    assert!(e.to_string().contains("only 2 training points"), "{e}");
    let mut v = x.as_slice().to_vec();
    v[9] = f32::INFINITY;
    let e = kmeans(&ctx, &Matrix::new(v, 4).unwrap(), &KMeansOptions::new(2)).unwrap_err();
    assert!(e.to_string().contains("row 2 column 1"), "{e}");
    let e = kmeans(
        &ctx,
        &x,
        &KMeansOptions::new(2).with_init(KMeansInit::Centroids(gaussian(&mut r, 3, 4))),
    )
    .unwrap_err();
    assert!(e.to_string().contains("expected k x dim"), "{e}");
    let e = kmeans(&ctx, &x, &KMeansOptions::new(2).with_tolerance(f64::NAN)).unwrap_err();
    assert!(e.to_string().contains("tolerance"), "{e}");
}

/// fp64 distance of `x` to `c`: squared L2, or cosine distance.
fn ref_assign_dist(x: &[f32], c: &[f32], spherical: bool) -> f64 {
    if spherical {
        let dot: f64 = x.iter().zip(c).map(|(a, b)| *a as f64 * *b as f64).sum();
        let den = sqn(x).sqrt() * sqn(c).sqrt();
        1.0 - if den > 0.0 { dot / den } else { 0.0 }
    } else {
        x.iter()
            .zip(c)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum()
    }
}

/// Checks an assignment against fp64: the chosen centroid is a nearest one
/// (within fp32 rounding of the distances) and its reported distance is
/// its fp64 distance.
fn check_assignment(
    what: &str,
    x: &Matrix,
    c: &Matrix,
    spherical: bool,
    got: &vector_accelerate::cluster::Assignment,
) {
    assert_eq!(got.clusters.len(), x.rows(), "{what}");
    for i in 0..x.rows() {
        let all: Vec<f64> = (0..c.rows())
            .map(|j| ref_assign_dist(x.row(i), c.row(j), spherical))
            .collect();
        let best = all.iter().copied().fold(f64::INFINITY, f64::min);
        let j = got.clusters[i];
        assert!(j < c.rows(), "{what}: point {i} got centroid {j}");
        let scale = if spherical {
            1.0
        } else {
            sqn(x.row(i)) + sqn(c.row(j))
        };
        // fp32 accumulation over d terms, with a margin.
        let t = (x.dim() as f64 + 4.0) * 2f64.powi(-22) * scale + 1e-30;
        assert!(
            all[j] <= best + t,
            "{what}: point {i} -> {j} at {} but the best is {best}",
            all[j]
        );
        let d = got.distances[i] as f64;
        assert!(
            (d - all[j]).abs() <= t,
            "{what}: point {i} reported {d}, fp64 {}",
            all[j]
        );
    }
}

#[test]
fn cuda_assignment_is_the_exact_nearest_centroid() {
    let Some(ctx) = cuda() else { return };
    eprintln!("[cuda] cuda_assignment_is_the_exact_nearest_centroid");
    let s = seed();
    let mut r = rng(s);
    for &(n, k, d) in &[
        (1usize, 1usize, 1usize),
        (2, 3, 2),
        (3, 2, 3),
        (127, 129, 31),
        (128, 128, 128),
        (129, 127, 33),
        (257, 300, 130),
        (997, 1031, 7),
        (5000, 256, 64),
        (3001, 4096, 128),
    ] {
        // Centred data, data far from the origin (a loose TF32 bound), and
        // points next to centroids.
        let x = gaussian(&mut r, n, d);
        let c = gaussian(&mut r, k, d);
        for (variant, shift) in [("centred", 0.0f32), ("offset", 30.0)] {
            let xs = Matrix::new(x.as_slice().iter().map(|v| v + shift).collect(), d).unwrap();
            let cs = Matrix::new(c.as_slice().iter().map(|v| v + shift).collect(), d).unwrap();
            for spherical in [false, true] {
                let what = format!("seed {s} {n}x{k}x{d} {variant} spherical {spherical}");
                let got = assign(&ctx, &xs, &cs, spherical).unwrap();
                check_assignment(&what, &xs, &cs, spherical, &got);
                // Resident points take the same path.
                let res = assign(&ctx, &ctx.upload(&xs).unwrap(), &cs, spherical).unwrap();
                assert_eq!(res, got, "{what}: resident points");
                check_hints(&ctx, &mut r, &what, &xs, &cs, spherical, &got);
            }
        }
        // Points that are slightly moved copies of centroids.
        let near: Vec<f32> = (0..n)
            .flat_map(|i| {
                let (p, cv) = (x.row(i), c.row(i % k));
                (0..d).map(move |t| cv[t] + 1e-3 * p[t])
            })
            .collect();
        let x = Matrix::new(near, d).unwrap();
        let got = assign(&ctx, &x, &c, false).unwrap();
        check_assignment(&format!("seed {s} {n}x{k}x{d} near"), &x, &c, false, &got);
    }
}

/// The assignment started from hints (as k-means iterations start from the
/// previous one) equals the plain one for exact, random and worst hints.
fn check_hints(
    ctx: &Context,
    r: &mut rand::rngs::StdRng,
    what: &str,
    x: &Matrix,
    c: &Matrix,
    spherical: bool,
    plain: &vector_accelerate::cluster::Assignment,
) {
    use rand::Rng;
    let k = c.rows() as u32;
    let exact: Vec<u32> = plain.clusters.iter().map(|&j| j as u32).collect();
    let random: Vec<u32> = (0..x.rows()).map(|_| r.random_range(0..k)).collect();
    let far: Vec<u32> = (0..x.rows())
        .map(|i| {
            (0..c.rows())
                .max_by(|&a, &b| {
                    let da = ref_assign_dist(x.row(i), c.row(a), spherical);
                    let db = ref_assign_dist(x.row(i), c.row(b), spherical);
                    da.total_cmp(&db)
                })
                .unwrap() as u32
        })
        .collect();
    for (name, hint) in [("exact", exact), ("random", random), ("farthest", far)] {
        let got = vector_accelerate::debug::assign_hinted(ctx, x, c, &hint, spherical).unwrap();
        assert_eq!(&got, plain, "{what}: {name} hints");
    }
}

#[test]
fn cuda_assignment_resolves_ties_like_the_cpu() {
    let Some(ctx) = cuda() else { return };
    eprintln!("[cuda] cuda_assignment_resolves_ties_like_the_cpu");
    let s = seed();
    let mut r = rng(s);
    let d = 20;
    // Every centroid in several copies (TF32 cannot separate copies): three
    // copies go through the exact re-score of the candidates, forty (more
    // than the candidates kept) through the full exact scan; either way the
    // smallest index of the nearest copy must win, as on the CPU.
    for (k0, copies, full_scan) in [(50usize, 3usize, false), (10, 40, true)] {
        let base = gaussian(&mut r, k0, d);
        let cv: Vec<f32> = (0..copies)
            .flat_map(|_| base.as_slice().iter().copied())
            .collect();
        let c = Matrix::new(cv, d).unwrap();
        let x = gaussian(&mut r, 300, d);
        let (before_points, before_scans) = vector_accelerate::debug::assign_stats();
        let got = assign(&ctx, &x, &c, false).unwrap();
        let (after_points, after_scans) = vector_accelerate::debug::assign_stats();
        assert!(after_points - before_points >= 300);
        if full_scan {
            assert!(
                after_scans - before_scans >= 300,
                "seed {s}: every point should need the full scan ({} did)",
                after_scans - before_scans
            );
        }
        let cpu = assign(&Context::cpu(), &x, &c, false).unwrap();
        assert_eq!(got.clusters, cpu.clusters, "seed {s} {copies} copies");
        // Started from the last copy of the nearest centroid, the smallest
        // index still wins.
        let last: Vec<u32> = got
            .clusters
            .iter()
            .map(|&j| ((copies - 1) * k0 + j % k0) as u32)
            .collect();
        let hinted = vector_accelerate::debug::assign_hinted(&ctx, &x, &c, &last, false).unwrap();
        assert_eq!(
            hinted, got,
            "seed {s} {copies} copies, hints on the last copy"
        );
        assert!(
            got.clusters.iter().all(|&j| j < k0),
            "seed {s}: a later copy won"
        );
        check_assignment(&format!("seed {s} {copies} copies"), &x, &c, false, &got);
    }
    // Distinct centroids: the fast path decides almost every point.
    let c = gaussian(&mut r, 512, 64);
    let x = gaussian(&mut r, 20000, 64);
    let (_, before) = vector_accelerate::debug::assign_stats();
    let got = assign(&ctx, &x, &c, false).unwrap();
    let (_, after) = vector_accelerate::debug::assign_stats();
    assert!(
        after - before < 2000,
        "seed {s}: {} of 20000 points needed the full scan",
        after - before
    );
    check_assignment(&format!("seed {s} distinct"), &x, &c, false, &got);
    // Non-finite points: centroid 0 at distance NaN, as exact k-NN.
    let mut xv = gaussian(&mut r, 3, 4).as_slice().to_vec();
    xv[1] = f32::NAN;
    xv[4] = f32::INFINITY;
    let x = Matrix::new(xv, 4).unwrap();
    let c = gaussian(&mut r, 5, 4);
    for spherical in [false, true] {
        let got = assign(&ctx, &x, &c, spherical).unwrap();
        let cpu = assign(&Context::cpu(), &x, &c, spherical).unwrap();
        assert_eq!(got.clusters[..2], [0, 0]);
        assert!(got.distances[..2].iter().all(|d| d.is_nan()));
        assert_eq!(got.clusters, cpu.clusters);
    }
}

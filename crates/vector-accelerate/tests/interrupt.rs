//! The interrupt flag: operations started while it is set stop with
//! `Error::Interrupted`, one running when it is set stops at its next step,
//! and results after clearing it are whole. A binary of its own: the flag
//! is process-wide, so no other test may run beside these.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use vector_accelerate::index::{Index, SearchParams};
use vector_accelerate::{interrupt_flag, knn, Context, Error, Matrix, Metric};

fn gaussian(seed: u64, rows: usize, dim: usize) -> Matrix {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let v = (0..rows * dim)
        .map(|_| r.random_range(-1.0f32..1.0))
        .collect();
    Matrix::new(v, dim).unwrap()
}

fn contexts() -> Vec<Context> {
    let mut v = vec![Context::cpu()];
    match Context::cuda(0) {
        Ok(c) => v.push(c),
        Err(e) if std::env::var("VECTOR_ACCELERATE_REQUIRE_GPU").is_ok_and(|v| v == "1") => {
            panic!("VECTOR_ACCELERATE_REQUIRE_GPU=1 but CUDA cannot be used: {e}")
        }
        Err(_) => {}
    }
    v
}

#[test]
fn the_interrupt_flag_stops_operations_and_clears() {
    let flag = interrupt_flag();
    let (q, x) = (gaussian(1, 50, 24), gaussian(2, 3001, 24));
    for ctx in contexts() {
        if ctx.is_cuda() {
            eprintln!("[cuda] the_interrupt_flag_stops_operations_and_clears");
        }
        let want = knn(&ctx, &q, &x, 5, Metric::L2).unwrap();
        let mut index = Index::new(&ctx, 24, "IVF16,Flat", Metric::L2).unwrap();
        index.train(&x).unwrap();
        index.add(&x).unwrap();
        let params = SearchParams::default().with_nprobe(4);
        let before = index.search(&q, 5, &params).unwrap();

        flag.store(true, Ordering::SeqCst);
        let e = knn(&ctx, &q, &x, 5, Metric::L2).unwrap_err();
        assert!(matches!(e, Error::Interrupted), "{e}");
        let e = index.search(&q, 5, &params).unwrap_err();
        assert!(matches!(e, Error::Interrupted), "{e}");
        let mut fresh = Index::new(&ctx, 24, "IVF16,Flat", Metric::L2).unwrap();
        let e = fresh.train(&x).unwrap_err();
        assert!(matches!(e, Error::Interrupted), "{e}");
        flag.store(false, Ordering::SeqCst);

        assert_eq!(knn(&ctx, &q, &x, 5, Metric::L2).unwrap(), want);
        assert_eq!(index.search(&q, 5, &params).unwrap(), before);
    }
    // A search far longer than the wait is stopped while it runs.
    let (q, x) = (gaussian(3, 20_000, 64), gaussian(4, 200_000, 64));
    let ctx = Context::cpu();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        flag.store(true, Ordering::SeqCst);
    });
    let e = knn(&ctx, &q, &x, 10, Metric::L2).unwrap_err();
    setter.join().unwrap();
    interrupt_flag().store(false, Ordering::SeqCst);
    assert!(matches!(e, Error::Interrupted), "{e}");
}

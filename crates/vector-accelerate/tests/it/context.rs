//! Device choice and its overrides.

use vector_accelerate::{Context, Device, Error};

#[test]
fn device_specs_parse() {
    assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
    assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
    assert_eq!("CUDA:3".parse::<Device>().unwrap(), Device::Cuda(3));
    assert!(matches!(
        "tpu".parse::<Device>(),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        Context::from_spec("cuda:x"),
        Err(Error::InvalidParameter { .. })
    ));
    assert_eq!(Context::from_spec("cpu").unwrap().device(), Device::Cpu);
}

#[test]
fn automatic_choice_never_fails_and_explains_a_cpu_fallback() {
    let ctx = Context::best();
    match ctx.device() {
        Device::Cpu => {
            let why = ctx.fallback_reason().expect("a CPU fallback says why");
            assert!(!why.is_empty());
            // An explicit CUDA request is an error naming the reason, not a silent fallback.
            match Context::cuda(0) {
                Err(Error::CudaUnavailable { reason }) => assert_eq!(reason, why),
                other => panic!("expected CudaUnavailable, got {other:?}"),
            }
        }
        Device::Cuda(_) => {
            assert!(ctx.fallback_reason().is_none());
            let info = ctx.info();
            assert!(info.compute_capability.is_some() && info.total_memory.unwrap() > 0);
            eprintln!(
                "[cuda] automatic_choice: {} {:?}",
                info.name, info.compute_capability
            );
            // A device ordinal that does not exist is refused with the count.
            assert!(matches!(
                Context::cuda(4096),
                Err(Error::CudaUnavailable { .. })
            ));
        }
    }
    let info = Context::cpu().info();
    assert!(info.cpu_threads >= 1 && info.name.contains("CPU"));
}

#[test]
fn cached_device_memory_can_be_released_between_calls() {
    let s = crate::common::seed();
    crate::common::for_each_backend(
        "cached_device_memory_can_be_released_between_calls",
        |ctx| {
            let mut r = crate::common::rng(s);
            let q = crate::common::gaussian(&mut r, 70, 20);
            let x = crate::common::gaussian(&mut r, 9000, 20);
            let a = vector_accelerate::knn(ctx, &q, &x, 5, vector_accelerate::Metric::L2).unwrap();
            ctx.release_cached_device_memory().unwrap();
            let b = vector_accelerate::knn(ctx, &q, &x, 5, vector_accelerate::Metric::L2).unwrap();
            // Same input, same backend: the same output, run after run.
            assert_eq!(a, b);
        },
    );
}

#[test]
fn memory_stats_follow_device_buffers() {
    crate::common::for_each_backend("memory_stats_follow_device_buffers", |ctx| {
        let x = vector_accelerate::Matrix::new(vec![1.5; 1 << 20], 256).unwrap();
        ctx.synchronize().unwrap();
        let before = ctx.memory_stats().unwrap();
        ctx.reset_peak_memory().unwrap();
        let held = ctx.upload(&x).unwrap();
        ctx.synchronize().unwrap();
        let during = ctx.memory_stats().unwrap();
        drop(held);
        ctx.synchronize().unwrap();
        let after = ctx.memory_stats().unwrap();
        if !ctx.is_cuda() {
            // Host memory is not tracked.
            let zero = vector_accelerate::MemoryStats::default();
            assert_eq!((before, during, after), (zero, zero, zero));
            return;
        }
        // Other tests share the device's pool and run at the same time, so
        // only what this buffer alone guarantees is checked.
        let bytes = 4u64 << 20;
        assert!(during.in_use >= bytes, "{during:?}");
        assert!(during.peak >= bytes, "{during:?}");
        assert!(during.allocations > before.allocations);
        assert!(after.allocations >= during.allocations);
        ctx.release_cached_device_memory().unwrap();
        let released = ctx.memory_stats().unwrap();
        assert!(
            released.peak >= bytes,
            "the peak stays until reset: {released:?}"
        );
    });
}

/// Uploads read back bit for bit around the size from which they are
/// staged through page-locked memory (1 MiB) and at several of its chunks,
/// including uploads issued back to back (the staging buffer reused while
/// the transfer before may still be running).
#[test]
fn uploads_read_back_unchanged_around_the_staging_size() {
    crate::common::for_each_backend(
        "uploads_read_back_unchanged_around_the_staging_size",
        |ctx| {
            let s = crate::common::seed();
            let mut r = crate::common::rng(s);
            let mib = (1 << 20) / 4;
            let cases = [
                (1, 1),
                (mib - 1, 1),
                (mib, 1),
                (mib + 1, 1),
                ((3 * mib + 7) / 3, 3),
            ];
            let mut held = Vec::new();
            for (rows, dim) in cases {
                let m = crate::common::gaussian(&mut r, rows, dim);
                held.push((ctx.upload(&m).unwrap(), m));
            }
            for (dev, m) in &held {
                let back = dev.to_host().unwrap();
                let same = back
                    .as_slice()
                    .iter()
                    .zip(m.as_slice())
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same && back.rows() == m.rows(),
                    "seed {s}: {} x {}",
                    m.rows(),
                    m.dim()
                );
            }
        },
    );
}

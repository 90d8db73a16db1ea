//! CPU ceilings: a large memcpy and a parallel fp32 GEMM.

use std::time::Instant;

use crate::core::diagnostics::Ceilings;
use crate::core::error::Result;
use crate::runtime::backend::{Cpu, DiagnosticsBackend};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(crate) fn measure() -> Ceilings {
    let len = 64 << 20; // 256 MiB of f32
    let src: Vec<f32> = (0..len).map(|i| i as f32).collect();
    let mut dst = vec![0f32; len];
    dst.copy_from_slice(&src);
    let copy = median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                dst.copy_from_slice(&src);
                std::hint::black_box(&dst);
                2.0 * (len * 4) as f64 / t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let n = 2048;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.25).collect();
    let mut c = vec![0f32; n * n];
    let threads = rayon::current_num_threads();
    let run = |c: &mut [f32]| {
        // SAFETY: three n x n row-major buffers.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                a.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(threads),
            )
        }
    };
    run(&mut c);
    let flops = median(
        (0..3)
            .map(|_| {
                let t = Instant::now();
                run(&mut c);
                2.0 * (n as f64).powi(3) / t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    Ceilings {
        copy_bytes_per_s: copy,
        sgemm_flops: flops,
        tensor_flops: None,
        bf16_flops: None,
        h2d_bytes_per_s: None,
    }
}

impl DiagnosticsBackend for Cpu {
    fn measure_ceilings(&self) -> Result<Ceilings> {
        Ok(measure())
    }
}

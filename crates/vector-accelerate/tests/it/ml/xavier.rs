//! Xavier (Glorot) uniform initialisation of a [`Linear`] map.

use crate::common::*;
use vector_accelerate::ml::Linear;
use vector_accelerate::Error;

fn weights(l: &Linear) -> Vec<f32> {
    l.weight().to_host().unwrap().into_vec()
}

#[test]
fn xavier_weights_are_uniform_and_seeded() {
    for_each_backend("xavier_weights_are_uniform_and_seeded", |ctx| {
        let s = seed();
        for (d_in, d_out) in [(300, 200), (768, 128), (1, 1), (3, 7)] {
            let l = Linear::xavier(ctx, d_in, d_out, s).unwrap();
            assert_eq!((l.d_in(), l.d_out()), (d_in, d_out));
            assert!(l.bias().is_none());
            let w = weights(&l);
            assert_eq!(w.len(), d_in * d_out);
            let a = (6.0 / (d_in + d_out) as f64).sqrt();
            for (i, &v) in w.iter().enumerate() {
                let v = v as f64;
                assert!(
                    (-a..a).contains(&v),
                    "seed {s}, {d_in}x{d_out}: w[{i}] = {v} outside [-{a}, {a})"
                );
            }
            let n = w.len() as f64;
            if n >= 1000.0 {
                // Mean 0 and variance a^2 / 3, within 6 standard errors.
                let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
                let var = w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
                let want = a * a / 3.0;
                assert!(
                    mean.abs() <= 6.0 * (want / n).sqrt(),
                    "seed {s}: mean {mean}"
                );
                // Var of the sample variance of U(-a, a): (mu4 - sigma^4) / n, mu4 = a^4 / 5.
                let se = ((a.powi(4) / 5.0 - want * want) / n).sqrt();
                assert!(
                    (var - want).abs() <= 6.0 * se,
                    "seed {s}: variance {var}, expected {want}"
                );
            }
            // Same seed, same weights; another seed, other weights.
            assert_eq!(weights(&Linear::xavier(ctx, d_in, d_out, s).unwrap()), w);
            let other = weights(&Linear::xavier(ctx, d_in, d_out, s ^ 0x5EED).unwrap());
            let same = other.iter().zip(&w).filter(|(a, b)| a == b).count();
            assert!(
                same * 100 <= w.len(),
                "seed {s}: {same} of {} weights equal",
                w.len()
            );
        }
        assert!(matches!(
            Linear::xavier(ctx, 0, 4, s),
            Err(Error::InvalidParameter { .. })
        ));
    });
}

//! What `histogram` counts where, by `HistogramOptions`: outliers apart
//! (`Outliers::Separate`) or in the end bins (`Outliers::Clip`), non-finite
//! values always apart, and the density (integral 1, 0 for empty bins,
//! `+inf` for a zero-width bin holding values).

use super::{clip_outliers, m, separate_outliers};
use crate::common::*;
use vector_accelerate::histogram::{histogram, BinSpec, HistogramOptions, Outliers};

#[test]
fn density_clip_and_non_finite_options_change_the_output() {
    for_each_backend(
        "density_clip_and_non_finite_options_change_the_output",
        |ctx| {
            let x = m(vec![
                -5.0,
                0.0,
                0.5,
                1.0,
                1.5,
                2.0,
                3.0,
                9.0,
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
            ]);
            let spec = BinSpec::Edges(vec![0.0, 1.0, 3.0]);
            let sep = histogram(ctx, &x, &spec, &separate_outliers()).unwrap();
            assert_eq!(sep.counts, vec![2, 4]);
            assert_eq!((sep.below, sep.above, sep.non_finite), (1, 1, 3));
            assert_eq!(sep.density, None);
            let clip = histogram(ctx, &x, &spec, &clip_outliers()).unwrap();
            assert_eq!(clip.counts, vec![3, 5]);
            assert_eq!((clip.below, clip.above, clip.non_finite), (1, 1, 3));
            let d = histogram(
                ctx,
                &x,
                &spec,
                &HistogramOptions::default()
                    .with_outliers(Outliers::Separate)
                    .with_density(true),
            )
            .unwrap();
            assert_eq!(d.counts, sep.counts);
            let dens = d.density.unwrap();
            assert_eq!(dens, vec![2.0 / 6.0, 4.0 / (6.0 * 2.0)]);
            let integral: f64 = dens
                .iter()
                .zip(d.edges.windows(2))
                .map(|(p, w)| p * (w[1] - w[0]))
                .sum();
            assert!((integral - 1.0).abs() < 1e-15);
            let dc = histogram(
                ctx,
                &x,
                &spec,
                &HistogramOptions::default()
                    .with_outliers(Outliers::Clip)
                    .with_density(true),
            )
            .unwrap();
            assert_eq!(dc.density.unwrap(), vec![3.0 / 8.0, 5.0 / 16.0]);
            // Nothing in any bin: density 0, never NaN.
            let none = histogram(
                ctx,
                &m(vec![7.0, f32::NAN]),
                &spec,
                &HistogramOptions::default()
                    .with_outliers(Outliers::Separate)
                    .with_density(true),
            )
            .unwrap();
            assert_eq!(none.density.unwrap(), vec![0.0, 0.0]);
            // Zero-width closed last bin holding values: +inf (a point mass).
            let z = histogram(
                ctx,
                &m(vec![0.0, 1.0, 1.0]),
                &BinSpec::Adaptive { bins: 2 },
                &HistogramOptions::default()
                    .with_outliers(Outliers::Separate)
                    .with_density(true),
            )
            .unwrap();
            assert_eq!(z.edges, vec![0.0, 1.0, 1.0]);
            assert_eq!(z.counts, vec![1, 2]);
            assert_eq!(z.density.unwrap(), vec![1.0 / 3.0, f64::INFINITY]);
            // Only non-finite values with a given range: all counted apart.
            let h = histogram(
                ctx,
                &m(vec![f32::NAN; 9]),
                &BinSpec::Uniform {
                    bins: 3,
                    range: Some((0.0, 1.0)),
                },
                &clip_outliers(),
            )
            .unwrap();
            assert_eq!((h.counts, h.non_finite), (vec![0, 0, 0], 9));
        },
    );
}

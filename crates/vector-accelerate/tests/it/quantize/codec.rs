//! What every quantizer shares: `Codec` and `Quantizer` over every kind
//! (train, code size, code bytes, decode, search), `Quality` metrics,
//! saving and loading (the file format refusing damage, each codec loading
//! only its own kind), and typed errors for bad input.

use crate::common::*;
use vector_accelerate::quantize::{
    BinaryOptions, BinaryQuantizer, BinaryThreshold, Codec, Codes, PqOptions, ProductQuantizer,
    Quality, Quantizer, QuantizerOptions, ScalarOptions, ScalarQuantizer, ScalarRange, ScalarScope,
    SearchOptions,
};
use vector_accelerate::{Context, Error, Matrix, Metric};

#[test]
fn quality_metrics_follow_their_formulas() {
    let x = Matrix::new(vec![1.0, -2.0, 3.0, 0.0], 2).unwrap();
    let y = Matrix::new(vec![1.5, -2.0, 2.0, 0.0], 2).unwrap();
    let q = Quality::measure(x.view(), y.view(), 2).unwrap();
    assert_eq!(q.mse, (0.25 + 1.0) / 4.0);
    assert_eq!(q.max_error, 1.0);
    assert!((q.snr_db - 10.0 * (14.0f64 / 1.25).log10()).abs() < 1e-12);
    assert!((q.psnr_db - 10.0 * (9.0f64 / 0.3125).log10()).abs() < 1e-12);
    assert_eq!(q.compression_ratio, 8.0);
    assert_eq!(q.per_vector[0].mse, 0.125);
    assert_eq!(q.per_vector[1].max_error, 1.0);
    assert!(Quality::measure(x.view(), Matrix::new(vec![1.0, 2.0], 2).unwrap().view(), 1).is_err());
}

#[test]
fn quantizer_files_round_trip_and_refuse_damage() {
    let s = seed();
    let ctx = Context::cpu();
    let mut r = rng(s);
    let x = gaussian(&mut r, 300, 12);
    let qs = [
        Quantizer::Scalar(
            ScalarQuantizer::train(
                &ctx,
                &x,
                &ScalarOptions::int4().with_range(ScalarRange::Asymmetric),
            )
            .unwrap(),
        ),
        Quantizer::Scalar(
            ScalarQuantizer::train(
                &ctx,
                &x,
                &ScalarOptions::int8().with_scope(ScalarScope::PerVector),
            )
            .unwrap(),
        ),
        Quantizer::Binary(
            BinaryQuantizer::train(
                &ctx,
                &x,
                &BinaryOptions::default().with_threshold(BinaryThreshold::Mean),
            )
            .unwrap(),
        ),
        Quantizer::Product(
            ProductQuantizer::train(&ctx, &x, &PqOptions::new(3, 4).with_iterations(3)).unwrap(),
        ),
    ];
    let dir = std::env::temp_dir().join(format!("va-quant-{s}"));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, q) in qs.iter().enumerate() {
        let p = dir.join(format!("q{i}.vaq"));
        q.save(&p).unwrap();
        assert_eq!(&Quantizer::load(&p).unwrap(), q);
        let b = q.to_bytes();
        for cut in [0, 7, 12, b.len() / 2, b.len() - 1] {
            let e = Quantizer::from_bytes(&b[..cut]).unwrap_err();
            assert!(matches!(e, Error::InvalidParameter { .. }), "{e}");
        }
        let mut flip = b.clone();
        flip[20] ^= 1;
        assert!(Quantizer::from_bytes(&flip)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        let mut ver = b.clone();
        ver[8] = 9;
        assert!(Quantizer::from_bytes(&ver)
            .unwrap_err()
            .to_string()
            .contains("version"));
        std::fs::write(&p, &b[..b.len() - 3]).unwrap();
        assert!(Quantizer::load(&p).is_err());
    }
    assert!(Quantizer::from_bytes(b"not a quantizer at all, clearly")
        .unwrap_err()
        .to_string()
        .contains("magic"));
    std::fs::remove_dir_all(&dir).ok();
}

/// Every kind's options, as a [`Quantizer`] trains them.
fn every_kind() -> Vec<QuantizerOptions> {
    vec![
        QuantizerOptions::Scalar(ScalarOptions::int8()),
        QuantizerOptions::Scalar(ScalarOptions::int4().with_scope(ScalarScope::PerVector)),
        QuantizerOptions::Binary(BinaryOptions::default().with_threshold(BinaryThreshold::Mean)),
        QuantizerOptions::Product(PqOptions::new(3, 5).with_iterations(4)),
    ]
}

#[test]
fn every_quantizer_is_one_codec() {
    let s = seed();
    for_each_backend("every_quantizer_is_one_codec", |ctx| {
        let mut r = rng(s);
        let (n, d) = (301, 15);
        let x = gaussian(&mut r, n, d);
        let q = gaussian(&mut r, 7, d);
        // int8; int4 plus a scale and offset; one bit each; 3 codes of 5 bits.
        let sizes = [d, d.div_ceil(2) + 8, d.div_ceil(8), 2];
        let mut all_codes = Vec::new();
        for (opts, size) in every_kind().into_iter().zip(sizes) {
            let qz = Quantizer::train(ctx, &x, &opts).unwrap();
            let label = format!("{} on {}", qz.kind_name(), ctx.device());
            assert_eq!(qz.dim(), d, "{label}");
            assert_eq!(qz.code_size(), size, "{label}");
            let codes = qz.encode(ctx, &x).unwrap();
            assert_eq!((codes.rows(), codes.device()), (n, ctx.device()), "{label}");
            // Bytes round trip, and a ragged length is refused.
            let bytes = codes.to_bytes().unwrap();
            assert_eq!(bytes.len(), n * qz.code_size(), "{label}");
            let again = qz.codes_from_bytes(ctx, &bytes).unwrap();
            assert_eq!(again.to_bytes().unwrap(), bytes, "{label}");
            let e = qz
                .codes_from_bytes(ctx, &bytes[..bytes.len() - 1])
                .unwrap_err();
            assert!(matches!(e, Error::RaggedData { .. }), "{label}: {e}");
            // Decode and search agree with the kind's own codec.
            let back = qz.decode(ctx, &again).unwrap().into_host().unwrap();
            assert_eq!((back.rows(), back.dim()), (n, d), "{label}");
            let opts = SearchOptions::default().with_rerank(&x, 20);
            let got = qz.search(ctx, &q, &codes, 5, &opts).unwrap();
            let (own_back, own) = match (&qz, &codes) {
                (Quantizer::Scalar(c), Codes::Scalar(k)) => (
                    c.decode(ctx, k).unwrap(),
                    c.search(ctx, &q, k, 5, &opts).unwrap(),
                ),
                (Quantizer::Binary(c), Codes::Binary(k)) => (
                    c.decode(ctx, k).unwrap(),
                    c.search(ctx, &q, k, 5, &opts).unwrap(),
                ),
                (Quantizer::Product(c), Codes::Product(k)) => (
                    c.decode(ctx, k).unwrap(),
                    c.search(ctx, &q, k, 5, &opts).unwrap(),
                ),
                _ => panic!("{label}: codes of another kind"),
            };
            assert_eq!(own_back.into_host().unwrap(), back, "{label}");
            assert_eq!(own.ids(), got.ids(), "{label}");
            // Re-ranked distances are exact squared L2 to the originals.
            for qi in 0..7 {
                for (j, &id) in got.row_ids(qi).iter().enumerate() {
                    let want: f64 = (0..d)
                        .map(|t| (q.get(qi, t) as f64 - x.get(id as usize, t) as f64).powi(2))
                        .sum();
                    let have = got.row_distances(qi)[j] as f64;
                    assert!((have - want).abs() <= 1e-4 * want.max(1.0), "{label}");
                }
            }
            all_codes.push((qz, codes));
        }
        // Codes of another kind are refused.
        let (sq, sq_codes) = &all_codes[0];
        let (bq, bq_codes) = &all_codes[2];
        for (qz, other) in [(sq, bq_codes), (bq, sq_codes)] {
            let e = qz.decode(ctx, other).unwrap_err();
            assert!(matches!(e, Error::InvalidParameter { .. }), "{e}");
            let e = qz.search(ctx, &q, other, 3, &SearchOptions::default());
            assert!(e.is_err());
        }
    });
}

#[test]
fn each_codec_saves_and_loads_its_own_kind_only() {
    let ctx = Context::cpu();
    let x = gaussian(&mut rng(seed()), 64, 6);
    let dir = std::env::temp_dir().join(format!("va-codec-{}", seed()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ps, pb) = (dir.join("s.vaq"), dir.join("b.vaq"));
    let sq = ScalarQuantizer::train(&ctx, &x, &ScalarOptions::default()).unwrap();
    sq.save(&ps).unwrap();
    assert_eq!(ScalarQuantizer::load(&ps).unwrap(), sq);
    BinaryQuantizer::train(&ctx, &x, &BinaryOptions::default())
        .unwrap()
        .save(&pb)
        .unwrap();
    let e = ScalarQuantizer::load(&pb).unwrap_err();
    assert!(e.to_string().contains("binary"), "{e}");
    assert!(ProductQuantizer::load(&ps).is_err());
    assert!(matches!(
        Quantizer::load(&pb).unwrap(),
        Quantizer::Binary(_)
    ));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn quantization_refuses_bad_input_with_typed_errors() {
    let ctx = Context::cpu();
    let mut r = rng(seed());
    let x = gaussian(&mut r, 100, 10);
    let e = ProductQuantizer::train(&ctx, &x, &PqOptions::new(3, 4)).unwrap_err();
    assert!(e.to_string().contains("not a multiple of m"), "{e}");
    for nbits in [3, 17] {
        let e = ProductQuantizer::train(&ctx, &x, &PqOptions::new(2, nbits)).unwrap_err();
        assert!(e.to_string().contains("nbits"), "{e}");
    }
    let e = ProductQuantizer::train(&ctx, &x, &PqOptions::new(2, 8)).unwrap_err();
    assert!(
        e.to_string().contains("fewer than the 256 centroids"),
        "{e}"
    );
    let mut bad = x.as_slice().to_vec();
    bad[57] = f32::NAN;
    let bad = Matrix::new(bad, 10).unwrap();
    let e = ProductQuantizer::train(&ctx, &bad, &PqOptions::new(2, 4)).unwrap_err();
    assert!(e.to_string().contains("row 5 column 7"), "{e}");
    let e = ScalarQuantizer::train(
        &ctx,
        &x,
        &ScalarOptions::int8()
            .with_scope(ScalarScope::PerVector)
            .with_clip(0.99),
    )
    .unwrap_err();
    assert!(e.to_string().contains("per-channel"), "{e}");
    let e = ScalarQuantizer::train(&ctx, &x, &ScalarOptions::int8().with_clip(1.5)).unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { .. }));
    let sq = ScalarQuantizer::train(&ctx, &x, &ScalarOptions::int8()).unwrap();
    let codes = sq.encode(&ctx, &x).unwrap();
    let e = sq
        .search(
            &ctx,
            &x,
            &codes,
            3,
            &SearchOptions::default().with_metric(Metric::L1),
        )
        .unwrap_err();
    assert!(matches!(e, Error::UnsupportedMetric { .. }));
    let other = ScalarQuantizer::train(&ctx, &x, &ScalarOptions::int4()).unwrap();
    assert!(other.decode(&ctx, &codes).is_err());
    let e = sq.encode(&ctx, &gaussian(&mut r, 2, 11)).unwrap_err();
    assert!(matches!(e, Error::DimensionMismatch { .. }));
    let e = sq
        .search(
            &ctx,
            &x,
            &codes,
            5,
            &SearchOptions::default().with_rerank(&x, 3),
        )
        .unwrap_err();
    assert!(e.to_string().contains("at least k"), "{e}");
    let e = BinaryQuantizer::train(
        &ctx,
        &x,
        &BinaryOptions::default().with_threshold(BinaryThreshold::Given(vec![0.0; 3])),
    )
    .unwrap_err();
    assert!(matches!(e, Error::DimensionMismatch { .. }));
    if let Some(g) = cuda() {
        // Codes of another device.
        assert!(matches!(
            sq.decode(&g, &codes).unwrap_err(),
            Error::DeviceMismatch { .. }
        ));
    }
}

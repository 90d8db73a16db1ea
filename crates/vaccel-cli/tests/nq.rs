//! `vaccel nq train|encode|decode` end to end on the CPU: the model file, the
//! codes (each row's scale and int8 values against an fp64 encoding with
//! the saved weights) and the reconstruction.

use std::fs;

mod common;

use common::*;
use vector_accelerate::ml::WeightStore;

/// Rows near a 3-dimensional subspace of R^12 (plus a mean and small noise).
fn data(rows: usize) -> Vec<f32> {
    let mut g = Lcg(11);
    let basis = g.vec(3 * 12);
    let mut x = Vec::with_capacity(rows * 12);
    for _ in 0..rows {
        let z = g.vec(3);
        for j in 0..12 {
            let v: f32 = (0..3).map(|c| z[c] * basis[c * 12 + j]).sum();
            x.push(5.0 + 4.0 * v + 0.001 * g.next());
        }
    }
    x
}

#[test]
fn nq_fit_encode_decode_round_trip() {
    let dir = TempDir::new("nq");
    let x = data(300);
    write_f32(&dir.path("x.npy"), 12, &x);
    let (xa, ma, ca, ba) = (
        dir.arg("x.npy"),
        dir.arg("m.safetensors"),
        dir.arg("c.npy"),
        dir.arg("b.npy"),
    );
    let ok = |args: &[&str]| {
        let out = vaccel(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let msg = ok(&[
        "nq", "train", "--data", &xa, "--latent", "3", "--out", &ma, "--device", "cpu",
    ]);
    assert!(
        msg.contains("PCA 12 -> 3") && msg.contains("int8 codes"),
        "{msg}"
    );
    // The model: nn.Linear-style tensors and the PCA fit.
    let mut store = WeightStore::new();
    store.load_safetensors(dir.path("m.safetensors")).unwrap();
    let shape = |n: &str| store.get(n).unwrap().shape().to_vec();
    assert_eq!(shape("encoder.weight"), [3, 12]);
    assert_eq!(shape("encoder.bias"), [3]);
    assert_eq!(shape("decoder.weight"), [12, 3]);
    assert_eq!(shape("decoder.bias"), [12]);
    assert_eq!(shape("pca.components"), [3, 12]);
    let we = store.matrix("encoder.weight", 3, 12).unwrap();
    let be = store.vector("encoder.bias", 3).unwrap();
    // Codes: rows of 3 int8 values, then the scale and a zero offset.
    ok(&[
        "nq", "encode", "--model", &ma, "--data", &xa, "--out", &ca, "--device", "cpu", "--report",
    ]);
    let (rows, cols, codes) = read_npy(&dir.path("c.npy"), "|u1");
    assert_eq!((rows, cols), (300, 3 + 8));
    for (i, row) in codes.chunks_exact(cols).enumerate() {
        let z: Vec<f64> = (0..3)
            .map(|o| {
                be[o] as f64
                    + (0..12)
                        .map(|j| we.get(o, j) as f64 * x[i * 12 + j] as f64)
                        .sum::<f64>()
            })
            .collect();
        let top = z.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let scale = f32::from_le_bytes(row[3..7].try_into().unwrap()) as f64;
        assert_eq!(f32::from_le_bytes(row[7..11].try_into().unwrap()), 0.0);
        assert!(
            (scale - top / 127.0).abs() <= 1e-4 * top / 127.0,
            "row {i}: scale {scale} vs {}",
            top / 127.0
        );
        for o in 0..3 {
            let want = (z[o] / scale).round();
            assert!(
                (row[o] as i8 as f64 - want).abs() <= 1.0,
                "row {i} code {o}: {} vs {want}",
                row[o] as i8
            );
        }
    }
    // Decoded rows are close to the data (rank 3 plus noise, int8 steps).
    ok(&[
        "nq", "decode", "--model", &ma, "--codes", &ca, "--out", &ba, "--device", "cpu",
    ]);
    let back = read_dists(&dir.path("b.npy"));
    assert_eq!(back.len(), x.len());
    let err: f64 = x
        .iter()
        .zip(&back)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        / x.len() as f64;
    let var: f64 = x.iter().map(|a| ((a - 5.0) as f64).powi(2)).sum::<f64>() / x.len() as f64;
    assert!(
        err < 1e-3 * var,
        "reconstruction MSE {err} against variance {var}"
    );
    // Options reach the encoder.
    let cn = dir.arg("cn.npy");
    ok(&[
        "nq",
        "encode",
        "--model",
        &ma,
        "--data",
        &xa,
        "--out",
        &cn,
        "--device",
        "cpu",
        "--normalize-latent",
    ]);
    assert_ne!(
        fs::read(dir.path("cn.npy")).unwrap(),
        fs::read(dir.path("c.npy")).unwrap()
    );
    // Errors: exit code and a message naming what is wrong.
    let fails = |args: &[&str], needle: &str| {
        let out = vaccel(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(needle),
            "{args:?}: {err}"
        );
    };
    fails(
        &[
            "nq",
            "encode",
            "--model",
            &ma,
            "--data",
            &xa,
            "--out",
            &cn,
            "--activation",
            "swish",
        ],
        "swish",
    );
    fails(
        &["nq", "encode", "--model", &xa, "--data", &xa, "--out", &cn],
        "cannot read model",
    );
    fails(
        &["nq", "fit", "--data", &xa, "--latent", "13", "--out", &ma],
        "--latent 13",
    );
    write_f32(&dir.path("y.npy"), 11, &x[..11 * 20]);
    fails(
        &[
            "nq",
            "encode",
            "--model",
            &ma,
            "--data",
            &dir.arg("y.npy"),
            "--out",
            &cn,
            "--device",
            "cpu",
        ],
        "11 columns",
    );
    fails(
        &[
            "nq", "decode", "--model", &ma, "--codes", &xa, "--out", &ba, "--device", "cpu",
        ],
        "uint8",
    );
}

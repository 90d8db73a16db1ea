//! The ML family (`vector_accelerate::ml`), one file per part: learned
//! distance, neural quantization and attention similarity against fp64
//! computations of their formulas on both backends (every option shown to
//! change the output, bad arguments refused with typed errors); the weight
//! store (safetensors round trips of every dtype, a file written by hand,
//! typed errors, memory accounting and the device cache); Xavier
//! initialisation; and PCA against an fp64 reference. The fp64 references
//! and file helpers they share are here.

mod attention;
mod learned_distance;
mod neural_quantizer;
mod pca;
mod weights;
mod xavier;

use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::Rng;

use crate::common::*;
use vector_accelerate::{Error, Matrix, Metric, Order};

/// A file path in the system's temporary folder, unique to this process
/// and test, removed when dropped.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(test: &str) -> Self {
        Self(std::env::temp_dir().join(format!("va-it-{}-{test}.safetensors", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A safetensors file assembled by hand: the 8-byte little-endian header
/// length, the JSON header (padded with spaces to a multiple of 8, as
/// writers do), then the data.
pub fn safetensors_by_hand(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

/// `x W^T + b` in fp64 (W: d_out rows of d_in).
fn project64(x: &Matrix, w: &Matrix, b: Option<&[f32]>) -> Vec<Vec<f64>> {
    (0..x.rows())
        .map(|i| {
            (0..w.rows())
                .map(|o| {
                    let s: f64 = x
                        .row(i)
                        .iter()
                        .zip(w.row(o))
                        .map(|(&a, &c)| a as f64 * c as f64)
                        .sum();
                    s + b.map_or(0.0, |b| b[o] as f64)
                })
                .collect()
        })
        .collect()
}

/// `sum |x| |w| + |b|` per output: the scale of a projection's rounding.
fn scale64(x: &Matrix, w: &Matrix, b: Option<&[f32]>) -> Vec<Vec<f64>> {
    let ax = Matrix::new(x.as_slice().iter().map(|v| v.abs()).collect(), x.dim()).unwrap();
    let aw = Matrix::new(w.as_slice().iter().map(|v| v.abs()).collect(), w.dim()).unwrap();
    let ab: Option<Vec<f32>> = b.map(|b| b.iter().map(|v| v.abs()).collect());
    project64(&ax, &aw, ab.as_deref())
}

fn dist64(a: &[f64], b: &[f64], m: Metric) -> f64 {
    let l2: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    match m {
        Metric::L2 => l2,
        Metric::Euclidean => l2.sqrt(),
        Metric::Cosine => {
            let (ab, aa, bb) = a.iter().zip(b).fold((0.0, 0.0, 0.0), |s, (x, y)| {
                (s.0 + x * y, s.1 + x * x, s.2 + y * y)
            });
            if aa == 0.0 || bb == 0.0 {
                1.0
            } else {
                1.0 - ab / (aa.sqrt() * bb.sqrt())
            }
        }
        _ => unreachable!(),
    }
}

/// Row `i` of a full result (`got`, every pair) and of a top-k result
/// (`nn`) against fp64 values `refs`, within `tol(j)` per pair.
fn check_values_and_ranking(
    label: &str,
    i: usize,
    got: &Matrix,
    nn: &vector_accelerate::Neighbors,
    refs: &[f64],
    order: Order,
    tol: impl Fn(usize) -> f64,
) {
    for (j, &e) in refs.iter().enumerate() {
        let g = got.get(i, j) as f64;
        assert!(
            (g - e).abs() <= tol(j),
            "{label}: ({i},{j}) {g} vs fp64 {e}"
        );
    }
    let tmax = (0..refs.len()).map(tol).fold(0.0, f64::max);
    check_row(
        &format!("{label} top-k row {i}"),
        nn.row_ids(i),
        nn.row_distances(i),
        refs,
        order,
        tmax,
    );
}

fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum()
}

fn bias(r: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| r.random_range(-1.0f32..1.0)).collect()
}

fn inv(r: Result<impl std::fmt::Debug, Error>, name: &str) {
    match r {
        Err(Error::InvalidParameter { name: n, .. }) if n == name => {}
        other => panic!("expected InvalidParameter {{ {name} }}, got {other:?}"),
    }
}

fn mismatch(r: Result<impl std::fmt::Debug, Error>) {
    assert!(
        matches!(r, Err(Error::DimensionMismatch { .. })),
        "expected DimensionMismatch, got {r:?}"
    );
}

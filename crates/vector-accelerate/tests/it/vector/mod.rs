//! The vector utilities (`vector_accelerate::vector`): the CPU reference
//! against fp64, CUDA against the CPU, on shapes around every block size of
//! the kernels (a warp per row up to 1024 columns, a block of 256 beyond;
//! column partials 32 columns by 8 row lanes in chunks of at least 64 rows).
//! Device outputs are poisoned before kernels run (see `common::backends`).
//! One file per part of the family, as in `src/ops/vector/`, plus the
//! backend comparisons and the typed errors; the shapes and helpers they
//! share are here.

// Element checks index several parallel arrays by the same position.
#![allow(clippy::needless_range_loop)]

mod backends;
mod elementwise;
mod errors;
mod normalize;
mod reduce;
mod softmax;

use rand::Rng;
use rand_distr::StandardNormal;

use vector_accelerate::vector::{normalize_with_norms, Binary};
use vector_accelerate::{Context, Matrix};

/// [`normalize_with_norms`] read back: the rows and the norms.
fn host_normalized(ctx: &Context, x: &Matrix) -> (Matrix, Vec<f32>) {
    let (y, n) = normalize_with_norms(ctx, x).unwrap();
    (y.into_host().unwrap(), n.into_host().unwrap().into_vec())
}

const SHAPES: &[(usize, usize)] = &[
    (1, 1),
    (1, 2),
    (2, 3),
    (3, 1),
    (9, 31),
    (8, 32),
    (7, 33),
    (63, 5),
    (64, 4),
    (65, 7),
    (3, 255),
    (3, 256),
    (2, 257),
    (2, 1023),
    (3, 1024),
    (2, 1025),
    (997, 13),
];

const LARGE: (usize, usize) = (4096, 1031);

/// Wider than the CPU's narrow per-column path (4096 columns).
const WIDE: (usize, usize) = (67, 4099);

/// Distance in units in the last place (0 for equal values and for two
/// NaNs; `u32::MAX` when only one is NaN).
fn ulps(a: f32, b: f32) -> u32 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u32::MAX
        };
    }
    let key = |v: f32| {
        let b = v.to_bits() as i64;
        if b < 0x8000_0000 {
            b
        } else {
            -(b - 0x8000_0000)
        }
    };
    (key(a) - key(b)).unsigned_abs().min(u32::MAX as u64) as u32
}

fn scaled(r: &mut rand::rngs::StdRng, rows: usize, dim: usize, scale: f32, offset: f32) -> Matrix {
    Matrix::new(
        (0..rows * dim)
            .map(|_| offset + scale * r.sample::<f32, _>(StandardNormal))
            .collect(),
        dim,
    )
    .unwrap()
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

const BINARY: [Binary; 7] = [
    Binary::Add,
    Binary::Sub,
    Binary::Mul,
    Binary::Div,
    Binary::Pow,
    Binary::Max,
    Binary::Min,
];

/// Shapes of the resident-reduction checks: those of the family plus every
/// register kernel of the row reductions on CUDA (rows of at most 128, 256,
/// 512 and 1024 elements with dim % 4 == 0; 8, 4, 2, 1 rows per warp at a
/// time, row counts off those multiples).
const RESIDENT_SHAPES: &[(usize, usize)] = &[
    (9, 4),
    (17, 8),
    (65, 128),
    (31, 132),
    (13, 256),
    (7, 260),
    (5, 512),
    (3, 516),
    (6, 1020),
    (1, 1024),
];

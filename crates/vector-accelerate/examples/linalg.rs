//! Matrix operations: a product, a product with bias and activation, and a
//! transpose; options through `GemmOptions`.
//!
//! `cargo run --release --example linalg`

use vector_accelerate::linalg::{gemm, gemm_fused, transpose, Activation, GemmOptions};
use vector_accelerate::{Context, Matrix, Precision};

fn main() -> vector_accelerate::Result<()> {
    let ctx = Context::new()?;
    let a = Matrix::new((0..6).map(|i| i as f32).collect(), 3)?; // 2 x 3
    let b = Matrix::new((0..12).map(|i| i as f32 * 0.5).collect(), 4)?; // 3 x 4
    let c = gemm(&ctx, &a, &b, None, &GemmOptions::default())?.to_host()?; // 2 x 4
    println!("A B = {:?}", c.as_slice());
    assert_eq!(c.get(1, 0), 3.0 * 0.0 + 4.0 * 2.0 + 5.0 * 4.0);
    // relu(A B + bias) in one call; B given transposed.
    let bt = transpose(&ctx, &b)?;
    let opts = GemmOptions::default()
        .with_trans_b(true)
        .with_activation(Activation::Relu);
    let bias = [-10.0, 0.0, 0.0, 0.0];
    let y = gemm_fused(&ctx, &a, &bt, Some(&bias), &opts)?.to_host()?;
    println!("relu(A B + bias) = {:?}", y.as_slice());
    // Tensor-core precision is opt-in.
    let tf32 = GemmOptions::default().with_precision(Precision::Tf32);
    let _ = gemm(&ctx, &a, &b, None, &tf32)?;
    Ok(())
}

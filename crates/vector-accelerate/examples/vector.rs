//! Vector utilities: normalisation, element-wise chains, broadcasting,
//! reductions and softmax; results stay on the context's device until read
//! back.
//!
//! `cargo run --release --example vector`

use vector_accelerate::vector::{
    binary, map, normalize_with_norms, reduce, softmax, Axis, Binary, Operand, Reduction, Unary,
};
use vector_accelerate::{Context, Matrix};

fn main() -> vector_accelerate::Result<()> {
    let ctx = Context::new()?;
    let x = Matrix::new(vec![3.0, 4.0, 0.0, 1.0, -2.0, 2.0], 3)?;
    let (unit, norms) = normalize_with_norms(&ctx, &x)?;
    println!(
        "unit rows {:?}, norms {:?}",
        unit.to_host()?.as_slice(),
        norms.to_host()?.as_slice()
    );
    // One pass: 2x, then clamp to [0, 5].
    let y = map(&ctx, &x, &[Unary::Mul(2.0), Unary::Clamp(0.0, 5.0)])?;
    // Broadcast a row and chain on the device result.
    let centred = binary(&ctx, &y, Binary::Sub, Operand::row(&[1.0, 1.0, 1.0]))?;
    let sums = reduce(&ctx, &centred, Reduction::Sum, Axis::PerRow)?.to_host()?;
    println!("row sums {:?}", sums.as_slice());
    let p = softmax(&ctx, &x)?.to_host()?;
    let total: f32 = p.row(0).iter().sum();
    assert!((total - 1.0).abs() < 1e-6);
    println!("softmax row 0 {:?}", p.row(0));
    Ok(())
}

//! `vaccel bench ops`: the vector utilities on a resident matrix (results
//! left on the device; the row reductions also with their results brought
//! back), in bandwidth of the ideal traffic: the bytes one pass must read
//! and write; a 1,024-bin histogram of the whole matrix; descriptive
//! statistics, quantiles and covariance; then GEMM on resident operands in
//! each precision, and GEMM with bias and ReLU.

use std::io::Write;

use anyhow::{ensure, Result};
use clap::Args;
use vector_accelerate::diagnostics::measure_ceilings;
use vector_accelerate::histogram::{histogram, BinSpec, HistogramOptions};
use vector_accelerate::linalg::{gemm, gemm_fused, Activation, GemmOptions};
use vector_accelerate::vector::{
    arg_reduce, binary_then, logsumexp, map, normalize_in_place, reduce, softmax, ArgReduction,
    Axis, Binary, Operand, Reduction, Unary,
};
use vector_accelerate::{half, Context, DeviceMatrix, Matrix, Precision};

use super::args::make_context;
use super::timing::time_synced_ms;
use crate::synth::{Generator, BASE_STREAM, QUERY_STREAM};

/// Arguments of `vaccel bench ops`.
#[derive(Debug, Args)]
pub struct BenchOpsArgs {
    /// Device: cpu, cuda, cuda:N or auto.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// Size of the matrix in GiB (default 1 on CUDA, 0.125 on the CPU).
    #[arg(long)]
    gib: Option<f64>,
    /// Columns of the matrix.
    #[arg(long, default_value_t = 1024)]
    dim: usize,
    /// Timed runs per case (median reported).
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Seed of the Gaussian values.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// GEMM shapes `MxNxK` (comma list; default 4096x4096x4096,8192x8192x8192,
    /// 4097x4095x1023,1x1000x3 on CUDA, 1024x1024x1024 on the CPU; "none"
    /// skips GEMM).
    #[arg(long)]
    gemm: Option<String>,
    /// Values of the quantile case (default 10^8 on CUDA, 10^7 on the CPU).
    #[arg(long)]
    quantile_n: Option<usize>,
}

/// Runs the benchmark.
// Long by design: a flat list of cases, each a few lines, printed in order.
pub fn run(a: BenchOpsArgs) -> Result<()> {
    ensure!(a.repeats >= 1, "--repeats must be at least 1");
    ensure!(a.dim >= 1, "--dim must be at least 1");
    let (ctx, how) = make_context(a.device.as_deref())?;
    let gib = a.gib.unwrap_or(if ctx.is_cuda() { 1.0 } else { 0.125 });
    ensure!(
        gib.is_finite() && gib > 0.0,
        "--gib must be a positive size, got {gib}"
    );
    let rows = ((gib * (1u64 << 30) as f64 / 4.0) as usize / a.dim).max(1);
    let size = (rows * a.dim * 4) as f64;
    let mut out = std::io::stdout().lock();
    writeln!(out, "device: {} ({}, {how})", ctx.device(), ctx.info().name)?;
    let copy = measure_ceilings(&ctx)?.copy_bytes_per_s;
    writeln!(
        out,
        "ceilings measured now: copy {:.0} GB/s (read + write)",
        copy / 1e9
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| case | shape | median ms | TB/s of ideal traffic | of copy ceiling |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|")?;
    let g = Generator::gaussian(a.dim, a.seed)?;
    let x = ctx.upload(&g.rows(rows, BASE_STREAM)?)?;
    let y = ctx.upload(&g.rows(rows, QUERY_STREAM)?)?;
    let row: Matrix = g.rows(1, QUERY_STREAM + 1)?;
    let mut z = ctx.upload(&g.rows(rows, BASE_STREAM)?)?;
    let shape = format!("{rows} x {}", a.dim);
    let mut report = |name: &str, ms: f64, bytes: f64| -> Result<()> {
        let bw = bytes / (ms / 1e3);
        writeln!(
            out,
            "| {name} | {shape} | {ms:.3} | {:.3} | {:.0}% |",
            bw / 1e12,
            100.0 * bw / copy
        )?;
        Ok(())
    };
    let r = a.repeats;
    let ms = time_synced_ms(&ctx, r, || Ok(normalize_in_place(&ctx, &mut z).map(drop)?))?;
    report("normalise rows in place (norms returned)", ms, 2.0 * size)?;
    let maps: [(&str, &[Unary]); 10] = [
        ("x + 1.5", &[Unary::Add(1.5)]),
        ("exp(x)", &[Unary::Exp]),
        ("log(x)", &[Unary::Log]),
        ("sigmoid(x)", &[Unary::Sigmoid]),
        ("tanh(x)", &[Unary::Tanh]),
        ("sin(x)", &[Unary::Sin]),
        ("cos(x)", &[Unary::Cos]),
        ("gelu(x) (erf)", &[Unary::Gelu]),
        (
            "tanh(exp(0.5 x) - 1) chain",
            &[Unary::Mul(0.5), Unary::Exp, Unary::Add(-1.0), Unary::Tanh],
        ),
        (
            "sqrt(|sin(x)|) chain",
            &[Unary::Sin, Unary::Abs, Unary::Sqrt],
        ),
    ];
    for (name, chain) in maps {
        let ms = time_synced_ms(&ctx, r, || Ok(map(&ctx, &x, chain).map(drop)?))?;
        report(name, ms, 2.0 * size)?;
    }
    let ms = time_synced_ms(&ctx, r, || {
        Ok(binary_then(&ctx, &x, Binary::Mul, &y, &[]).map(drop)?)
    })?;
    report("x * y", ms, 3.0 * size)?;
    let ms = time_synced_ms(&ctx, r, || {
        Ok(binary_then(&ctx, &x, Binary::Add, Operand::row(row.as_slice()), &[]).map(drop)?)
    })?;
    report("x + row vector", ms, 2.0 * size)?;
    let ms = time_synced_ms(&ctx, r, || {
        Ok(binary_then(&ctx, &x, Binary::Mul, 1.5, &[Unary::Add(0.5), Unary::Relu]).map(drop)?)
    })?;
    report("relu(x * 1.5 + 0.5) fused", ms, 2.0 * size)?;
    // Reductions leave their results on the device (as PyTorch's do); the
    // row cases are also shown with the results downloaded.
    for (name, axis) in [
        ("sum (all)", Axis::All),
        ("sum per row", Axis::PerRow),
        ("sum per column", Axis::PerColumn),
    ] {
        let ms = time_synced_ms(&ctx, r, || {
            Ok(reduce(&ctx, &x, Reduction::Sum, axis).map(drop)?)
        })?;
        report(name, ms, size)?;
    }
    let ms = time_synced_ms(&ctx, r, || {
        Ok(reduce(&ctx, &x, Reduction::Sum, Axis::PerRow)?
            .to_host()
            .map(drop)?)
    })?;
    report("sum per row, results downloaded", ms, size)?;
    let ms = time_synced_ms(&ctx, r, || {
        Ok(reduce(&ctx, &x, Reduction::Variance { ddof: 0 }, Axis::PerColumn).map(drop)?)
    })?;
    report("variance per column (with the mean, one pass)", ms, size)?;
    let ms = time_synced_ms(&ctx, r, || {
        Ok(arg_reduce(&ctx, &x, ArgReduction::ArgMax, Axis::PerRow).map(drop)?)
    })?;
    report("argmax per row", ms, size)?;
    let ms = time_synced_ms(&ctx, r, || {
        Ok(arg_reduce(&ctx, &x, ArgReduction::ArgMax, Axis::PerRow)?
            .to_host()
            .map(drop)?)
    })?;
    report("argmax per row, indices downloaded", ms, size)?;
    let ms = time_synced_ms(&ctx, r, || Ok(softmax(&ctx, &x).map(drop)?))?;
    report("softmax per row", ms, 2.0 * size)?;
    let ms = time_synced_ms(&ctx, r, || Ok(logsumexp(&ctx, &x).map(drop)?))?;
    report("log-sum-exp per row", ms, size)?;
    let ms = time_synced_ms(&ctx, r, || Ok(logsumexp(&ctx, &x)?.to_host().map(drop)?))?;
    report("log-sum-exp per row, results downloaded", ms, size)?;
    // Histograms read the data once (a range from the data: twice).
    let opts = HistogramOptions::default();
    for (name, range) in [
        ("histogram 1,024 bins over [-4, 4]", Some((-4.0, 4.0))),
        (
            "histogram 1,024 bins over the data range (two passes)",
            None,
        ),
    ] {
        let spec = BinSpec::Uniform { bins: 1024, range };
        let ms = time_synced_ms(&ctx, r, || Ok(histogram(&ctx, &x, &spec, &opts).map(drop)?))?;
        report(name, ms, size)?;
    }
    drop((y, z));
    let qn = a.quantile_n.unwrap_or(if ctx.is_cuda() {
        100_000_000
    } else {
        10_000_000
    });
    ensure!(qn >= 1, "--quantile-n must be at least 1");
    super::bench_stats::stats_cases(
        &ctx,
        &x,
        qn,
        a.seed,
        &|f| time_synced_ms(&ctx, r, f),
        &mut |name, shape, ms, bytes| {
            let bw = bytes / (ms / 1e3);
            writeln!(
                out,
                "| {name} | {shape} | {ms:.3} | {:.3} | {:.0}% |",
                bw / 1e12,
                100.0 * bw / copy
            )?;
            Ok(())
        },
    )?;
    drop(x);
    gemm_cases(&ctx, &a, &mut out)
}

/// `MxNxK` shapes of the GEMM cases.
fn gemm_shapes(ctx: &Context, spec: Option<&str>) -> Result<Vec<(usize, usize, usize)>> {
    let default = if ctx.is_cuda() {
        "4096x4096x4096,8192x8192x8192,4097x4095x1023,1x1000x3"
    } else {
        "1024x1024x1024"
    };
    let spec = spec.unwrap_or(default);
    if spec == "none" {
        return Ok(Vec::new());
    }
    spec.split(',')
        .map(|t| {
            let v: Vec<usize> = t
                .trim()
                .split('x')
                .map(|n| n.parse::<usize>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| anyhow::anyhow!("--gemm: '{t}' is not MxNxK"))?;
            ensure!(
                v.len() == 3 && v.iter().all(|&n| n >= 1),
                "--gemm: '{t}' is not MxNxK with sizes >= 1"
            );
            Ok((v[0], v[1], v[2]))
        })
        .collect()
}

/// GEMM in each precision on resident operands, then bias + ReLU fused.
fn gemm_cases(ctx: &Context, a: &BenchOpsArgs, out: &mut impl Write) -> Result<()> {
    let shapes = gemm_shapes(ctx, a.gemm.as_deref())?;
    if shapes.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "| GEMM case | m x n x k | median ms | TFLOP/s |")?;
    writeln!(out, "|---|---|---:|---:|")?;
    let g = gaussian_rows(a.seed);
    for (m, n, k) in shapes {
        let ad = ctx.upload(&g(m, k, BASE_STREAM)?)?;
        let bd = ctx.upload(&g(k, n, QUERY_STREAM)?)?;
        let flops = 2.0 * (m * n * k) as f64;
        let precisions = [
            ("fp32 exact", Precision::Exact),
            ("tf32", Precision::Tf32),
            ("bf16", Precision::Bf16),
            ("f16", Precision::F16),
        ];
        let row = |out: &mut dyn Write, name: &str, ms: f64| -> Result<()> {
            writeln!(
                out,
                "| {name} | {m} x {n} x {k} | {ms:.3} | {:.2} |",
                flops / (ms / 1e3) / 1e12
            )?;
            Ok(())
        };
        for (name, precision) in precisions {
            let o = GemmOptions::default().with_precision(precision);
            let ms = time_synced_ms(ctx, a.repeats, || {
                Ok(gemm(ctx, &ad, &bd, None, &o).map(drop)?)
            })?;
            row(out, &format!("gemm {name}"), ms)?;
            if matches!(precision, Precision::Bf16 | Precision::F16) {
                // The same product of operands uploaded in 16 bits (read in
                // place; resident f32 operands above use their rounded copy,
                // made by the first call).
                let (h_a, h_b) = (
                    upload_16(ctx, &g(m, k, BASE_STREAM)?, precision)?,
                    upload_16(ctx, &g(k, n, QUERY_STREAM)?, precision)?,
                );
                let ms = time_synced_ms(ctx, a.repeats, || {
                    Ok(gemm(ctx, &h_a, &h_b, None, &o).map(drop)?)
                })?;
                row(out, &format!("gemm {name}, {name} uploads"), ms)?;
            }
            if precision == Precision::Exact {
                // The fused form right below the plain GEMM of the same shape.
                let bias: Vec<f32> = (0..n).map(|j| (j % 7) as f32 * 0.1).collect();
                let relu = o.with_activation(Activation::Relu);
                let ms = time_synced_ms(ctx, a.repeats, || {
                    Ok(gemm_fused(ctx, &ad, &bd, Some(&bias), &relu).map(drop)?)
                })?;
                row(out, "relu(A B + bias) fp32 exact (fused)", ms)?;
            }
        }
    }
    Ok(())
}

/// `x` rounded to the 16-bit format of `p` and uploaded in 16 bits.
fn upload_16(ctx: &Context, x: &Matrix, p: Precision) -> Result<DeviceMatrix> {
    Ok(if p == Precision::Bf16 {
        let h: Vec<half::bf16> = x
            .as_slice()
            .iter()
            .map(|&v| half::bf16::from_f32(v))
            .collect();
        ctx.upload_bf16(&h, x.dim())?
    } else {
        let h: Vec<half::f16> = x
            .as_slice()
            .iter()
            .map(|&v| half::f16::from_f32(v))
            .collect();
        ctx.upload_f16(&h, x.dim())?
    })
}

/// Seeded N(0, 1) matrices `rows x cols` of one stream.
fn gaussian_rows(seed: u64) -> impl Fn(usize, usize, u64) -> Result<Matrix> {
    move |rows, cols, stream| Generator::gaussian(cols, seed)?.rows(rows, stream)
}

//! `vaccel hist`: a histogram of every value of a float32 `.npy` file,
//! printed as a table of bins (edges, count, a bar of `#`) with the values
//! below, above and non-finite; optionally a Gaussian kernel density
//! estimate, and a PNG picture of the bars (and the density curve).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use vector_accelerate::histogram::{histogram, kde, Bandwidth, BinSpec, HistogramOptions};
use vector_accelerate::{Context, Matrix};

use super::args::make_context;
use crate::io::npy;
use crate::io::output::{commit, PendingFile};
use crate::plot::{self, Canvas};

/// Arguments of `vaccel hist`.
#[derive(Debug, Args)]
pub struct HistArgs {
    /// Values: a float32 ('<f4') .npy array of any shape; every element is
    /// counted.
    #[arg(value_name = "FILE.npy")]
    file: PathBuf,
    /// Number of bins.
    #[arg(long, value_name = "N", default_value_t = 20)]
    bins: usize,
    /// Logarithmic bins (values <= 0 are counted below the range).
    #[arg(long)]
    log: bool,
    /// Base of the logarithmic bins: without --range, the positive values'
    /// range is widened to whole powers of it (10: whole decades).
    #[arg(long, value_name = "B", requires = "log")]
    base: Option<f64>,
    /// Bin range LO,HI (default: the finite values' min and max).
    #[arg(long, value_name = "LO,HI", allow_hyphen_values = true)]
    range: Option<String>,
    /// Also estimate the density with a Gaussian kernel (Scott's
    /// bandwidth) over the bins' range: printed at each bin centre and
    /// drawn over the histogram.
    #[arg(long)]
    kde: bool,
    /// Draw the histogram (and the density curve with --kde) into this PNG
    /// picture.
    #[arg(long, value_name = "OUT.png")]
    png: Option<PathBuf>,
    /// Device: cpu, cuda, cuda:N or auto (default: the
    /// VECTOR_ACCELERATE_DEVICE variable, else auto).
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
}

/// Width of the longest bar of the table, in characters.
const BAR: usize = 40;

/// Points of the density curve drawn over logarithmic bins (each one a
/// separate pass over the data).
const LOG_CURVE_POINTS: usize = 256;

/// Points of the density curve drawn in the picture.
const CURVE_POINTS: usize = 1024;

fn parse_range(s: &str) -> Result<(f64, f64)> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [lo, hi] = parts[..] else {
        bail!("--range: expected LO,HI, got '{s}'");
    };
    let num = |t: &str| {
        t.parse::<f64>()
            .with_context(|| format!("--range: '{t}' is not a number"))
    };
    Ok((num(lo)?, num(hi)?))
}

/// Runs the command.
// Long by design: argument checks, then read, bin, write and report in order.
pub fn run(a: HistArgs) -> Result<()> {
    let range = a.range.as_deref().map(parse_range).transpose()?;
    let spec = if a.log {
        BinSpec::Log {
            bins: a.bins,
            base: a.base.unwrap_or(10.0),
            range,
        }
    } else {
        BinSpec::Uniform {
            bins: a.bins,
            range,
        }
    };
    let (ctx, _) = make_context(a.device.as_deref())?;
    let values =
        npy::read_values(&a.file).with_context(|| format!("cannot read '{}'", a.file.display()))?;
    let n = values.len();
    let x = Matrix::new(values, n.max(1))?;
    let h = histogram(&ctx, &x, &spec, &HistogramOptions::default())?;
    let (lo, hi) = (h.edges[0], h.edges[h.edges.len() - 1]);
    let density = if a.kde {
        Some(kde(
            &ctx,
            &x,
            CURVE_POINTS,
            Some((lo, hi)),
            Bandwidth::Scott,
        )?)
    } else {
        None
    };
    // Check the output before printing anything long.
    let mut pending = match &a.png {
        Some(p) => Some(PendingFile::create(p)?),
        None => None,
    };

    let mut out = std::io::stdout().lock();
    let kind = if a.log { "logarithmic" } else { "uniform" };
    writeln!(
        out,
        "{n} values of {}, {} {kind} bins over [{}, {}], device {}",
        a.file.display(),
        a.bins,
        plot::label(lo),
        plot::label(hi),
        ctx.device()
    )?;
    let at_centres = match &density {
        Some(k) => {
            writeln!(
                out,
                "kernel density: Gaussian, Scott's bandwidth {:.6}, {} finite values",
                k.bandwidth, k.samples
            )?;
            let centres: Vec<f64> = h.edges.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
            Some(density_at(&ctx, &x, &centres, k.bandwidth, !a.log)?)
        }
        None => None,
    };
    let max = h.counts.iter().copied().max().unwrap_or(0).max(1);
    let last = h.counts.len() - 1;
    for (i, &c) in h.counts.iter().enumerate() {
        let close = if i == last { ']' } else { ')' };
        let bar = "#".repeat(((c as f64 / max as f64) * BAR as f64).round() as usize);
        let kde_col = at_centres
            .as_ref()
            .map(|d| format!(" {:>12.6}", d[i]))
            .unwrap_or_default();
        writeln!(
            out,
            "[{:>12}, {:>12}{close} {c:>10}{kde_col} {bar}",
            plot::label(h.edges[i]),
            plot::label(h.edges[i + 1]),
        )?;
    }
    writeln!(
        out,
        "below: {}, above: {}, non-finite: {}",
        h.below, h.above, h.non_finite
    )?;
    if let (Some(file), Some(path)) = (pending.as_mut(), &a.png) {
        // The curve: the density's own grid, or on a log axis points evenly
        // spaced in log x (a linear grid would leave the low decades empty).
        let curve = match &density {
            Some(k) if a.log && lo > 0.0 => {
                let n = LOG_CURVE_POINTS;
                let g: Vec<f64> = (0..n)
                    .map(|i| (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / (n - 1) as f64).exp())
                    .collect();
                let d = density_at(&ctx, &x, &g, k.bandwidth, false)?;
                Some((g, d))
            }
            Some(k) => Some((k.grid.clone(), k.density.clone())),
            None => None,
        };
        let curve = curve.as_ref().map(|(g, d)| (g.as_slice(), d.as_slice()));
        let canvas = draw(&h.edges, &h.counts, curve, a.log);
        file.write(|w| canvas.write_png(w))?;
        commit(vec![pending.take().expect("a pending picture")])?;
        writeln!(out, "picture: {}", path.display())?;
    }
    Ok(())
}

/// The kernel density at `points` with bandwidth `h`: one grid when the
/// points are evenly spaced (uniform bins), else one estimate per point.
fn density_at(ctx: &Context, x: &Matrix, points: &[f64], h: f64, even: bool) -> Result<Vec<f64>> {
    let (first, last) = (points[0], points[points.len() - 1]);
    if even && points.len() > 1 && first < last {
        return Ok(kde(
            ctx,
            x,
            points.len(),
            Some((first, last)),
            Bandwidth::Fixed(h),
        )?
        .density);
    }
    points
        .iter()
        .map(|&p| {
            let k = kde(ctx, x, 1, Some((p, p + 1.0)), Bandwidth::Fixed(h))?;
            Ok(k.density[0])
        })
        .collect()
}

/// The picture: bars (heights in counts, or in density with a curve),
/// axes with labelled ticks.
fn draw(edges: &[f64], counts: &[u64], curve: Option<(&[f64], &[f64])>, log: bool) -> Canvas {
    let (w, h) = (900i64, 540i64);
    let (left, right, top, bottom) = (90i64, 30i64, 20i64, 60i64);
    let (pw, ph) = ((w - left - right) as f64, (h - top - bottom) as f64);
    let mut c = Canvas::new(w as usize, h as usize);
    let (x0, x1) = (edges[0], edges[edges.len() - 1]);
    let tx = |v: f64| -> f64 {
        let f = if log {
            (v.ln() - x0.ln()) / (x1.ln() - x0.ln())
        } else {
            (v - x0) / (x1 - x0)
        };
        left as f64 + f * pw
    };
    let total: u64 = counts.iter().sum();
    // Bar heights: counts, or densities when a curve is drawn over them.
    let heights: Vec<f64> = counts
        .iter()
        .zip(edges.windows(2))
        .map(|(&n, e)| match curve {
            Some(_) if total > 0 => n as f64 / (total as f64 * (e[1] - e[0])),
            Some(_) => 0.0,
            None => n as f64,
        })
        .collect();
    let curve_max = curve.map_or(0.0, |(_, d)| d.iter().cloned().fold(0.0, f64::max));
    let ymax = heights.iter().cloned().fold(curve_max, f64::max);
    let ymax = if ymax > 0.0 { ymax * 1.05 } else { 1.0 };
    let ty = |v: f64| -> f64 { top as f64 + ph - v / ymax * ph };
    // Grid lines and y ticks.
    for k in 0..=5 {
        let v = ymax * k as f64 / 5.0;
        let y = ty(v).round() as i64;
        c.fill(left, y, w - right, y, plot::GREY);
        let lab = plot::label(v);
        c.text(
            left - 8 - Canvas::text_width(&lab),
            y - 5,
            &lab,
            plot::BLACK,
        );
    }
    for (i, &hgt) in heights.iter().enumerate() {
        let (a, b) = (tx(edges[i]).round() as i64, tx(edges[i + 1]).round() as i64);
        if hgt > 0.0 {
            let yt = ty(hgt).round() as i64;
            let base = ty(0.0).round() as i64;
            c.fill(a, yt, b, base, plot::BAR);
            c.fill(a, yt, b, yt, plot::BAR_EDGE);
            c.fill(a, yt, a, base, plot::BAR_EDGE);
            c.fill(b, yt, b, base, plot::BAR_EDGE);
        }
    }
    if let Some((grid, dens)) = curve {
        for (g, d) in grid.windows(2).zip(dens.windows(2)) {
            if g[0] <= 0.0 && log {
                continue;
            }
            c.line((tx(g[0]), ty(d[0])), (tx(g[1]), ty(d[1])), 2, plot::CURVE);
        }
    }
    // Axes and x ticks.
    let base = ty(0.0).round() as i64;
    c.fill(left, top, left + 1, base, plot::BLACK);
    c.fill(left, base, w - right, base + 1, plot::BLACK);
    for k in 0..=5 {
        let f = k as f64 / 5.0;
        let v = if log {
            (x0.ln() + f * (x1.ln() - x0.ln())).exp()
        } else {
            x0 + f * (x1 - x0)
        };
        let x = (left as f64 + f * pw).round() as i64;
        c.fill(x, base, x + 1, base + 6, plot::BLACK);
        let lab = plot::label(v);
        let tw = Canvas::text_width(&lab);
        c.text((x - tw / 2).clamp(0, w - tw), base + 14, &lab, plot::BLACK);
    }
    c
}

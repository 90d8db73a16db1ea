//! The picture of `vaccel bench index --plot`, drawn the way ann-benchmarks
//! draws it: recall@k across, queries per second up on a log scale, one
//! polyline with point markers per index, a square for the exact k-NN; and
//! the peer results it reads from CSV files (`name,param,recall,qps`).
//!
//! The bitmap font knows digits only, so the legend in the picture is
//! numbered swatches and [`print_legend`] prints what each number stands
//! for.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context as _, Result};

use crate::plot::{self, Canvas, Rgb};

/// Width of the picture in pixels.
pub const WIDTH: usize = 900;
/// Height of the picture in pixels.
pub const HEIGHT: usize = 600;
/// Margins around the plot area: left, right (the legend), top, bottom.
const MARGIN: (i64, i64, i64, i64) = (90, 80, 20, 50);
/// Pixels between the plot area's edges and the axes' ends.
const PAD: f64 = 12.0;
/// Vertical pixels per legend entry.
const LEGEND_STEP: i64 = 22;
const LIGHT_GREY: Rgb = [232, 232, 232];

/// The curves' colours, in turn (the exact k-NN is black).
const PALETTE: [Rgb; 9] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [188, 189, 34],
    [23, 190, 207],
];

/// The header every peers file starts with.
const HEADER: [&str; 4] = ["name", "param", "recall", "qps"];

/// Named (recall, queries per second) points from one source.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// What was measured: an index factory string or a peer's index name.
    pub name: String,
    /// Where the points come from: "this run" or a peers file.
    pub source: String,
    /// (recall, queries per second) pairs.
    pub points: Vec<(f64, f64)>,
}

/// A curve with the way it is drawn.
pub struct Series {
    curve: Curve,
    colour: Rgb,
    /// A square marker and no line (the exact k-NN); else dots on a line.
    square: bool,
}

/// The series of the picture in legend order: the index sweep, the exact
/// k-NN point, then the peers' curves, each in its own colour.
pub fn series(index: Curve, exact: Curve, peers: Vec<Curve>) -> Vec<Series> {
    let mut out = vec![
        Series {
            curve: index,
            colour: PALETTE[0],
            square: false,
        },
        Series {
            curve: exact,
            colour: plot::BLACK,
            square: true,
        },
    ];
    for (i, curve) in peers.into_iter().enumerate() {
        out.push(Series {
            curve,
            colour: PALETTE[(i + 1) % PALETTE.len()],
            square: false,
        });
    }
    out
}

/// The curves of a peers CSV file (see [`parse_peers`]).
pub fn read_peers(path: &Path) -> Result<Vec<Curve>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read peers file '{}'", path.display()))?;
    parse_peers(&text, &path.display().to_string())
}

/// The curves of a peers CSV text from `source`: the header
/// `name,param,recall,qps`, then one row per measurement; each distinct
/// name is a curve, in order of first appearance. Errors name `source`
/// and the line.
pub fn parse_peers(text: &str, source: &str) -> Result<Vec<Curve>> {
    let origin = format!("peers file '{source}'");
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let Some((n, head)) = lines.next() else {
        bail!("{origin} is empty: expected the header name,param,recall,qps");
    };
    let head = fields(head.trim_start_matches('\u{feff}'))
        .map_err(|e| anyhow!("{origin} line {n}: {e}"))?;
    ensure!(
        head == HEADER,
        "{origin} line {n}: expected the header name,param,recall,qps, got '{}'",
        head.join(",")
    );
    let mut curves: Vec<Curve> = Vec::new();
    for (n, line) in lines {
        let (name, point) = row(line).map_err(|e| anyhow!("{origin} line {n}: {e}"))?;
        match curves.iter_mut().find(|c| c.name == name) {
            Some(c) => c.points.push(point),
            None => curves.push(Curve {
                name,
                source: source.to_string(),
                points: vec![point],
            }),
        }
    }
    ensure!(!curves.is_empty(), "{origin} has no rows after its header");
    Ok(curves)
}

/// The name and (recall, queries/s) of one data row.
fn row(line: &str) -> Result<(String, (f64, f64)), String> {
    let f = fields(line)?;
    let [name, _param, recall, qps] = &f[..] else {
        return Err(format!(
            "expected 4 fields (name,param,recall,qps), got {}",
            f.len()
        ));
    };
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    let number = |what: &str, s: &str| match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{what} '{s}' is not a finite number")),
    };
    let recall = number("recall", recall)?;
    if !(0.0..=1.0).contains(&recall) {
        return Err(format!("recall {recall} is not in [0, 1]"));
    }
    let qps = number("qps", qps)?;
    if qps <= 0.0 {
        return Err(format!("qps {qps} is not positive"));
    }
    Ok((name.clone(), (recall, qps)))
}

/// The trimmed comma-separated fields of a CSV line; a field in double
/// quotes may hold commas, and `""` for a quote.
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = vec![String::new()];
    let (mut quoted, mut chars) = (false, line.chars().peekable());
    while let Some(c) = chars.next() {
        let field = out.last_mut().expect("a field");
        match (quoted, c) {
            (false, ',') => out.push(String::new()),
            (false, '"') if field.trim().is_empty() => quoted = true,
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            _ => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    Ok(out.iter().map(|f| f.trim().to_string()).collect())
}

/// The axes: recall from `x0` to 1 across, queries per second from
/// `10^y0` to `10^y1` up.
struct Axes {
    x0: f64,
    y0: i32,
    y1: i32,
}

impl Axes {
    /// Axes holding every point: recall from the smallest rounded down to
    /// a tenth, queries per second over whole decades.
    fn fit(series: &[Series]) -> Self {
        let pts = || series.iter().flat_map(|s| s.curve.points.iter());
        let rmin = pts().map(|p| p.0).fold(1.0, f64::min);
        let qmin = pts().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let qmax = pts().map(|p| p.1).fold(0.0, f64::max);
        let (qmin, qmax) = if qmin <= qmax {
            (qmin, qmax)
        } else {
            (1.0, 10.0)
        };
        let y0 = qmin.log10().floor() as i32;
        Axes {
            x0: ((rmin * 10.0 + 1e-9).floor() / 10.0).clamp(0.0, 0.9),
            y0,
            y1: (qmax.log10().ceil() as i32).max(y0 + 1),
        }
    }

    /// The pixel column of recall `r`.
    fn x(&self, r: f64) -> f64 {
        let (left, right, _, _) = MARGIN;
        let span = (WIDTH as i64 - left - right) as f64 - 2.0 * PAD;
        left as f64 + PAD + (r - self.x0) / (1.0 - self.x0) * span
    }

    /// The pixel row of `q` queries per second.
    fn y(&self, q: f64) -> f64 {
        let (_, _, top, bottom) = MARGIN;
        let span = (HEIGHT as i64 - top - bottom) as f64 - 2.0 * PAD;
        let f = (q.log10() - self.y0 as f64) / (self.y1 - self.y0) as f64;
        top as f64 + PAD + (1.0 - f) * span
    }
}

/// The picture of `series` with its numbered legend at the right.
pub fn draw(series: &[Series]) -> Canvas {
    let ax = Axes::fit(series);
    let mut c = Canvas::new(WIDTH, HEIGHT);
    x_ticks(&mut c, &ax);
    y_ticks(&mut c, &ax);
    for s in series {
        draw_series(&mut c, &ax, s);
    }
    frame(&mut c);
    for (i, s) in series.iter().enumerate() {
        let (x, y) = (
            WIDTH as i64 - MARGIN.1 + 12,
            MARGIN.2 + 10 + i as i64 * LEGEND_STEP,
        );
        swatch(&mut c, (x as f64, y as f64 + 4.0), s);
        c.text(x + 30, y, &(i + 1).to_string(), plot::BLACK);
    }
    c
}

/// One series: its points sorted by recall, joined by a line, with markers.
fn draw_series(c: &mut Canvas, ax: &Axes, s: &Series) {
    let mut pts: Vec<(f64, f64)> = s
        .curve
        .points
        .iter()
        .map(|&(r, q)| (ax.x(r), ax.y(q)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    if !s.square {
        for w in pts.windows(2) {
            c.line(
                (w[0].0 - 0.5, w[0].1 - 0.5),
                (w[1].0 - 0.5, w[1].1 - 0.5),
                2,
                s.colour,
            );
        }
    }
    for &p in &pts {
        marker(c, p, s);
    }
}

/// The marker of `s` centred at `p`.
fn marker(c: &mut Canvas, (x, y): (f64, f64), s: &Series) {
    if s.square {
        let (x, y) = (x.round() as i64, y.round() as i64);
        c.fill(x - 4, y - 4, x + 4, y + 4, s.colour);
    } else {
        c.disc((x, y), 3.5, s.colour);
    }
}

/// A legend swatch: a short line (unless square) with the marker, its
/// left end at `(x, y)`.
fn swatch(c: &mut Canvas, (x, y): (f64, f64), s: &Series) {
    if !s.square {
        c.line((x, y - 0.5), (x + 20.0, y - 0.5), 2, s.colour);
    }
    marker(c, (x + 10.0, y), s);
}

/// Grid lines and labels of the recall axis: every tenth, or every
/// twentieth over a range of 0.3 or less.
fn x_ticks(c: &mut Canvas, ax: &Axes) {
    let (_, _, top, bottom) = MARGIN;
    let base = HEIGHT as i64 - bottom;
    let step = if 1.0 - ax.x0 <= 0.3 + 1e-9 { 0.05 } else { 0.1 };
    let ticks = ((1.0 - ax.x0) / step).round() as i64;
    for k in 0..=ticks {
        let v = ax.x0 + k as f64 * step;
        let x = ax.x(v).round() as i64;
        c.fill(x, top, x, base, plot::GREY);
        c.fill(x, base, x + 1, base + 6, plot::BLACK);
        let lab = plot::label((v * 100.0).round() / 100.0);
        c.text(
            x - Canvas::text_width(&lab) / 2,
            base + 12,
            &lab,
            plot::BLACK,
        );
    }
}

/// Grid lines, ticks and labels of the log queries-per-second axis:
/// every decade labelled; 2 and 5 times a decade too over 2 decades or
/// fewer.
fn y_ticks(c: &mut Canvas, ax: &Axes) {
    let (left, right, _, _) = MARGIN;
    let edge = WIDTH as i64 - right;
    let few = ax.y1 - ax.y0 <= 2;
    for e in ax.y0..=ax.y1 {
        for m in 1..10 {
            let v = m as f64 * 10f64.powi(e);
            if e == ax.y1 && m > 1 {
                break;
            }
            let y = ax.y(v).round() as i64;
            let labelled = m == 1 || (few && (m == 2 || m == 5));
            if labelled {
                let grid = if m == 1 { plot::GREY } else { LIGHT_GREY };
                c.fill(left, y, edge, y, grid);
                let lab = qps_label(m, e);
                c.text(
                    left - 10 - Canvas::text_width(&lab),
                    y - 5,
                    &lab,
                    plot::BLACK,
                );
            }
            let len = if m == 1 { 6 } else { 3 };
            c.fill(left - len, y, left - 1, y, plot::BLACK);
        }
    }
}

/// `m * 10^e` as the font can write it: whole numbers below a million,
/// else `me<e>`.
fn qps_label(m: u32, e: i32) -> String {
    if (0..6).contains(&e) {
        (m as u64 * 10u64.pow(e as u32)).to_string()
    } else {
        format!("{m}e{e}")
    }
}

/// The frame of the plot area.
fn frame(c: &mut Canvas) {
    let (left, right, top, bottom) = MARGIN;
    let (r, b) = (WIDTH as i64 - right, HEIGHT as i64 - bottom);
    c.fill(left - 1, top, left, b, plot::BLACK);
    c.fill(left, b, r, b + 1, plot::BLACK);
    c.fill(left, top, r, top, plot::BLACK);
    c.fill(r, top, r, b, plot::BLACK);
}

/// Prints what the picture's legend numbers stand for, with the axes'
/// ranges, as a Markdown table.
pub fn print_legend(out: &mut impl Write, series: &[Series], k: usize) -> Result<()> {
    let ax = Axes::fit(series);
    writeln!(
        out,
        "\nplot: recall@{k} across from {} to 1, queries/s up from {} to {} (log)",
        plot::label(ax.x0),
        qps_label(1, ax.y0),
        qps_label(1, ax.y1)
    )?;
    writeln!(out, "| curve | name | from | points |")?;
    writeln!(out, "|---:|---|---|---:|")?;
    for (i, s) in series.iter().enumerate() {
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            i + 1,
            s.curve.name,
            s.curve.source,
            s.curve.points.len()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_csv_gives_a_curve_per_name() {
        let text = "name,param,recall,qps\r\nA,1,0.5,1000\n\n\"B,x\",ef=16,0.9,200\nA,2,0.8,500\n";
        let c = parse_peers(text, "p").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "A");
        assert_eq!(c[0].points, vec![(0.5, 1000.0), (0.8, 500.0)]);
        assert_eq!(c[1].name, "B,x");
    }

    #[test]
    fn bad_peers_csv_names_the_line() {
        for (text, want) in [
            ("", "p' is empty"),
            ("name,recall,qps\n", "p' line 1: expected the header"),
            ("name,param,recall,qps\n", "p' has no rows"),
            (
                "name,param,recall,qps\nA,1,0.5\n",
                "p' line 2: expected 4 fields",
            ),
            (
                "name,param,recall,qps\n\nA,1,x,5\n",
                "p' line 3: recall 'x'",
            ),
            (
                "name,param,recall,qps\nA,1,1.5,5\n",
                "p' line 2: recall 1.5 is not in",
            ),
            (
                "name,param,recall,qps\nA,1,0.5,0\n",
                "p' line 2: qps 0 is not positive",
            ),
            (
                "name,param,recall,qps\n\"A,1,0.5,3\n",
                "p' line 2: a quoted field",
            ),
            (
                "name,param,recall,qps\n,1,0.5,3\n",
                "p' line 2: the name is empty",
            ),
        ] {
            let e = parse_peers(text, "p").unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("peers file '{want}")),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn axes_round_to_tenths_and_decades() {
        let curve = |points| Curve {
            name: "c".into(),
            source: "s".into(),
            points,
        };
        let s = series(
            curve(vec![(0.42, 2500.0), (0.97, 900.0)]),
            curve(vec![(1.0, 150.0)]),
            vec![],
        );
        let ax = Axes::fit(&s);
        assert_eq!((ax.x0, ax.y0, ax.y1), (0.4, 2, 4));
        assert!(ax.x(0.4) < ax.x(1.0) && ax.y(1000.0) < ax.y(100.0));
        assert_eq!(qps_label(5, 3), "5000");
        assert_eq!(qps_label(1, 6), "1e6");
        let only_exact = series(curve(vec![(1.0, 10.0)]), curve(vec![(1.0, 10.0)]), vec![]);
        let ax = Axes::fit(&only_exact);
        assert_eq!((ax.x0, ax.y0, ax.y1), (0.9, 1, 2));
    }
}

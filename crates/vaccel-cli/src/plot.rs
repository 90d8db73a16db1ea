//! A small raster canvas for `vaccel hist --png` and `vaccel bench index
//! --plot`: filled rectangles, discs, lines, a 3 x 5 bitmap font for axis
//! labels, and PNG encoding (the `png` crate encodes; every pixel is drawn
//! here).

use std::io::Write;

use anyhow::{Context as _, Result};

/// An RGB colour.
pub type Rgb = [u8; 3];

pub const WHITE: Rgb = [255, 255, 255];
pub const BLACK: Rgb = [0, 0, 0];
pub const GREY: Rgb = [200, 200, 200];
pub const BAR: Rgb = [70, 130, 180];
pub const BAR_EDGE: Rgb = [40, 80, 120];
pub const CURVE: Rgb = [210, 40, 40];

/// An RGB picture, row-major from the top-left corner.
pub struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

/// Rows of the 3 x 5 glyphs (3 bits per row, most significant bit left).
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 2, 2],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        '+' => [0, 2, 7, 2, 0],
        'e' => [0, 7, 7, 4, 7],
        ' ' => [0, 0, 0, 0, 0],
        _ => return None,
    })
}

/// Pixels per font dot.
const DOT: usize = 2;

impl Canvas {
    /// A white picture.
    pub fn new(width: usize, height: usize) -> Self {
        Canvas {
            width,
            height,
            pixels: WHITE.repeat(width * height),
        }
    }

    /// Sets one pixel (ignored outside the picture).
    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let k = 3 * (y as usize * self.width + x as usize);
            self.pixels[k..k + 3].copy_from_slice(&c);
        }
    }

    /// Fills the rectangle `[x0, x1] x [y0, y1]` (corners in any order).
    pub fn fill(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.set(x, y, c);
            }
        }
    }

    /// A filled disc of radius `r` centred at `(x, y)`.
    pub fn disc(&mut self, (x, y): (f64, f64), r: f64, c: Rgb) {
        let (cx, cy, ri) = (x.round() as i64, y.round() as i64, r.ceil() as i64);
        for dy in -ri..=ri {
            for dx in -ri..=ri {
                if ((dx * dx + dy * dy) as f64) <= r * r {
                    self.set(cx + dx, cy + dy, c);
                }
            }
        }
    }

    /// A line from `(x0, y0)` to `(x1, y1)`, `thick` pixels wide.
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), thick: i64, c: Rgb) {
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as i64;
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            let (x, y) = (x.round() as i64, y.round() as i64);
            self.fill(x, y, x + thick - 1, y + thick - 1, c);
        }
    }

    /// Width in pixels of `text` in the bitmap font.
    pub fn text_width(text: &str) -> i64 {
        (text.chars().count() * 4 * DOT) as i64
    }

    /// Writes `text` with its top-left corner at `(x, y)`; characters
    /// without a glyph are skipped.
    pub fn text(&mut self, x: i64, y: i64, text: &str, c: Rgb) {
        for (k, ch) in text.chars().enumerate() {
            let Some(g) = glyph(ch) else { continue };
            let left = x + (k * 4 * DOT) as i64;
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        let (px, py) = (left + (col * DOT) as i64, y + (row * DOT) as i64);
                        self.fill(px, py, px + DOT as i64 - 1, py + DOT as i64 - 1, c);
                    }
                }
            }
        }
    }

    /// Encodes the picture as an 8-bit RGB PNG.
    pub fn write_png(&self, w: impl Write) -> Result<()> {
        let mut enc = png::Encoder::new(w, self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().context("cannot write the PNG header")?;
        writer
            .write_image_data(&self.pixels)
            .context("cannot write the PNG data")?;
        writer.finish().context("cannot finish the PNG")?;
        Ok(())
    }
}

/// A short label for an axis value (up to 4 significant digits).
pub fn label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    let s = if (1e-3..1e5).contains(&a) {
        let digits = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{v:.2e}")
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_and_drawable() {
        assert_eq!(label(0.0), "0");
        assert_eq!(label(1.5), "1.5");
        assert_eq!(label(-2.25), "-2.25");
        assert_eq!(label(1000.0), "1000");
        assert_eq!(label(0.012345), "0.01235");
        assert_eq!(label(1e-7), "1.00e-7");
        for v in [0.0, 1.5, -3.25e12, 7e-9, 123.456] {
            assert!(label(v).chars().all(|c| glyph(c).is_some()), "{}", label(v));
        }
    }

    #[test]
    fn png_round_trip_header() {
        let mut c = Canvas::new(4, 3);
        c.fill(0, 0, 1, 1, BLACK);
        let mut bytes = Vec::new();
        c.write_png(&mut bytes).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }
}

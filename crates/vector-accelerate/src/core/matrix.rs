//! Host matrices (dense `f32` and bit-packed binary), their views, and the
//! row views.

use crate::core::error::{Error, Result};

/// A borrowed, validated row-major `f32` matrix `[rows x dim]`.
///
/// ```
/// use vector_accelerate::MatrixView;
/// let data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let m = MatrixView::new(&data, 3).unwrap();
/// assert_eq!((m.rows(), m.dim()), (2, 3));
/// assert_eq!(m.row(1), &[4.0, 5.0, 6.0]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MatrixView<'a> {
    data: &'a [f32],
    rows: usize,
    dim: usize,
}

impl<'a> MatrixView<'a> {
    /// Views `data` as rows of `dim` elements. Fails when `dim == 0` or the
    /// length is not a multiple of `dim`. Zero rows are allowed here;
    /// operations that need rows reject them.
    pub fn new(data: &'a [f32], dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::ZeroDimension { what: "matrix" });
        }
        if !data.len().is_multiple_of(dim) {
            return Err(Error::RaggedData {
                what: "matrix",
                len: data.len(),
                dim,
            });
        }
        Ok(Self {
            data,
            rows: data.len() / dim,
            dim,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Row length.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The whole row-major buffer.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
    /// Rows `start..end` as a new view.
    pub fn slice_rows(&self, start: usize, end: usize) -> MatrixView<'a> {
        MatrixView {
            data: &self.data[start * self.dim..end * self.dim],
            rows: end - start,
            dim: self.dim,
        }
    }
}

/// An owned row-major `f32` matrix `[rows x dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    data: Vec<f32>,
    rows: usize,
    dim: usize,
}

impl Matrix {
    /// Takes ownership of `data` as rows of `dim` elements (validated as in [`MatrixView::new`]).
    pub fn new(data: Vec<f32>, dim: usize) -> Result<Self> {
        let rows = MatrixView::new(&data, dim)?.rows();
        Ok(Self { data, rows, dim })
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Row length.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Borrow as a view.
    pub fn view(&self) -> MatrixView<'_> {
        MatrixView {
            data: &self.data,
            rows: self.rows,
            dim: self.dim,
        }
    }
    /// The row-major buffer.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
    /// The row-major buffer, mutable (the shape stays fixed).
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
    /// Element `(r, c)`.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.dim + c]
    }
    /// The buffer, consuming the matrix.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// Number of 64-bit words that hold `bits` bits.
pub fn words_for_bits(bits: usize) -> usize {
    bits.div_ceil(64)
}

/// A borrowed matrix of bit-packed binary vectors: each row is `bits` bits in
/// `words_for_bits(bits)` little-endian `u64` words (bit `i` in word `i / 64`,
/// bit `i % 64`, least significant first; padding bits must be 0).
#[derive(Debug, Clone, Copy)]
pub struct BinaryView<'a> {
    words: &'a [u64],
    rows: usize,
    bits: usize,
}

impl<'a> BinaryView<'a> {
    /// Views `words` as rows of `bits` bits. Fails when `bits == 0`, the
    /// length is not a whole number of rows, or a padding bit is set.
    pub fn new(words: &'a [u64], bits: usize) -> Result<Self> {
        if bits == 0 {
            return Err(Error::ZeroDimension {
                what: "binary matrix",
            });
        }
        let wpr = words_for_bits(bits);
        if !words.len().is_multiple_of(wpr) {
            return Err(Error::RaggedData {
                what: "binary matrix (u64 words)",
                len: words.len(),
                dim: wpr,
            });
        }
        let rows = words.len() / wpr;
        if !bits.is_multiple_of(64) {
            let mask = !0u64 << (bits % 64);
            if let Some(r) = (0..rows).find(|r| words[r * wpr + wpr - 1] & mask != 0) {
                return Err(Error::invalid(
                    "binary row padding",
                    format!("row {r}"),
                    format!("bits past bit {bits} must be 0"),
                ));
            }
        }
        Ok(Self { words, rows, bits })
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Bits per row.
    pub fn bits(&self) -> usize {
        self.bits
    }
    /// Words per row.
    pub fn words_per_row(&self) -> usize {
        words_for_bits(self.bits)
    }
    /// All words.
    pub fn as_words(&self) -> &'a [u64] {
        self.words
    }
    /// Row `i`'s words.
    pub fn row(&self, i: usize) -> &'a [u64] {
        let w = self.words_per_row();
        &self.words[i * w..(i + 1) * w]
    }
    /// Rows `start..end` as a new view.
    pub fn slice_rows(&self, start: usize, end: usize) -> BinaryView<'a> {
        let w = self.words_per_row();
        BinaryView {
            words: &self.words[start * w..end * w],
            rows: end - start,
            bits: self.bits,
        }
    }
}

/// An owned matrix of bit-packed binary vectors (layout as [`BinaryView`]).
///
/// ```
/// use vector_accelerate::BinaryMatrix;
/// // two 10-bit vectors, packed the way `numpy.packbits(bitorder="little")` does
/// let m = BinaryMatrix::from_packed_bytes(&[0b0000_0101, 0b01, 0xff, 0b11], 2, 10).unwrap();
/// assert_eq!(m.row(0), &[0b01_0000_0101u64]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryMatrix {
    words: Vec<u64>,
    rows: usize,
    bits: usize,
}

impl BinaryMatrix {
    /// Takes ownership of packed words (validated as in [`BinaryView::new`]).
    pub fn new(words: Vec<u64>, bits: usize) -> Result<Self> {
        let rows = BinaryView::new(&words, bits)?.rows();
        Ok(Self { words, rows, bits })
    }

    /// Packs rows given as bytes, `bytes_per_row = ceil(bits / 8)` bytes per
    /// row, bit `i` of a row in byte `i / 8` at bit `i % 8` (NumPy's
    /// `packbits(bitorder="little")`).
    pub fn from_packed_bytes(bytes: &[u8], rows: usize, bits: usize) -> Result<Self> {
        if bits == 0 {
            return Err(Error::ZeroDimension {
                what: "binary matrix",
            });
        }
        let bpr = bits.div_ceil(8);
        if bytes.len() != rows * bpr {
            return Err(Error::RaggedData {
                what: "packed binary bytes",
                len: bytes.len(),
                dim: bpr,
            });
        }
        let wpr = words_for_bits(bits);
        let mut words = vec![0u64; rows * wpr];
        for r in 0..rows {
            for (j, &b) in bytes[r * bpr..(r + 1) * bpr].iter().enumerate() {
                words[r * wpr + j / 8] |= (b as u64) << (8 * (j % 8));
            }
        }
        Self::new(words, bits)
    }

    /// The rows as bytes in the layout [`from_packed_bytes`](Self::from_packed_bytes)
    /// reads: `ceil(bits / 8)` bytes per row, little-endian bit order.
    pub fn to_packed_bytes(&self) -> Vec<u8> {
        let bpr = self.bits.div_ceil(8);
        let wpr = words_for_bits(self.bits);
        let mut out = Vec::with_capacity(self.rows * bpr);
        for row in self.words.chunks_exact(wpr) {
            out.extend(row.iter().flat_map(|w| w.to_le_bytes()).take(bpr));
        }
        out
    }

    /// Binarises `x > threshold` per element of an `f32` matrix.
    pub fn from_f32_threshold(m: MatrixView<'_>, threshold: f32) -> Self {
        let bits = m.dim();
        let wpr = words_for_bits(bits);
        let mut words = vec![0u64; m.rows() * wpr];
        for r in 0..m.rows() {
            for (i, &x) in m.row(r).iter().enumerate() {
                if x > threshold {
                    words[r * wpr + i / 64] |= 1u64 << (i % 64);
                }
            }
        }
        Self {
            words,
            rows: m.rows(),
            bits,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Bits per row.
    pub fn bits(&self) -> usize {
        self.bits
    }
    /// The packed words, consuming the matrix.
    pub fn into_words(self) -> Vec<u64> {
        self.words
    }
    /// Borrow as a view.
    pub fn view(&self) -> BinaryView<'_> {
        BinaryView {
            words: &self.words,
            rows: self.rows,
            bits: self.bits,
        }
    }
    /// Row `i`'s words.
    pub fn row(&self, i: usize) -> &[u64] {
        let w = words_for_bits(self.bits);
        &self.words[i * w..(i + 1) * w]
    }
}

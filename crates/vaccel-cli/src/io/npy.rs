//! NumPy `.npy` files (format versions 1.0, 2.0 and 3.0): reading 2-D
//! float arrays (`float32`, and `float64` or `float16` converted to
//! `float32`), `uint8` arrays (bit-packed binary rows, or raw code bytes)
//! and integer arrays of ids (any width, signed or not, widened to
//! `int64`), in C or Fortran order, little- or big-endian; writing 2-D
//! `int64`, `float32` and `uint8` arrays in C order.
//!
//! Conversions: `float64` rounds to the nearest `float32` (ties to even)
//! and a magnitude beyond the `float32` range becomes an infinity of the
//! same sign, as NumPy's `a.astype(numpy.float32)` does; `float16` converts
//! exactly; NaN stays NaN.
//!
//! A Fortran-order (column-major) array is transposed while it is read, a
//! block of columns at a time, into the row-major layout the library uses:
//! the rows are held once, plus a buffer of at most 16 MiB of decoded
//! columns. A truncated file is refused from its size before any data is
//! read.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context as _, Result};
use vector_accelerate::half::f16;
use vector_accelerate::{BinaryMatrix, Matrix};

use super::literal::{self, Literal};
use super::source::{
    check_unsigned_ids, open_input, read_decoded, try_alloc, widen_int, Data, IdMatrix, CHUNK_BYTES,
};

/// The six bytes every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// What the reader accepts, for error messages.
const ACCEPTED: &str = "accepted: '<f4' (float32), '<f8' (float64) or '<f2' (float16), \
                        also big-endian ('>f4', ...), converted to float32; or '|u1' (uint8: \
                        bit-packed binary rows, as numpy.packbits(..., bitorder='little') \
                        writes them)";

/// Most bytes of decoded columns held while a Fortran-order array is
/// transposed (at least one column, at most [`COLUMN_BLOCK`] columns).
const COLUMN_BLOCK_BYTES: usize = 16 << 20;

/// Most columns transposed per block: 16 `float32` values fill one 64-byte
/// line of each row written.
const COLUMN_BLOCK: usize = 16;

/// Element types the reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    /// `float16`, converted to `float32`.
    F16,
    /// `float32`.
    F32,
    /// `float64`, rounded to `float32`.
    F64,
    /// `uint8`, read as bit-packed binary rows or raw bytes.
    U8,
    /// An integer of `size` bytes, read only as ids.
    Int { size: usize, signed: bool },
}

impl Dtype {
    /// Bytes per element in the file.
    fn size(self) -> usize {
        match self {
            Dtype::F16 => 2,
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::U8 => 1,
            Dtype::Int { size, .. } => size,
        }
    }
}

/// The parts of a header the reader uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    /// The dtype string as the file spells it, for messages.
    descr: String,
    dtype: Dtype,
    /// Whether multi-byte elements are stored big-endian.
    big_endian: bool,
    /// Whether the array is stored in Fortran (column-major) order.
    fortran: bool,
    /// The full shape (the 2-D view below flattens all but the last axis).
    shape: Vec<usize>,
    rows: usize,
    cols: usize,
    /// Bytes from the start of the file to the first data byte.
    data_offset: u64,
}

/// The elements of a 2-D array, as read.
pub enum Elements {
    /// Float values (`'<f4'`, or `'<f8'` / `'<f2'` converted), row-major.
    F32(Vec<f32>),
    /// `'|u1'` bytes, row-major.
    U8(Vec<u8>),
}

/// Reads a 2-D `.npy` array: floats as dense `float32` rows, `'|u1'` as
/// bit-packed binary rows of `8 * columns` bits.
pub fn read(path: &Path) -> Result<Data> {
    let (rows, cols, elements) = read_elements(path)?;
    match elements {
        Elements::F32(data) => Ok(Data::F32(Matrix::new(data, cols)?)),
        Elements::U8(bytes) => Ok(Data::Binary(BinaryMatrix::from_packed_bytes(
            &bytes,
            rows,
            8 * cols,
        )?)),
    }
}

/// Reads a 2-D `'|u1'` array as raw row-major bytes: `(rows, columns,
/// bytes)`.
pub fn read_u8(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    let (mut file, header) = open(path, false, false)?;
    if header.dtype != Dtype::U8 {
        bail!(
            "expected a uint8 ('|u1') array, found '{}'{} ({}, {})",
            header.descr,
            described(&header.descr),
            header.rows,
            header.cols
        );
    }
    match load(&mut file, &header)? {
        Elements::U8(bytes) => Ok((header.rows, header.cols, bytes)),
        Elements::F32(_) => unreachable!("a uint8 header loads bytes"),
    }
}

/// Reads the header and all elements of a 2-D array: `(rows, columns,
/// elements)`.
pub fn read_elements(path: &Path) -> Result<(usize, usize, Elements)> {
    let (mut file, header) = open(path, false, false)?;
    Ok((header.rows, header.cols, load(&mut file, &header)?))
}

/// Reads an integer array (`int8` to `int64`, `uint8` to `uint64`, either
/// byte order, any shape) as ids; `uint64` values above
/// the largest `int64` are refused.
pub fn read_ids(path: &Path) -> Result<IdMatrix> {
    let (mut file, h) = open(path, true, true)?;
    Ok(IdMatrix {
        rows: h.rows,
        dim: h.cols,
        ids: load_ids(&mut file, &h)?,
    })
}

/// Reads the data of an opened integer array, widened to `int64`, in C
/// order.
fn load_ids(r: &mut impl Read, h: &Header) -> Result<Vec<i64>> {
    let Dtype::Int { size, signed } = h.dtype else {
        unreachable!("an ids header has an integer dtype")
    };
    let be = h.big_endian;
    let ids = match size {
        1 => read_array(r, h, |b: [u8; 1]| widen_int(b, be, signed))?,
        2 => read_array(r, h, |b: [u8; 2]| widen_int(b, be, signed))?,
        4 => read_array(r, h, |b: [u8; 4]| widen_int(b, be, signed))?,
        _ => read_array(r, h, |b: [u8; 8]| widen_int(b, be, signed))?,
    };
    if size == 8 && !signed {
        check_unsigned_ids(&ids)?;
    }
    Ok(ids)
}

/// Every float element of an array of any shape (1-D, 2-D or more), in C
/// order, for operations on all values (histograms).
pub fn read_values(path: &Path) -> Result<Vec<f32>> {
    Ok(read_floats_any_shape(path)?.2)
}

/// A float array as a table of observations (rows) by variables
/// (columns): 2-D arrays as they are, higher ones as `(elements / last,
/// last)` in C order, and a 1-D array (or a single row) as one column.
pub fn read_table(path: &Path) -> Result<Matrix> {
    match read_floats_any_shape(path)? {
        (1, _, v) => Ok(Matrix::new(v, 1)?),
        (_, cols, v) => Ok(Matrix::new(v, cols.max(1))?),
    }
}

/// A float array of any shape as `(elements / last, last, values)`.
fn read_floats_any_shape(path: &Path) -> Result<(usize, usize, Vec<f32>)> {
    let (mut file, header) = open(path, true, false)?;
    if header.dtype == Dtype::U8 {
        bail!("expected a float array ('<f4', '<f8' or '<f2'), found uint8 ('|u1')");
    }
    match load(&mut file, &header)? {
        Elements::F32(v) => Ok((header.rows, header.cols, v)),
        Elements::U8(_) => unreachable!("a float header loads floats"),
    }
}

/// Opens `path`, reads its header (with `ids`, of an integer array) and
/// checks the size of the data that follows; returns the file at the first
/// data byte.
fn open(path: &Path, any_shape: bool, ids: bool) -> Result<(std::fs::File, Header)> {
    let (mut file, file_len) = open_input(path)?;
    let header = read_header(&mut file, file_len, any_shape, ids)?;
    check_size(&header, file_len)?;
    Ok((file, header))
}

/// Checks that the data after the header has exactly the array's size.
fn check_size(header: &Header, file_len: u64) -> Result<()> {
    let (rows, cols) = (header.rows, header.cols);
    let size = header.dtype.size();
    let expected = rows
        .checked_mul(cols)
        .and_then(|c| c.checked_mul(size))
        .ok_or_else(|| anyhow!("shape ({rows}, {cols}) is too large"))? as u64;
    let found = file_len - header.data_offset;
    if found < expected {
        bail!(
            "truncated file: expected {expected} bytes of data for shape ({rows}, {cols}), \
             found {found}"
        );
    }
    if found > expected {
        bail!(
            "file has {} unexpected bytes after the data of shape ({rows}, {cols})",
            found - expected
        );
    }
    Ok(())
}

/// Reads the data of an opened array, converted to `float32` (floats) or
/// as bytes (`uint8`), in C order.
fn load(r: &mut impl Read, h: &Header) -> Result<Elements> {
    let be = h.big_endian;
    Ok(match h.dtype {
        Dtype::U8 => Elements::U8(read_array(r, h, |b: [u8; 1]| b[0])?),
        Dtype::F32 if be => Elements::F32(read_array(r, h, f32::from_be_bytes)?),
        Dtype::F32 => Elements::F32(read_array(r, h, f32::from_le_bytes)?),
        // `as` rounds to nearest, ties to even, and overflows to infinity.
        Dtype::F64 if be => Elements::F32(read_array(r, h, |b| f64::from_be_bytes(b) as f32)?),
        Dtype::F64 => Elements::F32(read_array(r, h, |b| f64::from_le_bytes(b) as f32)?),
        Dtype::F16 if be => Elements::F32(read_array(r, h, |b| f16::from_be_bytes(b).to_f32())?),
        Dtype::F16 => Elements::F32(read_array(r, h, |b| f16::from_le_bytes(b).to_f32())?),
        Dtype::Int { .. } => unreachable!("integer dtypes are parsed only for ids"),
    })
}

/// Reads the `rows x cols` elements of `h` from `r`, each decoded from its
/// `N` bytes, into a row-major vector.
fn read_array<T: Copy + Default, const N: usize>(
    r: &mut impl Read,
    h: &Header,
    decode: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    let count = h.rows * h.cols;
    let mut out = try_alloc::<T>(count)?;
    // One axis longer than 1 at most: both orders are the same sequence.
    if h.fortran && h.shape.iter().filter(|&&d| d > 1).count() > 1 {
        out.resize(count, T::default());
        read_columns(r, h, &decode, &mut out)?;
    } else {
        read_decoded(r, count, &decode, &mut out)?;
    }
    Ok(out)
}

/// Reads a Fortran-order array into the row-major `out` (already of full
/// length): a block of whole columns (the last axis) at a time, each
/// scattered to its place in every row. Within a column the file runs
/// over the other axes first-fastest, the rows of `out` last-fastest.
fn read_columns<T: Copy + Default, const N: usize>(
    r: &mut impl Read,
    h: &Header,
    decode: &impl Fn([u8; N]) -> T,
    out: &mut [T],
) -> Result<()> {
    let (rows, cols) = (h.rows, h.cols);
    let block = (COLUMN_BLOCK_BYTES / (rows * std::mem::size_of::<T>()).max(1))
        .clamp(1, COLUMN_BLOCK)
        .min(cols);
    let mut buf = try_alloc::<T>(block * rows)?;
    let row_axes = &h.shape[..h.shape.len() - 1];
    for c0 in (0..cols).step_by(block) {
        let width = block.min(cols - c0);
        buf.clear();
        read_decoded(r, width * rows, decode, &mut buf)?;
        for (row, src) in out.chunks_exact_mut(cols).zip(fortran_offsets(row_axes)) {
            for (c, v) in row[c0..c0 + width].iter_mut().enumerate() {
                *v = buf[c * rows + src];
            }
        }
    }
    Ok(())
}

/// For each index of an array of shape `dims` in C order (last axis
/// fastest), its offset in Fortran order (first axis fastest).
fn fortran_offsets(dims: &[usize]) -> impl Iterator<Item = usize> + '_ {
    let strides: Vec<usize> = dims
        .iter()
        .scan(1usize, |s, &d| {
            let stride = *s;
            *s *= d;
            Some(stride)
        })
        .collect();
    let total: usize = dims.iter().product();
    let mut index = vec![0usize; dims.len()];
    let mut offset = 0usize;
    (0..total).map(move |_| {
        let current = offset;
        // Odometer step, last axis first.
        for a in (0..dims.len()).rev() {
            index[a] += 1;
            offset += strides[a];
            if index[a] < dims[a] {
                break;
            }
            offset -= dims[a] * strides[a];
            index[a] = 0;
        }
        current
    })
}

/// Reads and checks the magic, version and header dict.
fn read_header(r: &mut impl Read, file_len: u64, any_shape: bool, ids: bool) -> Result<Header> {
    let mut start = [0u8; 8];
    if file_len < 8 {
        bail!("not an npy file (only {file_len} bytes, too short for the npy magic and version)");
    }
    r.read_exact(&mut start).context("read failed")?;
    if &start[..6] != MAGIC {
        bail!("not an npy file (bad magic bytes; an npy file starts with \\x93NUMPY)");
    }
    let (major, minor) = (start[6], start[7]);
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => bail!("unsupported npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"),
    };
    let mut len_buf = [0u8; 4];
    let prefix = 8 + len_bytes as u64;
    if file_len < prefix {
        bail!("truncated file: the npy header length is missing");
    }
    r.read_exact(&mut len_buf[..len_bytes])
        .context("read failed")?;
    let header_len = u32::from_le_bytes(len_buf) as u64;
    if file_len < prefix + header_len {
        bail!(
            "truncated file: the header needs {header_len} bytes, found {}",
            file_len - prefix
        );
    }
    let mut raw = vec![0u8; header_len as usize];
    r.read_exact(&mut raw).context("read failed")?;
    let text = if major == 3 {
        String::from_utf8(raw).map_err(|_| anyhow!("npy 3.0 header is not valid UTF-8"))?
    } else {
        // Versions 1.0 and 2.0 use Latin-1.
        raw.iter().map(|&b| b as char).collect()
    };
    let dict = literal::parse(&text).context("malformed npy header")?;
    let mut header = parse_dict(&dict, any_shape, ids)?;
    header.data_offset = prefix + header_len;
    Ok(header)
}

/// Interprets the header dict: dtype (with `ids`, an integer one), memory
/// order and a 2-D shape (with `any_shape`, any shape of at least one
/// dimension, read as `(elements / last, last)`).
fn parse_dict(dict: &Literal, any_shape: bool, ids: bool) -> Result<Header> {
    if !matches!(dict, Literal::Dict(_)) {
        bail!("malformed npy header: expected a dict, found {dict}");
    }
    let field = |key: &str| {
        dict.get(key)
            .ok_or_else(|| anyhow!("malformed npy header: no '{key}' entry"))
    };
    let (descr, dtype, big_endian) = match field("descr")? {
        Literal::Str(descr) => {
            let (dtype, big_endian) = if ids {
                parse_int_descr(descr)?
            } else {
                parse_descr(descr)?
            };
            (descr.clone(), dtype, big_endian)
        }
        other => bail!("unsupported dtype {other} (a structured dtype); {ACCEPTED}"),
    };
    let fortran = match field("fortran_order")? {
        Literal::Bool(b) => *b,
        other => bail!("malformed npy header: fortran_order is {other}"),
    };
    let shape = match field("shape")? {
        Literal::Tuple(items) => items
            .iter()
            .map(|d| match d {
                Literal::Int(n) => {
                    usize::try_from(*n).map_err(|_| anyhow!("dimension {n} is too large"))
                }
                other => bail!("malformed npy header: shape entry {other}"),
            })
            .collect::<Result<Vec<_>>>()?,
        other => bail!("malformed npy header: shape is {other}"),
    };
    let shape_text = field("shape")?.to_string();
    let (rows, cols) = match shape[..] {
        [rows, cols] => (rows, cols),
        [.., last] if any_shape => {
            let all = shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| anyhow!("shape {shape_text} is too large"))?;
            (all.checked_div(last).unwrap_or(0), last)
        }
        _ if any_shape => bail!("expected an array of at least one dimension, found a scalar"),
        _ => bail!(
            "expected a 2-D array (rows, dim), found shape {shape_text} ({}-D)",
            shape.len()
        ),
    };
    if rows == 0 {
        bail!("the array has zero rows (shape {shape_text})");
    }
    if cols == 0 {
        bail!("the array has zero columns (shape {shape_text})");
    }
    Ok(Header {
        descr,
        dtype,
        big_endian,
        fortran,
        shape,
        rows,
        cols,
        data_offset: 0,
    })
}

/// Maps a dtype string to a supported element type and whether it is
/// big-endian, or says why not.
fn parse_descr(descr: &str) -> Result<(Dtype, bool)> {
    let (order, kind) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let dtype = match kind {
        "f2" => Some(Dtype::F16),
        "f4" => Some(Dtype::F32),
        "f8" => Some(Dtype::F64),
        "u1" => Some(Dtype::U8),
        _ => None,
    };
    match (order, dtype) {
        (_, Some(Dtype::U8)) => Ok((Dtype::U8, false)),
        ('<', Some(d)) => Ok((d, false)),
        ('>', Some(d)) => Ok((d, true)),
        ('=', Some(d)) => Ok((d, cfg!(target_endian = "big"))),
        ('>', None) => bail!(
            "unsupported big-endian dtype '{descr}'{}; {ACCEPTED}",
            described(kind)
        ),
        _ => bail!("unsupported dtype '{descr}'{}; {ACCEPTED}", described(kind)),
    }
}

/// Maps an integer dtype string to an element type and whether it is
/// big-endian, or says why not.
fn parse_int_descr(descr: &str) -> Result<(Dtype, bool)> {
    let (order, kind) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let (signed, size) = match kind.as_bytes() {
        [k @ (b'i' | b'u'), n @ (b'1' | b'2' | b'4' | b'8')] => (*k == b'i', (n - b'0') as usize),
        _ => bail!(
            "expected an integer array of ids ('<i4', '<i8', '|u1', ...), found '{descr}'{}",
            described(kind)
        ),
    };
    let big_endian = match order {
        '>' => true,
        '=' => cfg!(target_endian = "big"),
        _ => false,
    };
    Ok((Dtype::Int { size, signed }, big_endian))
}

/// ` (name)` for a dtype string or code NumPy names, else nothing.
fn described(descr: &str) -> String {
    let kind = descr.trim_start_matches(['<', '>', '|', '=']);
    dtype_name(kind)
        .map(|n| format!(" ({n})"))
        .unwrap_or_default()
}

/// The NumPy name of a dtype code such as `f8`, for messages.
fn dtype_name(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "f2" => "float16",
        "f4" => "float32",
        "f8" => "float64",
        "f16" => "float128",
        "i1" => "int8",
        "i2" => "int16",
        "i4" => "int32",
        "i8" => "int64",
        "u1" => "uint8",
        "u2" => "uint16",
        "u4" => "uint32",
        "u8" => "uint64",
        "b1" => "bool",
        "c8" => "complex64",
        "c16" => "complex128",
        "O" => "object",
        _ if kind.starts_with('U') => "unicode string",
        _ if kind.starts_with('S') => "byte string",
        _ => return None,
    })
}

/// Writes a version 1.0 header for a C-order `[rows x cols]` array of `descr`.
fn write_header(w: &mut dyn Write, descr: &str, rows: usize, cols: usize) -> Result<()> {
    let dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + length (2) + dict + padding + '\n', a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    let header_len = dict.len() + 1 + (64 - unpadded % 64) % 64;
    let header_len_u16 = u16::try_from(header_len).map_err(|_| anyhow!("npy header too long"))?;
    w.write_all(MAGIC)?;
    w.write_all(&[1, 0])?;
    w.write_all(&header_len_u16.to_le_bytes())?;
    w.write_all(dict.as_bytes())?;
    w.write_all(&vec![b' '; header_len - dict.len() - 1])?;
    w.write_all(b"\n")?;
    Ok(())
}

/// Writes `data` as a little-endian `int64` array `[rows x cols]`.
pub fn write_i64(w: &mut dyn Write, rows: usize, cols: usize, data: &[i64]) -> Result<()> {
    write_header(w, "<i8", rows, cols)?;
    write_chunked(w, data, i64::to_le_bytes)
}

/// Writes `data` as a little-endian `float32` array `[rows x cols]`.
pub fn write_f32(w: &mut dyn Write, rows: usize, cols: usize, data: &[f32]) -> Result<()> {
    write_header(w, "<f4", rows, cols)?;
    write_chunked(w, data, f32::to_le_bytes)
}

/// Writes `data` as a `uint8` array `[rows x cols]`.
pub fn write_u8(w: &mut dyn Write, rows: usize, cols: usize, data: &[u8]) -> Result<()> {
    write_header(w, "|u1", rows, cols)?;
    w.write_all(data)?;
    Ok(())
}

/// Encodes values into a reusable byte buffer, one chunk at a time.
fn write_chunked<T: Copy, const N: usize>(
    w: &mut dyn Write,
    data: &[T],
    encode: fn(T) -> [u8; N],
) -> Result<()> {
    let mut buf = Vec::with_capacity(CHUNK_BYTES);
    for chunk in data.chunks(CHUNK_BYTES / N) {
        buf.clear();
        buf.extend(chunk.iter().flat_map(|&v| encode(v)));
        w.write_all(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_shaped(bytes: &[u8], any_shape: bool) -> Result<Header> {
        read_header(&mut &bytes[..], bytes.len() as u64, any_shape, false)
    }

    fn header_of(bytes: &[u8]) -> Result<Header> {
        header_shaped(bytes, false)
    }

    /// What the readers make of a whole file held in memory.
    fn elements_shaped(bytes: &[u8], any_shape: bool) -> Result<Elements> {
        let h = header_shaped(bytes, any_shape)?;
        check_size(&h, bytes.len() as u64)?;
        load(&mut &bytes[h.data_offset as usize..], &h)
    }

    fn floats_of(bytes: &[u8]) -> Vec<f32> {
        match elements_shaped(bytes, false).unwrap() {
            Elements::F32(v) => v,
            Elements::U8(_) => panic!("expected floats"),
        }
    }

    fn npy_bytes(version: u8, dict: &str) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend([version, 0]);
        if version == 1 {
            v.extend((dict.len() as u16).to_le_bytes());
        } else {
            v.extend((dict.len() as u32).to_le_bytes());
        }
        v.extend(dict.as_bytes());
        v
    }

    /// A version 1.0 file of `descr`, order and shape, followed by `data`.
    fn npy_file(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        let dict = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}}}\n");
        let mut v = npy_bytes(1, &dict);
        v.extend(data);
        v
    }

    /// `rows x cols` test values `100 r + c` (exact in every float type),
    /// in C or Fortran order.
    fn grid(rows: usize, cols: usize, fortran: bool) -> Vec<f32> {
        let value = |r: usize, c: usize| (100 * r + c) as f32;
        if fortran {
            (0..cols)
                .flat_map(|c| (0..rows).map(move |r| value(r, c)))
                .collect()
        } else {
            (0..rows)
                .flat_map(|r| (0..cols).map(move |c| value(r, c)))
                .collect()
        }
    }

    fn le_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn written_headers_read_back_aligned() {
        let mut out = Vec::new();
        write_f32(&mut out, 3, 5, &[0.5; 15]).unwrap();
        let h = header_of(&out).unwrap();
        assert_eq!(
            (h.dtype, h.rows, h.cols, h.data_offset % 64),
            (Dtype::F32, 3, 5, 0)
        );
        assert_eq!(out.len() as u64, h.data_offset + 60);
    }

    #[test]
    fn every_version_reads() {
        for v in [1, 2, 3] {
            let b = npy_bytes(
                v,
                "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3)}\n",
            );
            assert_eq!(header_of(&b).unwrap().dtype, Dtype::U8);
        }
    }

    #[test]
    fn fortran_order_is_transposed_to_rows() {
        // 40 columns: three blocks of at most 16.
        for (rows, cols) in [(3, 2), (1, 5), (5, 1), (7, 40)] {
            let f = npy_file(
                "<f4",
                true,
                &format!("({rows}, {cols})"),
                &le_bytes(&grid(rows, cols, true)),
            );
            assert_eq!(floats_of(&f), grid(rows, cols, false), "{rows} x {cols}");
        }
        let bytes: Vec<u8> = (0..6).collect();
        let f = npy_file("|u1", true, "(2, 3)", &bytes);
        match elements_shaped(&f, false).unwrap() {
            Elements::U8(v) => assert_eq!(v, [0, 2, 4, 1, 3, 5]),
            Elements::F32(_) => panic!("expected bytes"),
        }
    }

    #[test]
    fn fortran_order_with_a_column_block_under_the_width() {
        // 1.1 M rows of 4 bytes: blocks of 3 columns, then 2.
        let (rows, cols) = (1_100_000, 5);
        let f = npy_file(
            "<f4",
            true,
            &format!("({rows}, {cols})"),
            &le_bytes(&grid(rows, cols, true)),
        );
        assert_eq!(floats_of(&f), grid(rows, cols, false));
    }

    #[test]
    fn fortran_order_of_any_shape_reads_in_c_order() {
        assert_eq!(
            fortran_offsets(&[2, 3]).collect::<Vec<_>>(),
            [0, 2, 4, 1, 3, 5]
        );
        assert_eq!(fortran_offsets(&[4]).collect::<Vec<_>>(), [0, 1, 2, 3]);
        // Shape (2, 3, 4): element (i, j, k) has the value 12 i + 4 j + k,
        // at Fortran offset i + 2 j + 6 k.
        let mut data = vec![0f32; 24];
        for (i, j, k) in (0..24).map(|n| (n / 12, n / 4 % 3, n % 4)) {
            data[i + 2 * j + 6 * k] = (12 * i + 4 * j + k) as f32;
        }
        let f = npy_file("<f4", true, "(2, 3, 4)", &le_bytes(&data));
        match elements_shaped(&f, true).unwrap() {
            Elements::F32(v) => assert_eq!(v, (0..24).map(|n| n as f32).collect::<Vec<_>>()),
            Elements::U8(_) => panic!("expected floats"),
        }
        assert_eq!(header_shaped(&f, true).unwrap().cols, 4);
    }

    #[test]
    fn float64_rounds_to_nearest_and_overflows_to_infinity() {
        let one_ulp = 2f64.powi(-23);
        let values = [
            0.1,
            -2.5,
            1.0 + one_ulp / 2.0,  // a tie: to even (1.0)
            1.0 + one_ulp * 0.75, // nearest is 1 + ulp
            1e300,
            -1e300,
            f64::from(f32::MAX) * 1.5,
            1e-50, // below the smallest subnormal: 0
            f64::NAN,
        ];
        let want: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        assert_eq!(want[2], 1.0);
        assert_eq!(want[3], 1.0 + f32::EPSILON);
        assert_eq!(
            &want[4..7],
            [f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY]
        );
        for (descr, bytes) in [
            (
                "<f8",
                values
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<_>>(),
            ),
            (">f8", values.iter().flat_map(|v| v.to_be_bytes()).collect()),
        ] {
            let got = floats_of(&npy_file(descr, false, "(3, 3)", &bytes));
            assert_eq!(&got[..8], &want[..8], "{descr}");
            assert!(got[8].is_nan(), "{descr}");
        }
    }

    #[test]
    fn float16_and_big_endian_float32_convert_exactly() {
        // 1, -2, 65504 (largest), +inf, 2^-24 (smallest subnormal), -0.
        let halves: [u16; 6] = [0x3C00, 0xC000, 0x7BFF, 0x7C00, 0x0001, 0x8000];
        let want = [1.0, -2.0, 65504.0, f32::INFINITY, 2f32.powi(-24), -0.0];
        for (descr, bytes) in [
            (
                "<f2",
                halves
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<_>>(),
            ),
            (">f2", halves.iter().flat_map(|v| v.to_be_bytes()).collect()),
        ] {
            let got = floats_of(&npy_file(descr, true, "(2, 3)", &bytes));
            // Fortran order: the file's columns are (1, -2), (65504, inf), ...
            let rows = [want[0], want[2], want[4], want[1], want[3], want[5]];
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&rows), "{descr}");
        }
        let be: Vec<u8> = grid(2, 2, false)
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert_eq!(
            floats_of(&npy_file(">f4", false, "(2, 2)", &be)),
            grid(2, 2, false)
        );
    }

    #[test]
    fn truncated_fortran_data_is_refused_before_reading() {
        let data = le_bytes(&grid(4, 3, true));
        let f = npy_file("<f8", true, "(4, 3)", &data);
        let err = format!("{:#}", elements_shaped(&f, false).err().unwrap());
        assert!(
            err.contains("truncated")
                && err.contains("expected 96 bytes")
                && err.contains("found 48"),
            "{err}"
        );
        let f = npy_file("<f4", true, "(4, 3)", &data[..47]);
        let err = format!("{:#}", elements_shaped(&f, false).err().unwrap());
        assert!(
            err.contains("expected 48 bytes") && err.contains("found 47"),
            "{err}"
        );
    }

    #[test]
    fn integer_arrays_read_as_ids() {
        let ids_of = |bytes: &[u8]| {
            let h = read_header(&mut &bytes[..], bytes.len() as u64, false, true)?;
            check_size(&h, bytes.len() as u64)?;
            load_ids(&mut &bytes[h.data_offset as usize..], &h)
        };
        let v: Vec<i32> = vec![0, -1, 5, 1 << 30, -7, 9];
        let le: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let want: Vec<i64> = v.iter().map(|&x| i64::from(x)).collect();
        assert_eq!(
            ids_of(&npy_file("<i4", false, "(2, 3)", &le)).unwrap(),
            want
        );
        let be: Vec<u8> = v.iter().flat_map(|x| x.to_be_bytes()).collect();
        assert_eq!(
            ids_of(&npy_file(">i4", false, "(2, 3)", &be)).unwrap(),
            want
        );
        // Fortran order: the file's columns are (0, -1), (5, 2^30), (-7, 9).
        let f = npy_file("<i4", true, "(2, 3)", &le);
        assert_eq!(ids_of(&f).unwrap(), [0, 5, -7, -1, 1 << 30, 9]);
        let u: Vec<u8> = [3u64, u64::from(u32::MAX) + 1]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(
            ids_of(&npy_file("<u8", false, "(1, 2)", &u)).unwrap(),
            [3, 1 << 32]
        );
        assert_eq!(
            ids_of(&npy_file("|u1", false, "(1, 2)", &[255, 1])).unwrap(),
            [255, 1]
        );
        let big = u64::MAX.to_le_bytes();
        let e = ids_of(&npy_file("<u8", false, "(1, 1)", &big)).unwrap_err();
        assert!(
            e.to_string().contains("larger than the largest int64"),
            "{e}"
        );
        let e = ids_of(&npy_file("<f4", false, "(1, 1)", &[0; 4])).unwrap_err();
        assert!(e.to_string().contains("'<f4' (float32)"), "{e}");
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |dict: &str| format!("{:#}", header_of(&npy_bytes(1, dict)).unwrap_err());
        let e = err("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3)}");
        assert!(
            e.contains("'<i4' (int32)") && e.contains("'<f8' (float64)"),
            "{e}"
        );
        assert!(
            err("{'descr': '<f16', 'fortran_order': False, 'shape': (2, 3)}").contains("float128")
        );
        assert!(
            err("{'descr': '>i8', 'fortran_order': False, 'shape': (2, 3)}")
                .contains("big-endian dtype '>i8' (int64)")
        );
        assert!(
            err("{'descr': '<f4', 'fortran_order': 1, 'shape': (2, 3)}").contains("fortran_order")
        );
        assert!(err("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}").contains("(2,)"));
        assert!(
            err("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3)}").contains("zero rows")
        );
        let mut b = npy_bytes(1, "{}");
        b[6] = 4;
        assert!(format!("{:#}", header_of(&b).unwrap_err()).contains("version 4.0"));
        assert!(format!("{:#}", header_of(b"PK\x03\x04abcdef").unwrap_err()).contains("magic"));
    }
}

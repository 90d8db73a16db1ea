//! NumPy `.npy` files (format versions 1.0, 2.0 and 3.0): reading 2-D
//! `float32` and `uint8` arrays (bit-packed binary rows, or raw code
//! bytes), writing 2-D `int64`, `float32` and `uint8` arrays.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context as _, Result};
use vector_accelerate::{BinaryMatrix, Matrix};

use super::literal::{self, Literal};
use super::source::{open_input, read_f32_le, try_alloc, Data, CHUNK_BYTES};

/// The six bytes every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// What the reader accepts, for error messages.
const ACCEPTED: &str = "accepted: '<f4' (float32) or '|u1' (uint8: bit-packed binary rows, \
                        as numpy.packbits(..., bitorder='little') writes them)";

/// Element types the reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    /// Little-endian `float32`.
    F32,
    /// `uint8`, read as bit-packed binary rows.
    U8,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::U8 => 1,
        }
    }
}

/// The parts of a header the reader uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    dtype: Dtype,
    rows: usize,
    cols: usize,
    /// Bytes from the start of the file to the first data byte.
    data_offset: u64,
}

/// The elements of a 2-D array, as read.
pub enum Elements {
    /// `'<f4'` values.
    F32(Vec<f32>),
    /// `'|u1'` bytes.
    U8(Vec<u8>),
}

/// Reads a 2-D `.npy` array: `'<f4'` as dense rows, `'|u1'` as bit-packed
/// binary rows of `8 * columns` bits.
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

/// Reads a 2-D `'|u1'` array as raw bytes: `(rows, columns, bytes)`.
pub fn read_u8(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    match read_elements(path)? {
        (rows, cols, Elements::U8(bytes)) => Ok((rows, cols, bytes)),
        (rows, cols, Elements::F32(_)) => {
            bail!("expected a uint8 ('|u1') array, found float32 ({rows}, {cols})")
        }
    }
}

/// Reads the header and all elements of a 2-D array: `(rows, columns,
/// elements)`.
pub fn read_elements(path: &Path) -> Result<(usize, usize, Elements)> {
    read_elements_shaped(path, false)
}

/// Every `'<f4'` element of an array of any shape (1-D, 2-D or more), in
/// C order, for operations on all values (histograms).
pub fn read_values(path: &Path) -> Result<Vec<f32>> {
    match read_elements_shaped(path, true)? {
        (_, _, Elements::F32(v)) => Ok(v),
        (_, _, Elements::U8(_)) => bail!("expected a float32 ('<f4') array, found uint8"),
    }
}

/// A float32 array as a table of observations (rows) by variables
/// (columns): 2-D arrays as they are, higher ones as `(elements / last,
/// last)`, and a 1-D array (or a single row) as one column.
pub fn read_table(path: &Path) -> Result<Matrix> {
    match read_elements_shaped(path, true)? {
        (1, _, Elements::F32(v)) => Ok(Matrix::new(v, 1)?),
        (_, cols, Elements::F32(v)) => Ok(Matrix::new(v, cols.max(1))?),
        (_, _, Elements::U8(_)) => bail!("expected a float32 ('<f4') array, found uint8"),
    }
}

fn read_elements_shaped(path: &Path, any_shape: bool) -> Result<(usize, usize, Elements)> {
    let (mut file, file_len) = open_input(path)?;
    let header = read_header(&mut file, file_len, any_shape)?;
    let (rows, cols) = (header.rows, header.cols);
    let count = rows
        .checked_mul(cols)
        .filter(|c| c.checked_mul(header.dtype.size()).is_some())
        .ok_or_else(|| anyhow!("shape ({rows}, {cols}) is too large"))?;
    let expected = (count * header.dtype.size()) as u64;
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
    let elements = match header.dtype {
        Dtype::F32 => {
            let mut data = try_alloc::<f32>(count)?;
            read_f32_le(&mut file, &mut data, count)?;
            Elements::F32(data)
        }
        Dtype::U8 => {
            let mut bytes = try_alloc::<u8>(count)?;
            (&mut file)
                .take(expected)
                .read_to_end(&mut bytes)
                .context("read failed")?;
            if bytes.len() != count {
                bail!("file shrank while it was read");
            }
            Elements::U8(bytes)
        }
    };
    Ok((rows, cols, elements))
}

/// Reads and checks the magic, version and header dict.
fn read_header(r: &mut impl Read, file_len: u64, any_shape: bool) -> Result<Header> {
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
    let mut header = parse_dict(&dict, any_shape)?;
    header.data_offset = prefix + header_len;
    Ok(header)
}

/// Interprets the header dict: dtype, memory order and a 2-D shape (with
/// `any_shape`, any shape of at least one dimension, read as `(elements /
/// last, last)`).
fn parse_dict(dict: &Literal, any_shape: bool) -> Result<Header> {
    if !matches!(dict, Literal::Dict(_)) {
        bail!("malformed npy header: expected a dict, found {dict}");
    }
    let field = |key: &str| {
        dict.get(key)
            .ok_or_else(|| anyhow!("malformed npy header: no '{key}' entry"))
    };
    let dtype = match field("descr")? {
        Literal::Str(descr) => parse_descr(descr)?,
        other => bail!("unsupported dtype {other} (a structured dtype); {ACCEPTED}"),
    };
    match field("fortran_order")? {
        Literal::Bool(false) => {}
        Literal::Bool(true) => bail!(
            "Fortran-order (column-major) arrays are not supported; \
             save a C-order copy with numpy.ascontiguousarray(a)"
        ),
        other => bail!("malformed npy header: fortran_order is {other}"),
    }
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
        dtype,
        rows,
        cols,
        data_offset: 0,
    })
}

/// Maps a dtype string to a supported element type, or says why not.
fn parse_descr(descr: &str) -> Result<Dtype> {
    let (order, kind) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let name = dtype_name(kind)
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    match (order, kind) {
        ('<', "f4") => Ok(Dtype::F32),
        (_, "u1") => Ok(Dtype::U8),
        ('>', "f4") => {
            bail!("big-endian dtype '>f4' is not supported; convert with a.astype('<f4')")
        }
        ('>', _) => bail!("unsupported big-endian dtype '{descr}'{name}; {ACCEPTED}"),
        _ => bail!("unsupported dtype '{descr}'{name}; {ACCEPTED}"),
    }
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

    fn header_of(bytes: &[u8]) -> Result<Header> {
        read_header(&mut &bytes[..], bytes.len() as u64, false)
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
    fn errors_name_the_problem() {
        let err = |dict: &str| format!("{:#}", header_of(&npy_bytes(1, dict)).unwrap_err());
        assert!(
            err("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}").contains("float64")
        );
        assert!(
            err("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3)}").contains("big-endian")
        );
        assert!(
            err("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3)}").contains("Fortran")
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

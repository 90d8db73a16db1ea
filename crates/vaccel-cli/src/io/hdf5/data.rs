//! Reading a 2-D dataset's elements: compact, contiguous and chunked
//! layouts (version 1 B-tree, single-chunk, implicit and fixed-array chunk
//! indexes), through the deflate and shuffle filters.

use std::io::Read;

use anyhow::{anyhow, bail, Result};
use flate2::read::ZlibDecoder;

use super::dataset::{unlimited, Dataset, Dtype, Filter, Index, Layout};
use super::file::{Block, H5File, UNDEFINED};
use super::group::btree_node;
use crate::io::source::{try_alloc, widen_int, CHUNK_BYTES};

/// The largest ratio of decompressed to compressed bytes deflate reaches.
const DEFLATE_MAX_RATIO: u64 = 1032;

/// Converts elements of a type from their bytes into values of `T`; `src`
/// holds exactly `dst.len()` elements.
pub(super) type Decode<T> = fn(Dtype, &[u8], &mut [T]);

/// Reads the `rows x cols` elements of `ds` row-major, each converted by
/// `decode`.
pub(super) fn read<T: Copy + Default>(
    f: &mut H5File,
    ds: &Dataset,
    decode: Decode<T>,
) -> Result<Vec<T>> {
    let (rows, cols) = (ds.shape[0], ds.shape[1]);
    let es = ds.dtype.size() as u64;
    let bytes = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(es))
        .ok_or_else(|| anyhow!("shape ({rows}, {cols}) is too large"))?;
    match &ds.layout {
        Layout::Compact(block) => {
            if (block.bytes.len() as u64) < bytes {
                return Err(block.corrupt(
                    0,
                    format_args!(
                        "compact data of {} bytes for {bytes} bytes of elements",
                        block.bytes.len()
                    ),
                ));
            }
            let mut out = filled::<T>(bytes / es)?;
            decode(ds.dtype, &block.bytes[..bytes as usize], &mut out);
            Ok(out)
        }
        Layout::Contiguous {
            addr,
            size,
            field_at,
        } => {
            if *addr == UNDEFINED {
                bail!(
                    "the dataset has no data written (undefined address in its layout message \
                     at byte offset {field_at})"
                );
            }
            if *size < bytes {
                bail!(
                    "corrupt file: the layout message at byte offset {field_at} gives {size} \
                     bytes of storage for {bytes} bytes of elements"
                );
            }
            contiguous(f, *addr, bytes, ds.dtype, decode)
        }
        Layout::Chunked { .. } => Chunks::new(f, ds, bytes, decode)?.read(f),
    }
}

/// A vector of `count` default values, or an error when memory is short.
fn filled<T: Copy + Default>(count: u64) -> Result<Vec<T>> {
    let count = usize::try_from(count).map_err(|_| anyhow!("{count} elements are too many"))?;
    let mut out = try_alloc::<T>(count)?;
    out.resize(count, T::default());
    Ok(out)
}

/// Reads `bytes` bytes of elements at `addr`, a piece at a time.
fn contiguous<T: Copy + Default>(
    f: &mut H5File,
    addr: u64,
    bytes: u64,
    dtype: Dtype,
    decode: Decode<T>,
) -> Result<Vec<T>> {
    let end = addr.saturating_add(bytes);
    if end > f.len {
        bail!(
            "truncated or corrupt file: the dataset's {bytes} bytes of elements at byte offset \
             {addr} end at byte offset {end}, but the file ends at byte offset {}",
            f.len
        );
    }
    let es = dtype.size();
    let mut out = filled::<T>(bytes / es as u64)?;
    let per_piece = CHUNK_BYTES / es;
    for (i, piece) in out.chunks_mut(per_piece).enumerate() {
        let at = addr + (i * per_piece * es) as u64;
        let block = f.read(at, (piece.len() * es) as u64, "dataset elements")?;
        decode(dtype, &block.bytes, piece);
    }
    Ok(out)
}

/// One chunk as its index gives it.
struct ChunkRef {
    /// Byte offset of the stored (filtered) bytes.
    addr: u64,
    /// Stored bytes.
    stored: u64,
    /// Filters skipped for this chunk (bit `i`: the `i`-th filter).
    mask: u32,
    /// Element offsets of the chunk's first element.
    offset: [u64; 2],
}

/// The state of reading a chunked dataset.
struct Chunks<'a, T> {
    ds: &'a Dataset,
    decode: Decode<T>,
    /// Elements per chunk in each dimension.
    chunk: [u64; 2],
    /// Bytes of one whole chunk.
    chunk_bytes: u64,
    /// Partial edge chunks are stored unfiltered.
    edge_unfiltered: bool,
    /// Offset of the layout message, for messages.
    field_at: u64,
    /// Chunks per dimension over the current shape.
    grid: [u64; 2],
    /// One bit per chunk of `grid`: seen.
    seen: Vec<u64>,
    out: Vec<T>,
}

impl<'a, T: Copy + Default> Chunks<'a, T> {
    /// Checks the chunk and dataset sizes against what the file can hold
    /// and allocates the output.
    fn new(f: &H5File, ds: &'a Dataset, bytes: u64, decode: Decode<T>) -> Result<Self> {
        let Layout::Chunked {
            ref chunk,
            edge_unfiltered,
            field_at,
            ..
        } = ds.layout
        else {
            unreachable!("a chunked layout")
        };
        check_filters(&ds.filters, field_at)?;
        let deflate = ds.filters.iter().any(|f| f.id == 1);
        let limit = match deflate {
            true => f.len.saturating_mul(DEFLATE_MAX_RATIO),
            false => f.len,
        };
        let es = ds.dtype.size() as u64;
        let chunk_bytes = match chunk[0]
            .checked_mul(chunk[1])
            .and_then(|n| n.checked_mul(es))
        {
            Some(n) if n <= limit && n <= u64::from(u32::MAX) => n,
            _ => bail!(
                "corrupt file: chunks of {} x {} elements (layout message at byte offset \
                 {field_at}) are too large for a file of {} bytes",
                chunk[0],
                chunk[1],
                f.len
            ),
        };
        if bytes > limit {
            let how = if deflate { " even with deflate" } else { "" };
            bail!(
                "corrupt file: {bytes} bytes of elements cannot come from {} bytes{how}",
                f.len
            );
        }
        let grid = [
            ds.shape[0].div_ceil(chunk[0]),
            ds.shape[1].div_ceil(chunk[1]),
        ];
        let cells = grid[0] * grid[1];
        if cells > f.len / 8 {
            bail!(
                "corrupt file: {cells} chunks (layout message at byte offset {field_at}) cannot \
                 be indexed in {} bytes",
                f.len
            );
        }
        Ok(Chunks {
            ds,
            decode,
            chunk: [chunk[0], chunk[1]],
            chunk_bytes,
            edge_unfiltered,
            field_at,
            grid,
            seen: vec![0; cells.div_ceil(64) as usize],
            out: filled::<T>(bytes / es)?,
        })
    }

    /// Visits every chunk of the index and places it; refuses a dataset
    /// with chunks never written.
    fn read(mut self, f: &mut H5File) -> Result<Vec<T>> {
        let Layout::Chunked { index, .. } = self.ds.layout else {
            unreachable!("a chunked layout")
        };
        match index {
            Index::BTree(addr) => self.btree(f, addr, None, &mut (f.len / 16))?,
            Index::Single { addr, filtered } => {
                let (stored, mask) = filtered.unwrap_or((self.chunk_bytes, 0));
                self.place(
                    f,
                    ChunkRef {
                        addr,
                        stored,
                        mask,
                        offset: [0, 0],
                    },
                )?;
            }
            Index::Implicit(addr) => self.implicit(f, addr)?,
            Index::FixedArray(addr) => self.fixed_array(f, addr)?,
        }
        let cells = self.grid[0] * self.grid[1];
        let seen: u64 = self.seen.iter().map(|w| u64::from(w.count_ones())).sum();
        if seen < cells {
            bail!(
                "the dataset has {} of its {cells} chunks never written (layout message at byte \
                 offset {}); fill values are not supported",
                cells - seen,
                self.field_at
            );
        }
        Ok(self.out)
    }

    /// Visits the version 1 B-tree node of chunks at `at` and its children.
    fn btree(
        &mut self,
        f: &mut H5File,
        at: u64,
        level: Option<u8>,
        budget: &mut u64,
    ) -> Result<()> {
        // Key: stored size, filter mask, then an offset per dimension and
        // one for the element size.
        let mut node = btree_node(f, at, 1, level, 8 + 8 * 3, budget)?;
        for _ in 0..node.entries {
            let b = &mut node.body;
            let (stored, mask) = (u64::from(b.u32()?), b.u32()?);
            let offset = [b.uint(8)?, b.uint(8)?];
            b.skip(8)?;
            let addr = b.address()?;
            match node.level {
                0 => self.place(
                    f,
                    ChunkRef {
                        addr,
                        stored,
                        mask,
                        offset,
                    },
                )?,
                l => self.btree(f, addr, Some(l - 1), budget)?,
            }
        }
        Ok(())
    }

    /// Unfiltered chunks stored one after another from `addr`, in the order
    /// of the grid over the maximum shape.
    fn implicit(&mut self, f: &mut H5File, addr: u64) -> Result<()> {
        let grid = self.max_grid()?;
        let cells = grid[0].saturating_mul(grid[1]);
        if !self.ds.filters.is_empty()
            || cells.saturating_mul(self.chunk_bytes) > f.len.saturating_sub(addr)
        {
            bail!(
                "truncated or corrupt file: {cells} unfiltered chunks of {} bytes from byte \
                 offset {addr} (layout message at byte offset {}), in a file of {} bytes",
                self.chunk_bytes,
                self.field_at,
                f.len
            );
        }
        for i in 0..cells {
            let at = addr + i * self.chunk_bytes;
            let (stored, offset) = (self.chunk_bytes, self.cell_offset(i, grid));
            self.place(
                f,
                ChunkRef {
                    addr: at,
                    stored,
                    mask: 0,
                    offset,
                },
            )?;
        }
        Ok(())
    }

    /// Chunks listed in a fixed array, in the order of the grid over the
    /// maximum shape: one run of entries, or pages of them, each page
    /// followed by a checksum and present when its bit is set.
    fn fixed_array(&mut self, f: &mut H5File, at: u64) -> Result<()> {
        let grid = self.max_grid()?;
        let a = FixedArray::read(f, at, !self.ds.filters.is_empty(), grid)?;
        let (entry, page) = (a.entry as u64, a.page);
        let pages = if a.count > page {
            a.count.div_ceil(page)
        } else {
            0
        };
        let mut head = f.read(
            a.data,
            6 + f.offset_size as u64 + pages.div_ceil(8),
            "fixed array data block",
        )?;
        head.signature(b"FADB")?;
        head.skip(2 + f.offset_size)?;
        let bitmap = head.take(pages.div_ceil(8) as usize)?.to_vec();
        let first = head.offset_of(0) + if pages > 0 { 4 } else { 0 };
        for p in 0..pages.max(1) {
            let n = page.min(a.count - p * page);
            // Most significant bit first.
            if pages > 0 && bitmap[(p / 8) as usize] & (0x80 >> (p % 8)) == 0 {
                continue;
            }
            let mut b = f.read(
                first + p * (page * entry + 4),
                n * entry,
                "fixed array page",
            )?;
            for i in p * page..p * page + n {
                let addr = b.address()?;
                let (stored, mask) = match a.size_width {
                    Some(width) => (b.uint(width)?, b.u32()?),
                    None => (self.chunk_bytes, 0),
                };
                if addr != UNDEFINED {
                    let offset = self.cell_offset(i, grid);
                    self.place(
                        f,
                        ChunkRef {
                            addr,
                            stored,
                            mask,
                            offset,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Chunks per dimension over the maximum shape, which must be fixed.
    fn max_grid(&self) -> Result<[u64; 2]> {
        let (max, shape) = (&self.ds.max_shape, &self.ds.shape);
        if max.iter().any(|&m| unlimited(m)) || max[0] < shape[0] || max[1] < shape[1] {
            bail!(
                "corrupt file: a chunk index for a fixed shape, but the maximum shape is not \
                 (layout message at byte offset {})",
                self.field_at
            );
        }
        Ok([
            max[0].div_ceil(self.chunk[0]),
            max[1].div_ceil(self.chunk[1]),
        ])
    }

    /// The element offset of chunk `i` of a `grid` in row-major order.
    fn cell_offset(&self, i: u64, grid: [u64; 2]) -> [u64; 2] {
        [i / grid[1] * self.chunk[0], i % grid[1] * self.chunk[1]]
    }

    /// Decodes one chunk and copies the part inside the dataset to the
    /// output; a chunk beyond the current shape is skipped.
    fn place(&mut self, f: &mut H5File, c: ChunkRef) -> Result<()> {
        let [rows, cols] = [self.ds.shape[0], self.ds.shape[1]];
        let [r0, c0] = c.offset;
        if r0 % self.chunk[0] != 0 || c0 % self.chunk[1] != 0 {
            bail!(
                "corrupt file: the chunk at byte offset {} starts at element ({r0}, {c0}), not \
                 on the grid of {} x {} chunks",
                c.addr,
                self.chunk[0],
                self.chunk[1]
            );
        }
        if r0 >= rows || c0 >= cols {
            return Ok(());
        }
        let cell = r0 / self.chunk[0] * self.grid[1] + c0 / self.chunk[1];
        let (word, bit) = ((cell / 64) as usize, 1u64 << (cell % 64));
        if self.seen[word] & bit != 0 {
            bail!(
                "corrupt file: a second chunk at element ({r0}, {c0}), at byte offset {}",
                c.addr
            );
        }
        self.seen[word] |= bit;
        let edge = r0 + self.chunk[0] > rows || c0 + self.chunk[1] > cols;
        let filters = if edge && self.edge_unfiltered {
            &[]
        } else {
            &self.ds.filters[..]
        };
        let stored = f.read(c.addr, c.stored, "chunk")?;
        let es = self.ds.dtype.size();
        let bytes = unfilter(stored, filters, c.mask, self.chunk_bytes, es)?;
        let width = self.chunk[1].min(cols - c0) as usize;
        let chunk_row = self.chunk[1] as usize * es;
        for r in 0..self.chunk[0].min(rows - r0) as usize {
            let src = &bytes[r * chunk_row..][..width * es];
            let start = (r0 as usize + r) * cols as usize + c0 as usize;
            (self.decode)(self.ds.dtype, src, &mut self.out[start..start + width]);
        }
        Ok(())
    }
}

/// A fixed array header: the entries' size and number, the page size and
/// the data block's address.
struct FixedArray {
    /// Bytes per entry.
    entry: usize,
    /// Bytes of a filtered chunk's stored size, `None` when unfiltered.
    size_width: Option<usize>,
    /// Entries per page.
    page: u64,
    /// Entries: one per chunk of the grid.
    count: u64,
    /// Offset of the data block.
    data: u64,
}

impl FixedArray {
    /// Reads the header at `at` of the array of a dataset with or without
    /// filters over a chunk `grid`, checking it against both and against
    /// the file's size.
    fn read(f: &mut H5File, at: u64, filtered: bool, grid: [u64; 2]) -> Result<Self> {
        let (o, l) = (f.offset_size, f.length_size);
        let mut h = f.read(at, (8 + l + o) as u64, "fixed array header")?;
        h.signature(b"FAHD")?;
        h.skip(1)?;
        let (client, entry, page_bits) = (h.u8()?, h.u8()? as usize, h.u8()?);
        let (count, data) = (h.length()?, h.address()?);
        let size_width = entry.wrapping_sub(o + 4);
        let fits = match filtered {
            false => client == 0 && entry == o,
            true => client == 1 && (1..=8).contains(&size_width),
        };
        if !fits || page_bits >= 32 {
            let what =
                format_args!("client {client}, entries of {entry} bytes, {page_bits} page bits");
            return Err(h.corrupt(l + o + 4, what));
        }
        if Some(count) != grid[0].checked_mul(grid[1]) || count.saturating_mul(entry as u64) > f.len
        {
            let what = format_args!("{count} entries for {} x {} chunks", grid[0], grid[1]);
            return Err(h.corrupt(l + o, what));
        }
        Ok(FixedArray {
            entry,
            size_width: filtered.then_some(size_width),
            page: 1 << page_bits,
            count,
            data,
        })
    }
}

/// Refuses filters other than deflate (1) and shuffle (2).
fn check_filters(filters: &[Filter], field_at: u64) -> Result<()> {
    if filters.len() > 32 {
        bail!("corrupt file: {} filters for one dataset", filters.len());
    }
    for flt in filters {
        let name = match flt.id {
            1 | 2 => continue,
            3 => "fletcher32",
            4 => "szip",
            5 => "nbit",
            6 => "scaleoffset",
            32001 => "blosc",
            32004 => "lz4",
            32008 => "bitshuffle",
            32015 => "zstd",
            _ => "unknown",
        };
        bail!(
            "the dataset uses filter {} ({name}), not supported (supported: gzip/deflate and \
             shuffle; layout message at byte offset {field_at})",
            flt.id
        );
    }
    Ok(())
}

/// Undoes the filters not masked out, last first, and checks that the
/// result is one whole chunk of `expected` bytes.
fn unfilter(
    stored: Block,
    filters: &[Filter],
    mask: u32,
    expected: u64,
    es: usize,
) -> Result<Vec<u8>> {
    let at = stored.at;
    let mut data = stored.bytes;
    for (i, flt) in filters.iter().enumerate().rev() {
        if mask & (1 << i) != 0 {
            continue;
        }
        data = match flt.id {
            1 => inflate(&data, expected, at)?,
            _ => unshuffle(&data, flt.values.first().map_or(es, |&s| s as usize)),
        };
    }
    if data.len() as u64 != expected {
        bail!(
            "corrupt file: the chunk at byte offset {at} holds {} bytes, where a chunk has \
             {expected}",
            data.len()
        );
    }
    Ok(data)
}

/// Decompresses a zlib stream of at most `expected` bytes.
fn inflate(src: &[u8], expected: u64, at: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let room = expected.min(src.len() as u64 * DEFLATE_MAX_RATIO) as usize;
    out.try_reserve_exact(room)
        .map_err(|_| anyhow!("cannot allocate {room} bytes of memory"))?;
    ZlibDecoder::new(src)
        .take(expected + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            anyhow!("corrupt file: the deflate data of the chunk at byte offset {at}: {e}")
        })?;
    Ok(out)
}

/// Undoes the shuffle filter: byte `b` of element `i` was stored at
/// `b * n + i`; bytes past the last whole element stay in place.
fn unshuffle(src: &[u8], size: usize) -> Vec<u8> {
    if size <= 1 || src.len() < size {
        return src.to_vec();
    }
    let n = src.len() / size;
    let mut out = src.to_vec();
    for i in 0..n {
        for b in 0..size {
            out[i * size + b] = src[b * n + i];
        }
    }
    out
}

/// Applies `conv` to each `N`-byte element of `src` into `dst`.
fn each<T, const N: usize>(src: &[u8], dst: &mut [T], conv: impl Fn([u8; N]) -> T) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(N)) {
        *d = conv(s.try_into().expect("N bytes"));
    }
}

/// Converts elements to `f32`: floats (float64 rounded to nearest) and
/// integers.
pub(super) fn to_f32(dtype: Dtype, src: &[u8], dst: &mut [f32]) {
    match dtype {
        Dtype::Float {
            size: 4,
            big_endian: false,
        } => each(src, dst, f32::from_le_bytes),
        Dtype::Float {
            size: 4,
            big_endian: true,
        } => each(src, dst, f32::from_be_bytes),
        Dtype::Float {
            big_endian: false, ..
        } => each(src, dst, |b| f64::from_le_bytes(b) as f32),
        Dtype::Float {
            big_endian: true, ..
        } => each(src, dst, |b| f64::from_be_bytes(b) as f32),
        Dtype::Int { .. } => ints(dtype, src, dst, |v| v as f32),
    }
}

/// Converts integer elements to `i64` (unsigned 64-bit values above
/// `i64::MAX` wrap; the caller refuses them).
pub(super) fn to_i64(dtype: Dtype, src: &[u8], dst: &mut [i64]) {
    ints(dtype, src, dst, |v| v);
}

/// Applies `conv` to each integer element of `src`, widened to `i64`.
fn ints<T>(dtype: Dtype, src: &[u8], dst: &mut [T], conv: impl Fn(i64) -> T) {
    let Dtype::Int {
        size,
        signed,
        big_endian: be,
    } = dtype
    else {
        unreachable!("an integer type")
    };
    match size {
        1 => each(src, dst, |b: [u8; 1]| conv(widen_int(b, be, signed))),
        2 => each(src, dst, |b: [u8; 2]| conv(widen_int(b, be, signed))),
        4 => each(src, dst, |b: [u8; 4]| conv(widen_int(b, be, signed))),
        _ => each(src, dst, |b: [u8; 8]| conv(widen_int(b, be, signed))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_undone() {
        // Two 4-byte elements 0x04030201 and 0x08070605, shuffled, then a
        // stray byte.
        let shuffled = [1, 5, 2, 6, 3, 7, 4, 8, 9];
        assert_eq!(unshuffle(&shuffled, 4), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(unshuffle(&[1, 2, 3], 1), [1, 2, 3]);
    }

    #[test]
    fn inflate_stops_at_the_chunk_size() {
        use flate2::{write::ZlibEncoder, Compression};
        use std::io::Write;
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&[7u8; 1000]).unwrap();
        let packed = z.finish().unwrap();
        assert_eq!(inflate(&packed, 1000, 0).unwrap().len(), 1000);
        // A stream longer than a chunk is cut one byte past it (then refused
        // by the size check).
        assert_eq!(inflate(&packed, 10, 0).unwrap().len(), 11);
        let e = inflate(&packed[..packed.len() / 2], 1000, 77).unwrap_err();
        assert!(e.to_string().contains("byte offset 77"), "{e}");
    }
}

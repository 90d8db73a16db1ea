//! The index file format: a checked header, then named sections whose data
//! start at 64-byte offsets (so large arrays can be mapped in place), each
//! with its own CRC-32, then an end marker with the file's length.
//!
//! Layout (version 1), little-endian:
//! `b"VAINDEX\0"`, `u32` version, `u64` header length, `u32` header CRC,
//! the header; then per section: padding to 64, `[u8; 8]` tag, `u8`
//! element size, 7 zero bytes, `u64` element count, `u32` CRC of the data,
//! padding to 64, the data; then padding to 64, `b"VAEND\0\0\0"` and the
//! `u64` length of everything before it.
//!
//! Files are written to a temporary name beside the target, synced, then
//! renamed over it (and the directory synced), so a crash leaves the old
//! file or the new one, never half of one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::core::error::{Error, Result};
use crate::runtime::tensor::MappedF32;

const MAGIC: &[u8; 8] = b"VAINDEX\0";
const END: &[u8; 8] = b"VAEND\0\0\0";
/// The format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;
const ALIGN: usize = 64;

/// A file being written: bytes go to `<path>.tmp`.
pub(crate) struct Writer {
    /// The open temporary file (taken by `finish`).
    out: Option<BufWriter<File>>,
    at: usize,
    tmp: PathBuf,
    path: PathBuf,
}

impl Writer {
    /// Starts a file at `path` with `header` (the caller's fields).
    pub fn create(path: &Path, header: &[u8]) -> Result<Self> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(|e| io_error(path, 0, &e))?;
        let mut w = Self {
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            at: 0,
            tmp,
            path: path.to_path_buf(),
        };
        w.put(MAGIC)?;
        w.put(&VERSION.to_le_bytes())?;
        w.put(&(header.len() as u64).to_le_bytes())?;
        w.put(&crc32fast::hash(header).to_le_bytes())?;
        w.put(header)?;
        Ok(w)
    }

    /// Appends a section of plain values.
    pub fn section<T: bytemuck::Pod>(&mut self, tag: &[u8; 8], data: &[T]) -> Result<()> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        self.pad()?;
        self.put(tag)?;
        self.put(&[std::mem::size_of::<T>() as u8, 0, 0, 0, 0, 0, 0, 0])?;
        self.put(&(data.len() as u64).to_le_bytes())?;
        self.put(&crc32fast::hash(bytes).to_le_bytes())?;
        self.pad()?;
        self.put(bytes)
    }

    /// Ends the file, syncs it and renames it over the target.
    pub fn finish(mut self) -> Result<()> {
        self.pad()?;
        let len = self.at as u64;
        self.put(END)?;
        self.put(&len.to_le_bytes())?;
        let path = self.path.clone();
        let out = self.out.take().expect("finish runs once");
        let file = out
            .into_inner()
            .map_err(|e| io_error(&path, len, e.error()))?;
        file.sync_all().map_err(|e| io_error(&path, len, &e))?;
        drop(file);
        std::fs::rename(&self.tmp, &path).map_err(|e| io_error(&path, len, &e))?;
        self.tmp = PathBuf::new();
        sync_dir(&path);
        Ok(())
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out
            .as_mut()
            .expect("open until finish")
            .write_all(b)
            .map_err(|e| io_error(&self.path, self.at as u64, &e))?;
        self.at += b.len();
        Ok(())
    }

    fn pad(&mut self) -> Result<()> {
        let n = self.at.next_multiple_of(ALIGN) - self.at;
        self.put(&[0u8; ALIGN][..n])
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // A writer that did not finish leaves no temporary file behind.
        if !self.tmp.as_os_str().is_empty() {
            drop(self.out.take());
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Syncs the directory holding `path` so the rename itself is durable
/// (best effort: not every platform can open a directory).
pub(crate) fn sync_dir(path: &Path) {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Ok(d) = File::open(dir.unwrap_or(Path::new("."))) {
        let _ = d.sync_all();
    }
}

pub(crate) fn io_error(path: &Path, offset: u64, e: &std::io::Error) -> Error {
    Error::BadIndexFile {
        path: path.display().to_string(),
        offset,
        reason: e.to_string(),
    }
}

/// A file mapped into memory (read-only; index files are replaced by
/// rename, never written in place), checked as it is parsed. Sections are
/// copied out, or handed out in place ([`section_mapped`](Self::section_mapped)).
pub(crate) struct Reader {
    bytes: Arc<Mmap>,
    at: usize,
    path: String,
}

impl Reader {
    /// Reads `path`, checks magic, version, end marker, length and header
    /// CRC; returns the reader (at the first section) and the header.
    pub fn open(path: &Path) -> Result<(Self, Vec<u8>)> {
        let file = File::open(path).map_err(|e| io_error(path, 0, &e))?;
        let len = file.metadata().map_err(|e| io_error(path, 0, &e))?.len();
        if len < 16 {
            return Err(Error::BadIndexFile {
                path: path.display().to_string(),
                offset: len,
                reason: format!("truncated: {len} bytes, not an index file"),
            });
        }
        // SAFETY: the map is read-only and index files are only ever
        // replaced by rename, so the mapped bytes do not change under it.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io_error(path, 0, &e))?;
        let mut r = Self {
            bytes: Arc::new(map),
            at: 0,
            path: path.display().to_string(),
        };
        if r.take(8)? != MAGIC {
            return Err(r.bad(0, "not an index file (wrong magic bytes)"));
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(r.bad(
                8,
                format!("format version {version}; this build reads version {VERSION}"),
            ));
        }
        r.check_end()?;
        let len = r.u64()?;
        let crc = r.u32()?;
        let at = r.at;
        let header = r.take(len)?.to_vec();
        if crc32fast::hash(&header) != crc {
            return Err(r.bad(at as u64, "header checksum mismatch: the file is damaged"));
        }
        Ok((r, header))
    }

    /// The end marker and the length it records.
    fn check_end(&self) -> Result<()> {
        let n = self.bytes.len();
        let tail = n.checked_sub(16).map(|s| &self.bytes[s..]);
        let ok = tail.is_some_and(|t| {
            &t[..8] == END && u64::from_le_bytes(t[8..].try_into().expect("8")) == (n - 16) as u64
        });
        if !ok {
            return Err(self.bad(
                n as u64,
                "truncated: the end marker is missing (the file ends mid-write)",
            ));
        }
        Ok(())
    }

    /// The next section, which must carry `tag` and elements of `T`.
    pub fn section<T: bytemuck::Pod>(&mut self, tag: &[u8; 8]) -> Result<Vec<T>> {
        let (at, count) = self.section_at::<T>(tag)?;
        let data = &self.bytes[at..at + count * std::mem::size_of::<T>()];
        let mut out = vec![T::zeroed(); count];
        bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(data);
        Ok(out)
    }

    /// The next section of `f32` values, which must carry `tag`, left in
    /// the map (checked, not copied).
    pub fn section_mapped(&mut self, tag: &[u8; 8]) -> Result<MappedF32> {
        let (at, count) = self.section_at::<f32>(tag)?;
        MappedF32::new(self.bytes.clone(), at, count)
            .ok_or_else(|| self.bad(at as u64, "section data outside the file"))
    }

    /// Checks the next section (tag, element size, checksum) and returns
    /// where its data starts and how many elements it holds.
    fn section_at<T: bytemuck::Pod>(&mut self, tag: &[u8; 8]) -> Result<(usize, usize)> {
        self.skip_pad()?;
        let start = self.at as u64;
        if self.take(8)? != tag {
            let want = String::from_utf8_lossy(tag)
                .trim_end_matches('\0')
                .to_string();
            return Err(self.bad(start, format!("expected the '{want}' section")));
        }
        let size = self.take(8)?[0] as usize;
        if size != std::mem::size_of::<T>() {
            return Err(self.bad(
                start + 8,
                format!("element size {size}, expected {}", std::mem::size_of::<T>()),
            ));
        }
        let count = self.u64()?;
        let crc = self.u32()?;
        self.skip_pad()?;
        let at = self.at as u64;
        let bytes = count
            .checked_mul(size as u64)
            .ok_or_else(|| self.bad(start + 16, format!("{count} elements overflow")))?;
        let data = self.take(bytes)?;
        if crc32fast::hash(data) != crc {
            return Err(self.bad(at, "section checksum mismatch: the file is damaged"));
        }
        Ok((at as usize, count as usize))
    }

    /// Checks that only the end marker is left.
    pub fn finish(mut self) -> Result<()> {
        self.skip_pad()?;
        if self.at + 16 != self.bytes.len() {
            return Err(self.bad(self.at as u64, "unexpected data after the last section"));
        }
        Ok(())
    }

    /// An error at `offset` of this file.
    pub fn bad(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::BadIndexFile {
            path: self.path.clone(),
            offset,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: u64) -> Result<&[u8]> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.at.checked_add(n))
            .filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            let left = self.bytes.len() - self.at;
            return Err(self.bad(
                self.at as u64,
                format!("truncated: {n} bytes needed, {left} left"),
            ));
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn skip_pad(&mut self) -> Result<()> {
        let n = self.at.next_multiple_of(ALIGN) - self.at;
        self.take(n as u64).map(drop)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
}

/// Little-endian header fields, written in order.
#[derive(Default)]
pub(crate) struct Fields(pub Vec<u8>);

impl Fields {
    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends an `f32`.
    pub fn f32(&mut self, v: f32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends a length-prefixed string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
}

/// Header fields read in order; an error names the header offset.
pub(crate) struct FieldReader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> FieldReader<'a> {
    /// Reads fields of `header`.
    pub fn new(header: &'a [u8]) -> Self {
        Self { b: header, at: 0 }
    }
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let s = end
            .map(|e| &self.b[self.at..e])
            .ok_or_else(|| format!("header truncated at its byte {}", self.at))?;
        self.at += n;
        Ok(s)
    }
    /// The next `u64`.
    pub fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    /// The next `f32`.
    pub fn f32(&mut self) -> std::result::Result<f32, String> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    /// The next string.
    pub fn str(&mut self) -> std::result::Result<String, String> {
        let n = usize::try_from(self.u64()?).map_err(|_| "string length".to_string())?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "a header string is not UTF-8".into())
    }
    /// Whether every field was read.
    pub fn done(&self) -> bool {
        self.at == self.b.len()
    }
}

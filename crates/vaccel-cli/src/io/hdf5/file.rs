//! The file under an HDF5 reader: bounds-checked reads at byte offsets,
//! a cursor over the bytes read that names the offset of every problem, and
//! the superblock.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{bail, Context as _, Result};

use crate::io::source::open_input;

/// The eight bytes an HDF5 superblock starts with.
const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// An address that points nowhere (all bits set).
pub(super) const UNDEFINED: u64 = u64::MAX;

/// Where the bytes come from.
enum Source {
    /// A file on disk.
    File(File),
    /// Bytes in memory (tests).
    #[cfg(test)]
    Memory(Vec<u8>),
}

/// An open HDF5 file: its length, the superblock's sizes and base address.
pub(super) struct H5File {
    source: Source,
    /// Length of the file in bytes.
    pub len: u64,
    /// Bytes of an address ("size of offsets").
    pub offset_size: usize,
    /// Bytes of a length ("size of lengths").
    pub length_size: usize,
    /// Absolute offset that addresses are relative to.
    base: u64,
    /// Address of the root group's object header.
    pub root: u64,
}

impl H5File {
    /// Opens `path` and reads its superblock (versions 0 to 3).
    pub fn open(path: &Path) -> Result<Self> {
        let (file, len) = open_input(path)?;
        Self::new(Source::File(file), len)
    }

    /// Reads the superblock of a file held in memory.
    #[cfg(test)]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        let len = bytes.len() as u64;
        Self::new(Source::Memory(bytes), len)
    }

    /// Reads the superblock of `source`, of `len` bytes.
    fn new(source: Source, len: u64) -> Result<Self> {
        let mut f = H5File {
            source,
            len,
            offset_size: 8,
            length_size: 8,
            base: 0,
            root: UNDEFINED,
        };
        let at = f.find_superblock()?;
        f.read_superblock(at)?;
        Ok(f)
    }

    /// The offset of the superblock: 0, 512, 1024, 2048, ... (a user block
    /// may come first).
    fn find_superblock(&mut self) -> Result<u64> {
        let mut at = 0u64;
        while at + 8 <= self.len {
            if self.read(at, 8, "superblock signature")?.bytes == SIGNATURE {
                return Ok(at);
            }
            at = if at == 0 { 512 } else { at * 2 };
        }
        bail!(
            "not an HDF5 file (no superblock signature \\x89HDF\\r\\n\\x1a\\n at byte offset 0, \
             512, 1024, ...)"
        )
    }

    /// Reads the superblock at `at`: sizes, base address, end of file and
    /// the root group's object header.
    fn read_superblock(&mut self, at: u64) -> Result<()> {
        let mut c = self.read(at, 16.min(self.len - at), "superblock")?;
        c.skip(8)?;
        let version = c.u8()?;
        let sizes_at = match version {
            0 | 1 => 13,
            2 | 3 => 9,
            _ => bail!(
                "unsupported HDF5 superblock version {version} at byte offset {} \
                 (supported: 0 to 3)",
                at + 8
            ),
        };
        c.skip(sizes_at - 9)?;
        let (o, l) = (c.u8()?, c.u8()?);
        for (what, size, delta) in [("offsets", o, 0), ("lengths", l, 1)] {
            if size != 4 && size != 8 {
                bail!(
                    "unsupported size of {what} {size} in the superblock at byte offset {} \
                     (supported: 4 or 8)",
                    at + sizes_at as u64 + delta
                );
            }
        }
        (self.offset_size, self.length_size) = (o as usize, l as usize);
        // From the base address on: base, free space or extension, end of
        // file, then the driver block and the root group's symbol table entry
        // (name, object header) or the root's object header.
        let (fields_at, count) = match version {
            0 => (24, 6),
            1 => (28, 6),
            _ => (12, 4),
        };
        let mut c = self.read(at + fields_at, count * o as u64, "superblock")?;
        self.base = c.raw_address()?;
        let _ = c.raw_address()?;
        let eof_at = c.offset_of(0);
        let eof = c.raw_address()?;
        if version < 2 {
            c.skip(2 * o as usize)?;
        }
        let root_at = c.offset_of(0);
        let root = c.raw_address()?;
        self.check_eof(eof, eof_at)?;
        self.root = self.absolute(root, "root group address", root_at)?;
        Ok(())
    }

    /// Refuses a file shorter than the end-of-file address says.
    fn check_eof(&self, eof: u64, field_at: u64) -> Result<()> {
        let end = self.base.saturating_add(eof);
        if end > self.len {
            bail!(
                "truncated file: the superblock (end-of-file address at byte offset {field_at}) \
                 says the file ends at byte offset {end}, but it has {} bytes",
                self.len
            );
        }
        Ok(())
    }

    /// The absolute offset of `addr`, or an error for an undefined address.
    fn absolute(&self, addr: u64, what: &str, field_at: u64) -> Result<u64> {
        if addr == UNDEFINED {
            bail!("{what} at byte offset {field_at} is undefined");
        }
        match self.base.checked_add(addr) {
            Some(a) if a < self.len => Ok(a),
            _ => bail!(
                "corrupt file: {what} at byte offset {field_at} points to byte offset {addr}, \
                 past the end of the file ({} bytes)",
                self.len
            ),
        }
    }

    /// Reads `n` bytes at byte offset `at`, or says that the file is too
    /// short for them.
    pub fn read(&mut self, at: u64, n: u64, what: &str) -> Result<Block> {
        match at.checked_add(n) {
            Some(end) if end <= self.len => {}
            _ => bail!(
                "truncated or corrupt file: the {what} at byte offset {at} needs {n} bytes, \
                 but the file ends at byte offset {}",
                self.len
            ),
        }
        let bytes = match &mut self.source {
            Source::File(file) => {
                let mut bytes = vec![0u8; n as usize];
                file.seek(SeekFrom::Start(at))
                    .and_then(|_| file.read_exact(&mut bytes))
                    .with_context(|| format!("read of {n} bytes at byte offset {at} failed"))?;
                bytes
            }
            #[cfg(test)]
            Source::Memory(all) => all[at as usize..(at + n) as usize].to_vec(),
        };
        Ok(Block {
            at,
            bytes,
            pos: 0,
            offset_size: self.offset_size,
            length_size: self.length_size,
            base: self.base,
            what: what.to_string(),
        })
    }
}

/// Bytes read from the file at a known offset, with a cursor. Every read
/// past its end is an error naming the structure and the byte offset.
#[derive(Clone)]
pub(super) struct Block {
    /// Byte offset of `bytes[0]` in the file.
    pub at: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The cursor, an index into `bytes`.
    pos: usize,
    offset_size: usize,
    length_size: usize,
    base: u64,
    /// What the bytes hold, for messages.
    what: String,
}

impl Block {
    /// The next `n` bytes as a block of their own (same sizes and label).
    pub fn sub_block(&mut self, n: usize) -> Result<Block> {
        let at = self.offset_of(0);
        let bytes = self.take(n)?.to_vec();
        Ok(Block {
            at,
            bytes,
            pos: 0,
            ..self.clone()
        })
    }

    /// The same bytes described as `what` in messages.
    pub fn labelled(mut self, what: &str) -> Self {
        self.what = what.to_string();
        self
    }

    /// The file offset of `bytes[pos + delta]`.
    pub fn offset_of(&self, delta: usize) -> u64 {
        self.at + (self.pos + delta) as u64
    }

    /// Bytes left after the cursor.
    pub fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` bytes, or an error naming the offset.
    pub fn take(&mut self, n: usize) -> Result<&[u8]> {
        if n > self.left() {
            bail!(
                "corrupt file: the {} ends early at byte offset {} ({n} bytes needed, {} left)",
                self.what,
                self.offset_of(0),
                self.left()
            );
        }
        self.pos += n;
        Ok(&self.bytes[self.pos - n..self.pos])
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }

    /// A little-endian unsigned integer of `n` bytes (1 to 8).
    pub fn uint(&mut self, n: usize) -> Result<u64> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(self.uint(2)? as u16)
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(self.uint(4)? as u32)
    }

    /// A length field ("size of lengths" bytes).
    pub fn length(&mut self) -> Result<u64> {
        self.uint(self.length_size)
    }

    /// An address field as stored, with all bits set read as [`UNDEFINED`].
    pub fn raw_address(&mut self) -> Result<u64> {
        let n = self.offset_size;
        let v = self.uint(n)?;
        Ok(if n < 8 && v == (1u64 << (8 * n)) - 1 {
            UNDEFINED
        } else {
            v
        })
    }

    /// An address field made absolute ([`UNDEFINED`] stays undefined).
    pub fn address(&mut self) -> Result<u64> {
        let v = self.raw_address()?;
        Ok(if v == UNDEFINED {
            v
        } else {
            v.saturating_add(self.base)
        })
    }

    /// Checks a four-byte signature at the cursor.
    pub fn signature(&mut self, want: &[u8; 4]) -> Result<()> {
        let at = self.offset_of(0);
        let got = self.take(4)?.to_vec();
        if got != want {
            bail!(
                "corrupt file: expected the signature '{}' of a {} at byte offset {at}, found {}",
                String::from_utf8_lossy(want),
                self.what,
                show_bytes(&got)
            );
        }
        Ok(())
    }

    /// An error about the field that starts `back` bytes before the cursor.
    pub fn corrupt(&self, back: usize, problem: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!(
            "corrupt or unsupported file: {problem} (the {} at byte offset {})",
            self.what,
            self.offset_of(0).saturating_sub(back as u64)
        )
    }
}

/// Bytes as printable text where they are, else as hex.
fn show_bytes(b: &[u8]) -> String {
    if b.iter().all(|c| c.is_ascii_alphanumeric()) {
        format!("'{}'", String::from_utf8_lossy(b))
    } else {
        b.iter()
            .map(|c| format!("{c:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

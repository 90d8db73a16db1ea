//! The file format of fitted quantizers: a magic, a format version, the
//! kind, little-endian fields and values, and a SHA-256 of everything
//! before it, so a wrong, truncated or damaged file is refused with a clear
//! error.
//!
//! Layout (version 1): `b"VAQUANT\0"`, `u32` version, `u8` kind (1 scalar,
//! 2 binary, 3 product), the kind's fields, then 32 bytes of SHA-256.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::core::error::{Error, Result};
use crate::core::quantize::{
    BinaryQuantizer, ProductQuantizer, Quantizer, ScalarBits, ScalarOptions, ScalarQuantizer,
    ScalarRange, ScalarScope,
};

const MAGIC: &[u8; 8] = b"VAQUANT\0";
const VERSION: u32 = 1;

fn bad(reason: impl Into<String>) -> Error {
    Error::invalid("quantizer file", "contents", reason)
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| {
                bad(format!(
                    "truncated: a field at byte {} needs {n} bytes, {} remain",
                    self.at,
                    self.b.len() - self.at
                ))
            })?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<usize> {
        let v = u64::from_le_bytes(self.take(8)?.try_into().expect("8"));
        usize::try_from(v).map_err(|_| bad(format!("size {v} does not fit this machine")))
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let bytes = n
            .checked_mul(4)
            .ok_or_else(|| bad("array length overflows"))?;
        Ok(self
            .take(bytes)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
            .collect())
    }
}

fn put_f32s(out: &mut Vec<u8>, v: &[f32]) {
    out.extend_from_slice(&(v.len() as u64).to_le_bytes());
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

impl Quantizer {
    /// The file bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut o = MAGIC.to_vec();
        o.extend_from_slice(&VERSION.to_le_bytes());
        match self {
            Quantizer::Scalar(s) => {
                o.push(1);
                o.extend_from_slice(&(s.dim as u64).to_le_bytes());
                o.push(match s.opts.bits {
                    ScalarBits::Int8 => 8,
                    ScalarBits::Int4 => 4,
                });
                o.push(match s.opts.range {
                    ScalarRange::Symmetric => 0,
                    ScalarRange::Asymmetric => 1,
                });
                o.push(match s.opts.scope {
                    ScalarScope::PerChannel => 0,
                    ScalarScope::PerVector => 1,
                });
                o.extend_from_slice(&s.opts.clip.unwrap_or(0.0).to_le_bytes());
                put_f32s(&mut o, &s.scale);
                put_f32s(&mut o, &s.inv);
                put_f32s(&mut o, &s.offset);
            }
            Quantizer::Binary(b) => {
                o.push(2);
                put_f32s(&mut o, &b.thresholds);
            }
            Quantizer::Product(p) => {
                o.push(3);
                o.extend_from_slice(&(p.dim as u64).to_le_bytes());
                o.extend_from_slice(&(p.m as u64).to_le_bytes());
                o.extend_from_slice(&p.nbits.to_le_bytes());
                put_f32s(&mut o, &p.centroids);
            }
        }
        let h = Sha256::digest(&o);
        o.extend_from_slice(&h);
        o
    }

    /// Parses file bytes, checking magic, version, checksum and every size.
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        if b.len() < MAGIC.len() || &b[..MAGIC.len()] != MAGIC {
            return Err(bad("not a quantizer file (wrong magic bytes)"));
        }
        if b.len() < MAGIC.len() + 4 + 1 + 32 {
            return Err(bad(format!("truncated: {} bytes", b.len())));
        }
        let (body, sum) = b.split_at(b.len() - 32);
        let mut r = Reader {
            b: body,
            at: MAGIC.len(),
        };
        let version = r.u32()?;
        if version != VERSION {
            return Err(bad(format!(
                "format version {version}; this build reads version {VERSION}"
            )));
        }
        if Sha256::digest(body).as_slice() != sum {
            return Err(bad("checksum mismatch: the file is truncated or damaged"));
        }
        let q = match r.u8()? {
            1 => {
                let dim = r.u64()?;
                let bits = match r.u8()? {
                    8 => ScalarBits::Int8,
                    4 => ScalarBits::Int4,
                    v => return Err(bad(format!("scalar bits {v} (expected 8 or 4)"))),
                };
                let range = match r.u8()? {
                    0 => ScalarRange::Symmetric,
                    1 => ScalarRange::Asymmetric,
                    v => return Err(bad(format!("scalar range {v}"))),
                };
                let scope = match r.u8()? {
                    0 => ScalarScope::PerChannel,
                    1 => ScalarScope::PerVector,
                    v => return Err(bad(format!("scalar scope {v}"))),
                };
                let clip = f32::from_le_bytes(r.take(4)?.try_into().expect("4"));
                let mut arr = || -> Result<Vec<f32>> {
                    let n = r.u64()?;
                    r.f32s(n)
                };
                let (scale, inv, offset) = (arr()?, arr()?, arr()?);
                let want = if scope == ScalarScope::PerChannel {
                    dim
                } else {
                    0
                };
                if dim == 0 || [&scale, &inv, &offset].iter().any(|v| v.len() != want) {
                    return Err(bad(format!(
                        "scalar quantizer of dimension {dim} with {} parameters per array",
                        scale.len()
                    )));
                }
                Quantizer::Scalar(ScalarQuantizer {
                    opts: ScalarOptions {
                        bits,
                        range,
                        scope,
                        clip: (clip != 0.0).then_some(clip),
                    },
                    dim,
                    scale,
                    inv,
                    offset,
                })
            }
            2 => {
                let n = r.u64()?;
                Quantizer::Binary(BinaryQuantizer::with_thresholds(r.f32s(n)?)?)
            }
            3 => {
                let dim = r.u64()?;
                let m = r.u64()?;
                let nbits = r.u32()?;
                let n = r.u64()?;
                let c = r.f32s(n)?;
                Quantizer::Product(ProductQuantizer::from_centroids(dim, m, nbits, c)?)
            }
            k => return Err(bad(format!("unknown quantizer kind {k}"))),
        };
        if r.at != body.len() {
            return Err(bad(format!(
                "{} unexpected bytes after the quantizer",
                body.len() - r.at
            )));
        }
        Ok(q)
    }
}

/// Writes quantizer bytes to `path`: a temporary file beside it, then a
/// rename, so the path never holds half a file.
pub(crate) fn write_quantizer_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |e: std::io::Error| Error::invalid("quantizer file", path.display(), e.to_string());
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

/// Reads a quantizer file, naming the path in any error.
pub(crate) fn read_quantizer_file(path: &Path) -> Result<Quantizer> {
    let b = std::fs::read(path)
        .map_err(|e| Error::invalid("quantizer file", path.display(), e.to_string()))?;
    Quantizer::from_bytes(&b).map_err(|e| match e {
        Error::InvalidParameter { reason, .. } => {
            Error::invalid("quantizer file", path.display(), reason)
        }
        e => e,
    })
}

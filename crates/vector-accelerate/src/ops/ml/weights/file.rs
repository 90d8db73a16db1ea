//! safetensors files: parsing into [`Tensor`]s and serialising them, with
//! every problem reported as [`Error::BadWeightFile`].
//!
//! The format: an 8-byte little-endian header length `n`, `n` bytes of JSON
//! (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
//! ..., "__metadata__": {..}}`), then the tensors' bytes, offsets counted
//! from the end of the header.

use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensorError, TensorInfo, TensorView};
use safetensors::SafeTensors;

use super::tensor::Tensor;
use crate::core::dtype::DType;
use crate::core::error::{Error, Result};

/// The path shown for an in-memory buffer.
pub(crate) const IN_MEMORY: &str = "<bytes>";

pub(crate) fn bad(path: &str, reason: impl Into<String>) -> Error {
    Error::BadWeightFile {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn from_format(d: Dtype) -> Option<DType> {
    match d {
        Dtype::F32 => Some(DType::F32),
        Dtype::F16 => Some(DType::F16),
        Dtype::BF16 => Some(DType::Bf16),
        Dtype::I8 => Some(DType::I8),
        Dtype::U8 => Some(DType::U8),
        _ => None,
    }
}

fn to_format(d: DType) -> Dtype {
    match d {
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::Bf16 => Dtype::BF16,
        DType::I8 => Dtype::I8,
        DType::U8 => Dtype::U8,
    }
}

/// The parser's error as a sentence with the file's numbers.
fn describe(e: SafeTensorError, bytes: &[u8]) -> String {
    let header_len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    match e {
        SafeTensorError::HeaderTooSmall => format!(
            "truncated: {} bytes, fewer than the 8-byte header length",
            bytes.len()
        ),
        SafeTensorError::InvalidHeaderLength => format!(
            "truncated or invalid header length: the header claims {} bytes but {} follow the length field",
            header_len.unwrap_or(0),
            bytes.len().saturating_sub(8)
        ),
        SafeTensorError::HeaderTooLarge => format!(
            "invalid header length {} (over the format's limit of 100,000,000 bytes)",
            header_len.unwrap_or(0)
        ),
        SafeTensorError::MetadataIncompleteBuffer => format!(
            "truncated or trailing data: the {} data bytes after the {}-byte header do not end where the last tensor's offsets end",
            bytes
                .len()
                .saturating_sub(8 + header_len.unwrap_or(0) as usize),
            header_len.unwrap_or(0)
        ),
        SafeTensorError::InvalidHeader(e) => format!("invalid header: not UTF-8 ({e})"),
        SafeTensorError::InvalidHeaderDeserialization(e) => {
            format!("invalid header: not the JSON of a tensor table ({e})")
        }
        SafeTensorError::InvalidOffset(_) | SafeTensorError::TensorInvalidInfo => {
            match header_len.and_then(|n| diagnose_offsets(bytes, n as usize)) {
                Some(why) => format!("invalid header: {why}"),
                None => format!("invalid header: {e}"),
            }
        }
        other => format!("invalid header: {other}"),
    }
}

/// Which tensor's data offsets are wrong, and how: the first (by offset)
/// whose range does not start where the previous one ended or whose length
/// is not what its shape and dtype need. Only for the message of a header
/// the parser refused.
fn diagnose_offsets(bytes: &[u8], n: usize) -> Option<String> {
    let header = bytes.get(8..8usize.checked_add(n)?)?;
    let table: std::collections::HashMap<String, serde_json::Value> =
        serde_json::from_slice(header).ok()?;
    let mut infos: Vec<(String, TensorInfo)> = table
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .filter_map(|(k, v)| Some((k, serde_json::from_value::<TensorInfo>(v).ok()?)))
        .collect();
    infos.sort_by_key(|(_, i)| i.data_offsets);
    let mut end = 0usize;
    for (name, info) in infos {
        let (s, e) = info.data_offsets;
        let shape = &info.shape;
        let dtype = info.dtype;
        if s != end || e < s {
            return Some(format!(
                "tensor '{name}' has data offsets [{s}, {e}], but the data before it end at {end}"
            ));
        }
        let bits = shape
            .iter()
            .try_fold(dtype.bitsize(), |a, &d| a.checked_mul(d));
        match bits {
            Some(b) if b / 8 == e - s => {}
            Some(b) => {
                return Some(format!(
                    "tensor '{name}' ({dtype:?}, shape {shape:?}) has data offsets [{s}, {e}] ({} bytes), but its shape and dtype need {} bytes",
                    e - s,
                    b / 8
                ))
            }
            None => return Some(format!("tensor '{name}': shape {shape:?} is too large")),
        }
        end = e;
    }
    None
}

/// Every tensor of a safetensors buffer, sorted by name (all or nothing).
pub(crate) fn parse(bytes: &[u8], path: &str) -> Result<Vec<Tensor>> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(path, describe(e, bytes)))?;
    let mut out = Vec::with_capacity(st.len());
    let mut views = st.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, view) in views {
        let dtype = from_format(view.dtype()).ok_or_else(|| {
            bad(
                path,
                format!(
                    "tensor '{name}' has dtype {:?}, which is not supported (supported: F32, F16, BF16, I8, U8)",
                    view.dtype()
                ),
            )
        })?;
        let t = Tensor::new(name.clone(), dtype, view.shape(), view.data().to_vec())
            .map_err(|e| bad(path, format!("tensor '{name}': {e}")))?;
        out.push(t);
    }
    Ok(out)
}

/// The safetensors bytes of `tensors` (the format orders them by dtype
/// alignment, then name).
pub(crate) fn serialize(tensors: &[&Tensor], path: &str) -> Result<Vec<u8>> {
    let mut views = Vec::with_capacity(tensors.len());
    for t in tensors {
        let v = TensorView::new(to_format(t.dtype()), t.shape().to_vec(), t.as_bytes())
            .map_err(|e| bad(path, format!("tensor '{}': {e}", t.name())))?;
        views.push((t.name().to_string(), v));
    }
    safetensors::serialize(views, None).map_err(|e| bad(path, e.to_string()))
}

/// Reads a whole file.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| bad(&path.display().to_string(), format!("cannot read: {e}")))
}

/// Writes `bytes` to `path` through a temporary file in the same folder
/// and a rename, so an existing file is replaced whole or not at all.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let shown = path.display().to_string();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let res = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(bad(&shown, format!("cannot write: {e}")));
    }
    Ok(())
}

//! ML kernels and weights: the weight store (safetensors round
//! trips of every dtype, a file written by hand, typed errors, memory
//! accounting and the device cache), Xavier initialisation, and PCA against
//! an fp64 reference.

mod neural_quantizer;
mod pca;
mod weights;
mod xavier;

use std::path::PathBuf;

/// A file path in the system's temporary folder, unique to this process
/// and test, removed when dropped.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(test: &str) -> Self {
        Self(std::env::temp_dir().join(format!("va-it-{}-{test}.safetensors", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A safetensors file assembled by hand: the 8-byte little-endian header
/// length, the JSON header (padded with spaces to a multiple of 8, as
/// writers do), then the data.
pub fn safetensors_by_hand(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

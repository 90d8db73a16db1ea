//! Helpers shared by the end-to-end tests of the `vaccel` binary: a
//! temporary folder, a deterministic generator, `.npy` writing and reading,
//! and running the binary.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_vaccel");

/// A fresh folder under the system temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("vaccel-cli-test-{}-{name}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    pub fn arg(&self, file: &str) -> String {
        self.path(file).to_str().unwrap().to_string()
    }

    /// File names in the folder, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A deterministic generator of test values.
pub struct Lcg(pub u64);

impl Lcg {
    /// Uniform in [-1, 1).
    pub fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next()).collect()
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| (self.next() * 128.0 + 128.0) as u8)
            .collect()
    }
}

/// An `.npy` version 1.0 file with a raw header dict and data.
pub fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let fortran = if fortran { "True" } else { "False" };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header);
    out.extend(data);
    out
}

pub fn write_f32(path: &Path, cols: usize, data: &[f32]) {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let shape = format!("({}, {cols})", data.len() / cols);
    fs::write(path, npy_bytes("<f4", false, &shape, &bytes)).unwrap();
}

pub fn write_u8(path: &Path, cols: usize, data: &[u8]) {
    let shape = format!("({}, {cols})", data.len() / cols);
    fs::write(path, npy_bytes("|u1", false, &shape, data)).unwrap();
}

pub fn write_fvecs(path: &Path, dim: usize, data: &[f32]) {
    let mut out = Vec::new();
    for row in data.chunks(dim) {
        out.extend((dim as i32).to_le_bytes());
        out.extend(row.iter().flat_map(|v| v.to_le_bytes()));
    }
    fs::write(path, out).unwrap();
}

/// Reads a 2-D `.npy` written by the binary: (rows, cols, data bytes).
pub fn read_npy(path: &Path, descr: &str) -> (usize, usize, Vec<u8>) {
    let bytes = fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "header not aligned");
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(header.contains(&format!("'descr': '{descr}'")), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap();
    let shape = &shape[..shape.find(')').unwrap()];
    let dims: Vec<usize> = shape
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    assert_eq!(dims.len(), 2);
    (dims[0], dims[1], bytes[10 + hlen..].to_vec())
}

pub fn read_ids(path: &Path) -> (usize, usize, Vec<i64>) {
    let (r, c, b) = read_npy(path, "<i8");
    let v: Vec<i64> = b
        .chunks_exact(8)
        .map(|x| i64::from_le_bytes(x.try_into().unwrap()))
        .collect();
    assert_eq!(v.len(), r * c);
    (r, c, v)
}

pub fn read_dists(path: &Path) -> Vec<f32> {
    let (r, c, b) = read_npy(path, "<f4");
    let v: Vec<f32> = b
        .chunks_exact(4)
        .map(|x| f32::from_le_bytes(x.try_into().unwrap()))
        .collect();
    assert_eq!(v.len(), r * c);
    v
}

pub fn vaccel(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("VECTOR_ACCELERATE_DEVICE")
        .output()
        .unwrap()
}

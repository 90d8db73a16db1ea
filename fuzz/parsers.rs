//! The parsers the fuzz targets drive, shared with the replay test that
//! runs every kept input in CI (`tests/fuzz_replay.rs`). Each takes
//! arbitrary bytes and must end with the parsed value or a typed error:
//! never a panic, a hang or an allocation the bytes do not justify.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use vector_accelerate::index::{DurableIndex, Index};
use vector_accelerate::ml::WeightStore;
use vector_accelerate::quantize::Quantizer;
use vector_accelerate::{Context, Metric};

/// A scratch folder of this process (one per thread, so targets and tests
/// may run in parallel).
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "va-fuzz-{}-{name}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).expect("scratch folder");
    d
}

/// `bytes` as an index file, loaded on the CPU.
pub fn index_file(dir: &Path, bytes: &[u8]) {
    let path = dir.join("fuzz.vai");
    std::fs::write(&path, bytes).expect("scratch file");
    let _ = Index::load(&Context::cpu(), &path);
}

/// `bytes` as an index file after its checksums and end marker are made
/// to agree with its contents (the header CRC, each section's CRC where
/// the section's data fit, the trailing length), so that mutations reach
/// the parsing behind the checks.
pub fn index_file_fixed(dir: &Path, bytes: &[u8]) {
    index_file(dir, &with_checksums(bytes));
}

/// `bytes` with the index format's checksums recomputed where the layout
/// can be followed (see `index/file.rs` for the format).
pub fn with_checksums(bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let n = b.len();
    if n < 40 {
        return b;
    }
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let end = n - 16;
    b[end..end + 8].copy_from_slice(b"VAEND\0\0\0");
    b[end + 8..].copy_from_slice(&(end as u64).to_le_bytes());
    let Some(h_end) = usize::try_from(u64_at(&b, 12))
        .ok()
        .and_then(|h| h.checked_add(24))
    else {
        return b;
    };
    if h_end > end {
        return b;
    }
    let crc = crc32fast::hash(&b[24..h_end]);
    b[20..24].copy_from_slice(&crc.to_le_bytes());
    let mut at = h_end.next_multiple_of(64);
    while at + 28 <= end && &b[at..at + 8] != b"VAEND\0\0\0" {
        let size = b[at + 8] as usize;
        let data = (at + 28).next_multiple_of(64);
        let len = usize::try_from(u64_at(&b, at + 16))
            .ok()
            .and_then(|c| c.checked_mul(size));
        let Some(stop) = len.and_then(|l| data.checked_add(l)).filter(|&s| s <= end) else {
            break;
        };
        let crc = crc32fast::hash(&b[data..stop]);
        b[at + 24..at + 28].copy_from_slice(&crc.to_le_bytes());
        at = stop.next_multiple_of(64);
    }
    b
}

/// The bytes of a valid snapshot (an empty 4-dimensional Flat index).
fn snapshot() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = scratch("snapshot");
        let path = dir.join("s.vai");
        let ctx = Context::cpu();
        Index::new(&ctx, 4, "Flat", Metric::L2)
            .and_then(|i| i.save(&path))
            .expect("an empty index saves");
        std::fs::read(&path).expect("saved snapshot")
    })
}

/// `bytes` as the first log segment of a durable index whose snapshot is
/// an empty 4-dimensional Flat index, checked as `open` would replay it.
pub fn log_segment(dir: &Path, bytes: &[u8]) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("scratch folder");
    std::fs::write(dir.join(format!("snapshot-{:020}.vai", 0)), snapshot()).expect("snapshot");
    std::fs::write(dir.join(format!("wal-{:020}.log", 1)), bytes).expect("segment");
    let _ = DurableIndex::check(&Context::cpu(), dir);
}

/// `bytes` as a quantizer file.
pub fn quantizer_file(bytes: &[u8]) {
    let _ = Quantizer::from_bytes(bytes);
}

/// `bytes` as a safetensors file.
pub fn safetensors(bytes: &[u8]) {
    let _ = WeightStore::new().load_safetensors_bytes(bytes);
}

/// `bytes` as a vector file: the first byte picks the format (`.npy`,
/// `.fvecs`, `.bvecs`, `.fbin`, `.u8bin`, `.i8bin`, `.ibin`, `.hdf5`),
/// the rest is the file, read as vectors and as ids (HDF5: the `train`
/// and `neighbors` datasets).
pub fn vector_file(dir: &Path, bytes: &[u8]) {
    const EXT: [&str; 8] = [
        "npy", "fvecs", "bvecs", "fbin", "u8bin", "i8bin", "ibin", "hdf5",
    ];
    let Some((&pick, body)) = bytes.split_first() else {
        return;
    };
    let ext = EXT[pick as usize % EXT.len()];
    let file = dir.join(format!("fuzz.{ext}"));
    std::fs::write(&file, body).expect("scratch file");
    let (vectors, ids) = if ext == "hdf5" {
        (dir.join("fuzz.hdf5#train"), dir.join("fuzz.hdf5#neighbors"))
    } else {
        (file.clone(), file)
    };
    let _ = vaccel_cli::io::read_matrix(&vectors);
    let _ = vaccel_cli::io::read_ids(&ids);
}

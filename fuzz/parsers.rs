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

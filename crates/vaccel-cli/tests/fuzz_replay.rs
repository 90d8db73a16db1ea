//! Replays the fuzz targets' kept inputs (`fuzz/seeds/<target>/` and the
//! crashing or hanging inputs found, `fuzz/regressions/<target>/`) through
//! the same parsers (`fuzz/parsers.rs`): each must end without a panic.

#[allow(dead_code)] // the fuzz targets' shared parsers
#[path = "../../../fuzz/parsers.rs"]
mod parsers;

use std::path::{Path, PathBuf};

/// The kept inputs of `target`, seeds and regressions.
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for kind in ["seeds", "regressions"] {
        if let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) {
            files.extend(dir.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    files.sort();
    files
}

fn replay(target: &str, run: impl Fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no kept inputs for {target}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        eprintln!("{target}: {}", f.display());
        run(&bytes);
    }
}

#[test]
fn index_files() {
    let dir = parsers::scratch("replay-index");
    replay("index_file", |b| parsers::index_file(&dir, b));
}

#[test]
fn index_files_with_their_checksums_fixed() {
    // The fixer follows the format: valid files come back unchanged.
    for f in inputs("index_file")
        .iter()
        .filter(|f| f.parent().unwrap().ends_with("seeds/index_file"))
    {
        let b = std::fs::read(f).unwrap();
        assert!(parsers::with_checksums(&b) == b, "{} changed", f.display());
    }
    let dir = parsers::scratch("replay-index-fixed");
    replay("index_file", |b| parsers::index_file_fixed(&dir, b));
}

#[test]
fn log_segments() {
    let dir = parsers::scratch("replay-log");
    replay("log_segment", |b| parsers::log_segment(&dir, b));
}

#[test]
fn quantizer_files() {
    replay("quantizer_file", parsers::quantizer_file);
}

#[test]
fn safetensors_files() {
    replay("safetensors", parsers::safetensors);
}

#[test]
fn vector_files() {
    let dir = parsers::scratch("replay-vectors");
    replay("vector_file", |b| parsers::vector_file(&dir, b));
}

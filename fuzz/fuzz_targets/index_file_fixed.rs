#![no_main]
//! Fuzz target: arbitrary bytes through the parser of the same name in
//! `parsers.rs`.

#[allow(dead_code)] // each target drives one parser
#[path = "../parsers.rs"]
mod parsers;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    parsers::index_file_fixed(
        DIR.get_or_init(|| parsers::scratch("index_file_fixed")),
        data,
    );
});

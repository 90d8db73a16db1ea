#![no_main]
//! Fuzz target: arbitrary bytes through the parser of the same name in
//! `parsers.rs`.

#[allow(dead_code)] // each target drives one parser
#[path = "../parsers.rs"]
mod parsers;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| parsers::safetensors(data));

//! `vaccel`: the command line of VectorAccelerate. Device information, a
//! self-checking demo, exact k-NN over `.npy`, `.fvecs` / `.bvecs`,
//! `.fbin` / `.u8bin` / `.i8bin` and ann-benchmarks HDF5 files, vector
//! indexes kept in folders, histograms and throughput benchmarks, on CUDA
//! or the CPU.

mod batching;
mod commands;
use vaccel_cli::io;
mod plot;
mod progress;
mod reference;
mod synth;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error with its causes, as one line (multi-line causes such as
/// compiler logs are joined).
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

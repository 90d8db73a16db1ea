//! `vaccel index check DIR`: verifies a durable index directory (snapshot
//! and write-ahead log) and reports what opening it would do, changing
//! nothing.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use vector_accelerate::index::DurableIndex;
use vector_accelerate::Context;

/// Arguments of `vaccel index check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The durable index directory (snapshot-*.vai and wal-*.log files).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// Reads and checks every file recovery would use; damage is the error
/// (one line, non-zero exit).
pub fn run_check(a: CheckArgs) -> Result<()> {
    let r = DurableIndex::check(&Context::cpu(), &a.dir)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "directory: {}", a.dir.display())?;
    writeln!(out, "snapshot:  sequence {}", r.snapshot_seq)?;
    writeln!(out, "replay:    {} log records after it", r.replayed)?;
    match &r.torn {
        None => writeln!(out, "log end:   clean")?,
        Some((path, offset, reason)) => writeln!(
            out,
            "log end:   torn final record at {}, byte {offset} ({reason}); opening cuts it off",
            path.display()
        )?,
    }
    Ok(())
}

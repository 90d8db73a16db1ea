//! `vaccel index build|add|remove|search|info|check`: a vector index (exact
//! `Flat`, or inverted lists `IVF<nlist>,Flat`) kept in a folder as
//! `index.vai`, built from and searched with vector files.
//!
//! Ids files are integer `.npy` vectors (`int64`, `uint64`, `int32`, ...);
//! ids are at most `2^63 - 1` since results are written as `int64`. An
//! index file is replaced only by a complete new one (written under a
//! temporary name and renamed), so a failed command leaves it as it was.

mod build;
mod check;
mod files;
mod search;

use anyhow::Result;
use clap::Subcommand;

/// The `vaccel index` sub-commands.
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Build an index in a new folder: train it, add vectors, save it.
    Build(build::BuildArgs),
    /// Add vectors to an index.
    Add(build::AddArgs),
    /// Remove vectors from an index by id.
    Remove(build::RemoveArgs),
    /// k nearest indexed vectors of each query, optionally among allowed ids.
    Search(search::SearchArgs),
    /// Print what an index holds: factory, metric, sizes, search defaults.
    Info(search::InfoArgs),
    /// Verify a durable index directory (snapshot and write-ahead log) and
    /// report what opening it would do, changing nothing.
    Check(check::CheckArgs),
}

/// Runs an index sub-command.
pub fn run(c: IndexCommand) -> Result<()> {
    match c {
        IndexCommand::Build(a) => build::run_build(a),
        IndexCommand::Add(a) => build::run_add(a),
        IndexCommand::Remove(a) => build::run_remove(a),
        IndexCommand::Search(a) => search::run_search(a),
        IndexCommand::Info(a) => search::run_info(a),
        IndexCommand::Check(a) => check::run_check(a),
    }
}

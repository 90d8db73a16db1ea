//! The command-line grammar and the sub-commands.

mod args;
mod bench;
mod bench_durable;
mod bench_index;
mod bench_memory;
mod bench_ml;
mod bench_ops;
mod bench_plot;
mod bench_quant;
mod bench_scale;
mod bench_stats;
mod demo;
mod hist;
mod index;
mod info;
mod knn;
mod nq;
mod quantize;
mod stats;
mod timing;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// GPU-accelerated (CUDA) and CPU exact nearest-neighbour search.
#[derive(Debug, Parser)]
#[command(name = "vaccel", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Show the device a context would use and its properties.
    Info(info::InfoArgs),
    /// Search synthetic clustered data and check the result in fp64.
    Demo(demo::DemoArgs),
    /// Exact k-NN of query vectors in base vectors read from files.
    Knn(knn::KnnArgs),
    /// A vector index in a folder (Flat or IVF): build, add, remove, search,
    /// info.
    #[command(subcommand)]
    Index(index::IndexCommand),
    /// Histogram (and kernel density) of every value of a float32 .npy file.
    Hist(hist::HistArgs),
    /// Per-column statistics (count, mean, std, min, quartiles, max, skewness, kurtosis) of a float32 .npy table.
    Stats(stats::StatsArgs),
    /// Compress vectors: train a quantizer, encode, decode, search codes.
    #[command(subcommand)]
    Quantize(quantize::QuantizeCommand),
    /// Neural quantization: train a PCA encoder/decoder, encode to int8
    /// latent codes with a scale each, decode.
    #[command(subcommand)]
    Nq(nq::NqCommand),
    /// Throughput benchmarks on synthetic data.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info(a) => info::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Knn(a) => knn::run(a),
        Command::Index(c) => index::run(c),
        Command::Hist(a) => hist::run(a),
        Command::Stats(a) => stats::run(a),
        Command::Quantize(q) => quantize::run(q),
        Command::Nq(c) => nq::run(c),
        Command::Bench(b) => bench::run(b),
    }
}

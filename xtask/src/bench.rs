//! `cargo xtask bench`: benchmarks of tiffin, each a subcommand, and `all` to run them in turn.
//!
//! A new benchmark (`bench runtime`, `bench server`) is a module below bench/, a variant of
//! [`BenchCommand`] and a line in [`run_all`].

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::process;

mod hash;
mod memory;
mod peer;
mod runtime;
mod server;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The benchmark to run; all of them when none is named.
    #[command(subcommand)]
    command: Option<BenchCommand>,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Time `tiffin pack` and `tiffin verify` on a 1 GiB package against sha256sum and b3sum.
    ///
    /// Builds the CLI in release, writes a package source with a 1 GiB file of pseudo-random
    /// bytes under the target folder, packs it, then times each command (best of 5 after a
    /// warm-up, page cache warm) and prints a table and a verdict.
    Hash(hash::HashArgs),
    /// Time models through tiffin (load + optimize, batch 1 and 64) beside onnxruntime.
    ///
    /// Runs the criterion bench `model` of tiffin-runtime on every fixture, then the same
    /// measurements with onnxruntime (one thread) when a Python with onnxruntime is available.
    Runtime(runtime::RuntimeArgs),
    /// Memory of a model with 1 GiB of weights: `tiffin verify` and `tiffin serve` with tract
    /// and with ONNX Runtime, against the model file's size.
    ///
    /// Writes the model with numpy and onnx (a pinned virtualenv in the target folder, made
    /// once), packs it, and reads peak and resident memory from GNU time and /proc.
    Memory(memory::MemoryArgs),
    /// Requests per second and latency of `tiffin serve` under load from wrk.
    ///
    /// A classifier through each protocol at 1, 8 and 64 connections with both engines, batched
    /// and not, beside the health endpoint on the same server; `/predict` against a FastAPI +
    /// onnxruntime peer; convolution models at 64 connections without and with batching;
    /// start-up time and memory with every fixture loaded.
    Server(server::ServerArgs),
    /// Run every benchmark: `bench hash`, the criterion benches of tiffin-hash, `bench runtime`,
    /// the criterion bench of one request through the server's router, `bench server`,
    /// `bench memory`.
    All(AllArgs),
}

#[derive(Debug, Default, Args)]
struct AllArgs {
    #[command(flatten)]
    hash: hash::HashArgs,
}

pub(crate) fn run(args: BenchArgs) -> Result<()> {
    match args
        .command
        .unwrap_or(BenchCommand::All(AllArgs::default()))
    {
        BenchCommand::Hash(args) => hash::run(&args),
        BenchCommand::Runtime(args) => runtime::run(&args),
        BenchCommand::Memory(args) => memory::run(&args),
        BenchCommand::Server(args) => server::run(&args),
        BenchCommand::All(args) => run_all(&args),
    }
}

fn run_all(args: &AllArgs) -> Result<()> {
    hash::run(&args.hash)?;
    let mut criterion = process::cargo();
    criterion.args(["bench", "-p", "tiffin-hash"]);
    process::announce(&process::shown(&criterion));
    process::run(&mut criterion)?;
    runtime::run(&runtime::RuntimeArgs::default())?;
    let mut router = process::cargo();
    router.args(["bench", "-p", "tiffin-server", "--bench", "router"]);
    process::announce(&process::shown(&router));
    process::run(&mut router)?;
    server::run(&server::ServerArgs::default())?;
    memory::run(&memory::MemoryArgs::default())
}

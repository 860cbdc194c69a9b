//! The command line, as clap structs: these doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Pack a trained model into a package anyone can run and trust, and check such packages.
#[derive(Debug, Parser)]
#[command(
    name = "tiffin",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Print nothing but results and errors: no progress bars.
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build NAME/VERSION/ and NAME-VERSION.tiffin from a folder holding tiffin.toml.
    ///
    /// The package holds the model, tiffin.json (metadata, signature, every file's size, sha256 and
    /// blake3), signature.json, model-card.md and checksum.txt. The archive is byte-for-byte
    /// reproducible. Nothing is written unless the whole package is: an interrupted pack leaves
    /// no half-written package.
    Pack(PackArgs),
    /// Check a package folder or archive: every digest, the exact file list, the manifest.
    ///
    /// Exits 0 when the package is intact and 1, listing each problem with the file concerned,
    /// when it is not. An archive is checked as it streams, without unpacking it.
    Verify(VerifyArgs),
    /// Show a package's manifest, signature, files and digests, without checking them.
    Inspect(InspectArgs),
    /// List every callable a pickle or joblib file imports when loaded, without loading it.
    ///
    /// Loading a pickle runs the callables it names, which is why tiffin refuses to package one.
    /// This walks the opcodes (GLOBAL, INST, STACK_GLOBAL, with the memo) and prints each import
    /// with its byte offset, flagging those that are not plain data. Exits 1 when any import can
    /// run code.
    Scan(ScanArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PackArgs {
    /// The authoring folder (holding tiffin.toml) or the tiffin.toml itself.
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,
    /// Where to write NAME/VERSION/ and NAME-VERSION.tiffin [default: the authoring folder].
    #[arg(long, short)]
    pub(crate) out: Option<PathBuf>,
    /// Replace an existing package of the same name and version.
    #[arg(long)]
    pub(crate) force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// A package folder (NAME/VERSION/) or archive (NAME-VERSION.tiffin).
    pub(crate) path: PathBuf,
    /// Recompute sha256 as well as blake3 (slower; blake3 alone already checks every byte).
    #[arg(long)]
    pub(crate) sha256: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// A package folder (NAME/VERSION/) or archive (NAME-VERSION.tiffin).
    pub(crate) path: PathBuf,
    /// Print the manifest, digest and sizes as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// A pickle (.pkl, .pickle), joblib (.joblib, compressed or not) or any file to check.
    pub(crate) file: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

//! Maintainer tasks of the tiffin workspace, run as `cargo xtask <task>` from anywhere in it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod ci;
mod crash;
mod crates;
mod dist;
mod e2e;
mod fuzz;
mod interop;
mod interop_signing;
mod kserve;
mod onnx_backend;
mod onnxruntime;
mod process;
mod python;
mod registry;
mod schema;
mod served;
mod soak;
mod test_build;
mod ui;
mod wheel;

/// Maintainer tasks of tiffin: the CI checks, generated files and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every check CI runs: fmt, clippy, tests (every fixture through tract and ONNX
    /// Runtime; the runtime's on two more kernel sets), the ONNX backend node tests, schemas up
    /// to date, docs, the release build, OCI registry, V2 client interop, signing
    /// interop, the Python wheel and module, the KServe YAML, the web page in a browser, and the end-to-end
    /// journey.
    ///
    /// Stops at the first failure, naming it, and exits non-zero.
    Ci,
    /// Serve fixtures with `tiffin serve` and check them with the Triton Python client.
    ///
    /// Needs Python 3; makes a pinned virtualenv in the target folder once (from PyPI).
    Interop,
    /// Sign with tiffin and verify with OpenSSF model_signing, and the other way round.
    ///
    /// Needs Python 3; makes a pinned virtualenv in the target folder once (from PyPI).
    InteropSigning,
    /// Check that the crates a library consumer picks stay light (verifying packages and
    /// signatures builds no tract, HTTP client or TLS) and run their examples.
    Crates,
    /// Kill the real binary with SIGKILL in the middle of pack, sign, add, pull, tag, rm and
    /// gc (at each of its crash points, and after random delays), and check after every kill
    /// that the old or the new state is whole and that the command run again converges.
    ///
    /// Installs docker-registry with apt-get when it is missing (the pull scenario).
    Crash(crash::CrashArgs),
    /// Fuzz every parser of untrusted input with libFuzzer (cargo-fuzz, on a nightly toolchain;
    /// without one it says so and does nothing), printing runs, executions per second and
    /// coverage per target; `--seed` writes the seed corpora from the fixtures.
    ///
    /// Installs cargo-fuzz with cargo when it is missing.
    Fuzz(fuzz::FuzzArgs),
    /// Push and pull against a real OCI registry (Debian's docker-registry) and check skopeo
    /// reads what tiffin pushed.
    ///
    /// Installs docker-registry and skopeo with apt-get when they are missing (needs root).
    Registry,
    /// Validate deploy/kserve/*.yaml against KServe's and Kubernetes' schemas (their generated
    /// SDK types), and check that copies broken on purpose are refused.
    ///
    /// Needs Python 3; makes a pinned virtualenv in the target folder once (from PyPI).
    Kserve,
    /// The web page of `tiffin serve` in Debian's headless chromium, driven by Selenium: list,
    /// model page, try-it form, errors, live figures, a hostile model card; screenshots in
    /// target/ui-screenshots/.
    ///
    /// Installs chromium and chromium-driver with apt-get when missing (needs root); makes a
    /// pinned virtualenv in the target folder once (from PyPI).
    Ui,
    /// The Python module (python/tiffin) against real models: export, pack with parity,
    /// verify, predict; a broken export refused.
    ///
    /// Needs Python 3; makes a pinned virtualenv in the target folder once (from PyPI).
    Python(python::PythonArgs),
    /// Build the Python wheel (the static tiffin plus the module) into target/wheel/.
    ///
    /// Builds the static binary as `cargo xtask dist` does; needs Python 3 for PyPA's `wheel`.
    Wheel,
    /// The ONNX backend node tests (the onnx 1.22.0 wheel's 1765 cases) through tiffin-runtime
    /// with tract and with ONNX Runtime, against Python's onnxruntime on the same cases; fails
    /// when a case onnxruntime passes fails through tiffin with ONNX Runtime.
    ///
    /// Needs Python 3; makes a pinned virtualenv in the target folder once (from PyPI).
    OnnxBackend,
    /// Regenerate the JSON Schemas in docs/schema/ from the types of tiffin-manifest.
    Schema(SchemaArgs),
    /// Build the release: a static tiffin for x86_64 Linux in a reproducible tar.gz (with
    /// README, licences, completions, man page), its SHA256SUMS and its dependency list
    /// (CycloneDX), in target/dist/.
    ///
    /// Installs `file` with apt-get and cargo-cyclonedx with cargo when they are missing.
    Dist(dist::DistArgs),
    /// The whole journey through the static binary and real tools: init, pack, doctor, sign,
    /// push, pull --into, serve with the Triton client, `tiffin image --push`, podman run of the
    /// image, and KServe's storage path.
    ///
    /// Installs podman, runc, docker-registry and skopeo with apt-get when they are missing
    /// (needs root); builds the static binary as `cargo xtask dist` does.
    E2e,
    /// A sustained mixed load against `tiffin serve` on every protocol, with reloads, a version
    /// added and removed, a tampered package, slow clients and oversize bodies; fails on a failed
    /// well-formed request, a file descriptor not given back, RSS growing 5% or more after the
    /// warm-up, or the tampered package not refused by name.
    ///
    /// Loopback only; prints req/s and p50/p99 per protocol and the RSS curve.
    Soak(soak::SoakArgs),
    /// Measure tiffin's speed against the usual tools; without a subcommand, run every benchmark.
    Bench(bench::BenchArgs),
}

#[derive(Debug, clap::Args)]
struct SchemaArgs {
    /// Do not write: fail if the committed schemas differ from the types.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ci => ci::run(),
        Command::Interop => interop::run(),
        Command::InteropSigning => interop_signing::run(),
        Command::Registry => registry::run(),
        Command::Crates => crates::run(),
        Command::Crash(args) => crash::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::Kserve => kserve::run(),
        Command::Ui => ui::run(),
        Command::Python(args) => python::run(&args),
        Command::Wheel => wheel::build().map(drop),
        Command::Schema(args) => schema::run(if args.check {
            schema::Mode::Check
        } else {
            schema::Mode::Update
        }),
        Command::Bench(args) => bench::run(args),
        Command::Soak(args) => soak::run(&args),
        Command::Dist(args) => dist::run(&args),
        Command::E2e => e2e::run(),
        Command::OnnxBackend => onnx_backend::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

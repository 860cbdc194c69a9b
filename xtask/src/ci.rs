//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.
//!
//! CI (`.ci/run`) and maintainers run exactly this, so a green local run means a green CI run.
//! The steps are data in [`STEPS`]; adding a check is adding an entry.

use std::time::Instant;

use anyhow::{Context, Result};

use crate::{
    crash, crates, dist, e2e, interop, interop_signing, kserve, onnx_backend, onnxruntime, process,
    python, registry, schema, soak, test_build, ui,
};

/// One check of `cargo xtask ci`.
#[derive(Debug)]
struct Step {
    /// A short name, used to say which step failed.
    name: &'static str,
    action: Action,
}

/// What a step runs.
#[derive(Debug)]
enum Action {
    /// cargo with these arguments and these extra environment variables.
    Cargo {
        args: &'static [&'static str],
        env: &'static [(&'static str, &'static str)],
    },
    /// A task of this xtask, announced as `shown`.
    Task {
        shown: &'static str,
        run: fn() -> Result<()>,
    },
}

/// `TRACT_CPU_ISA` taking AVX-512 and AMX away: tract's AVX2 + FMA kernels, those of a CPU
/// without AVX-512 (on which an absolute 1e-5 once failed by one ulp, issue #21). Features the
/// CPU lacks are simply not there to take away.
const FMA_KERNELS: &str = "-avx512f,-avx512vnni,-avx512fp16,-amx-int8,-amx-bf16";

/// `TRACT_CPU_ISA` taking every x86_64 feature tract has kernels for away, which leaves its
/// generic (SSE2) kernels.
const GENERIC_KERNELS: &str =
    "-avx,-avx2,-fma,-f16c,-avx512f,-avx512vnni,-avx512fp16,-avxvnni,-amx-int8,-amx-bf16";

/// The checks, cheapest first so that a formatting slip fails in seconds, not after the tests.
const STEPS: &[Step] = &[
    Step {
        name: "fmt",
        action: Action::Cargo {
            args: &["fmt", "--all", "--", "--check"],
            env: &[],
        },
    },
    Step {
        name: "clippy",
        action: Action::Cargo {
            args: &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--features",
                "tiffin-cli/ort",
                "--",
                "-D",
                "warnings",
            ],
            env: &[],
        },
    },
    // With ONNX Runtime support (the `ort` feature, off in the release build), so that every
    // fixture also runs through the pinned onnxruntime wheel's library, compared with tract's
    // answers and the references.
    Step {
        name: "test",
        action: Action::Task {
            shown: "TIFFIN_ORT_LIB=<onnxruntime 1.32.0> cargo test --workspace --locked --features tiffin-cli/ort",
            run: onnxruntime::workspace_tests,
        },
    },
    // tract picks its kernels by the CPU's features (AVX-512, FMA, or plain SSE), and each set
    // rounds differently. The runtime's tests run again on the two sets below this machine's, so
    // a comparison too tight for another CPU fails here rather than on someone else's machine.
    // They run the executables the `test` step built: `cargo test -p tiffin-runtime` would
    // resolve other dependency features and build the workspace a second time.
    Step {
        name: "test-fma-kernels",
        action: Action::Task {
            shown: "TRACT_CPU_ISA=<no AVX-512> tiffin-runtime's tests",
            run: || runtime_tests(FMA_KERNELS),
        },
    },
    Step {
        name: "test-generic-kernels",
        action: Action::Task {
            shown: "TRACT_CPU_ISA=<no AVX, no FMA> tiffin-runtime's tests",
            run: || runtime_tests(GENERIC_KERNELS),
        },
    },
    // Every ONNX backend node case Python's onnxruntime passes must pass through tiffin with
    // ONNX Runtime; tract's count is printed.
    Step {
        name: "onnx-backend",
        action: Action::Task {
            shown: "cargo xtask onnx-backend (the onnx 1.22.0 node tests, both runtimes, against Python's onnxruntime)",
            run: onnx_backend::run,
        },
    },
    Step {
        name: "schema",
        action: Action::Task {
            shown: "cargo xtask schema --check",
            run: check_schema,
        },
    },
    Step {
        name: "doc",
        action: Action::Cargo {
            args: &["doc", "--workspace", "--no-deps", "--locked"],
            env: &[("RUSTDOCFLAGS", "-D warnings")],
        },
    },
    // A library consumer's crates: the verify-only build's dependency list, and the examples.
    Step {
        name: "crates",
        action: Action::Task {
            shown: "cargo xtask crates (verify-only build without tract, ureq or rustls; the examples run)",
            run: crates::run,
        },
    },
    // The release archives, each built once: the static one (a static release build, about 9
    // minutes cold on 2 cores) and the `-ort` one (a dynamic build with ONNX Runtime, which
    // shares the static one's dependency builds and compiles only the crates its feature
    // changes); later steps get them through `dist::static_binary` and `dist::ort_binary`. The
    // second builds of `--check-reproducible` double that, so they run in the release workflow,
    // not here.
    Step {
        name: "dist",
        action: Action::Task {
            shown: "cargo xtask dist (static and -ort release builds, archives, SHA256SUMS, dependency lists)",
            run: build_dist,
        },
    },
    // Needs Debian's docker-registry and skopeo, which it installs with apt-get when missing.
    Step {
        name: "registry",
        action: Action::Task {
            shown: "cargo xtask registry (tiffin push and pull against docker-registry, skopeo)",
            run: registry::run,
        },
    },
    // After the registry step, which installs docker-registry for its pull scenario.
    Step {
        name: "crash",
        action: Action::Task {
            shown: "cargo xtask crash (SIGKILL at every crash point and at random moments of \
                    pack, sign, add, pull, tag, rm and gc; every state whole, every rerun converging)",
            run: || crash::run(&crash::CrashArgs::ci()),
        },
    },
    // Ten seconds of mixed load on every protocol with reloads, a tampered package, slow
    // clients and oversize bodies, on the debug `tiffin` of the test step: no failed request,
    // no file descriptor or memory kept. Loopback only; nothing to install.
    Step {
        name: "soak",
        action: Action::Task {
            shown: "cargo xtask soak --seconds 10 (mixed load on every protocol, reloads, a \
                    tampered package, slow clients; no failure, no fd or RSS kept)",
            run: || soak::run(&soak::SoakArgs::short()),
        },
    },
    // Last: it needs PyPI once for its virtualenv, and a real V2 client failing is worth knowing
    // only once the server's own tests pass.
    Step {
        name: "interop-v2",
        action: Action::Task {
            shown: "cargo xtask interop (tiffin serve against the Triton Python client)",
            run: interop::run,
        },
    },
    Step {
        name: "interop-signing",
        action: Action::Task {
            shown: "cargo xtask interop-signing (tiffin sign and verify against OpenSSF model_signing)",
            run: interop_signing::run,
        },
    },
    Step {
        name: "wheel",
        action: Action::Task {
            shown: "cargo xtask python --wheel (the wheel built, installed into a fresh \
                    virtualenv, the Python tests run there: export, parity, predict)",
            run: || {
                python::run(&python::PythonArgs {
                    wheel: true,
                    torch: false,
                })
            },
        },
    },
    Step {
        name: "ui",
        action: Action::Task {
            shown: "cargo xtask ui (the web page in headless chromium, driven by Selenium)",
            run: ui::run,
        },
    },
    Step {
        name: "kserve",
        action: Action::Task {
            shown: "cargo xtask kserve (deploy/kserve against KServe's and Kubernetes' schemas)",
            run: kserve::run,
        },
    },
    // The whole journey through the release binaries of the dist step (static, and -ort for the
    // ONNX Runtime image), podman and the registry.
    Step {
        name: "e2e",
        action: Action::Task {
            shown: "cargo xtask e2e (init to a served container image, and KServe's storage path)",
            run: e2e::run,
        },
    },
];

fn check_schema() -> Result<()> {
    schema::run(schema::Mode::Check)
}

/// Runs tiffin-runtime's test executables with tract's kernels limited by `TRACT_CPU_ISA`.
fn runtime_tests(isa: &str) -> Result<()> {
    let library = onnxruntime::library()?;
    let library = library.to_string_lossy();
    for test in test_build::tests_of("tiffin-runtime")? {
        test_build::run(
            &test,
            &[("TRACT_CPU_ISA", isa), (onnxruntime::VARIABLE, &library)],
        )?;
    }
    Ok(())
}

fn build_dist() -> Result<()> {
    dist::run(&dist::DistArgs {
        check_reproducible: false,
    })
}

/// Runs every step, stopping at the first failure, and prints the total time.
pub(crate) fn run() -> Result<()> {
    let start = Instant::now();
    for step in STEPS {
        run_step(step).with_context(|| {
            format!(
                "ci step `{}` failed after {}",
                step.name,
                process::human_duration(start.elapsed())
            )
        })?;
    }
    eprintln!(
        "==> ci passed: {} steps in {}",
        STEPS.len(),
        process::human_duration(start.elapsed())
    );
    Ok(())
}

fn run_step(step: &Step) -> Result<()> {
    match &step.action {
        Action::Cargo { args, env } => {
            let mut command = process::cargo();
            command.args(*args).envs(env.iter().copied());
            // The tests must compare the committed schemas, never rewrite them.
            command.env_remove("TIFFIN_UPDATE_SCHEMA");
            // CI logs render colours but are not terminals, so cargo would print none; a value the
            // caller set (say `never`, to pipe into a file) wins.
            if std::env::var_os(process::COLOR_VAR).is_none() {
                command.env(process::COLOR_VAR, "always");
            }
            process::announce(&process::shown(&command));
            process::run(&mut command)
        }
        Action::Task { shown, run } => {
            process::announce(shown);
            run()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_unique() {
        let mut names: Vec<_> = STEPS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), STEPS.len());
    }

    #[test]
    fn every_cargo_step_is_locked_but_fmt() {
        for step in STEPS {
            if let Action::Cargo { args, .. } = step.action
                && args[0] != "fmt"
            {
                assert!(
                    args.contains(&"--locked"),
                    "step {} is not --locked",
                    step.name
                );
            }
        }
    }
}

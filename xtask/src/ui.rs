//! `cargo xtask ui`: the web page of `tiffin serve` in a real browser.
//!
//! It builds `tiffin`, packs churn_model, iris and `evil_card` (the churn model under a model
//! card that tries every way to run script), serves them on a free port and runs
//! `crates/tiffin-server/tests/browser/ui_test.py`: Selenium (pinned, in a virtualenv) driving
//! Debian's chromium through Debian's chromedriver, both installed with apt-get when missing; no
//! browser is downloaded. Screenshots go to `target/ui-screenshots/`, to look at.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::interop::{self, TempDir, run_quietly};
use crate::process;
use crate::served::Server;

const SCRIPT: &str = "crates/tiffin-server/tests/browser/ui_test.py";
const REQUIREMENTS: &str = "crates/tiffin-server/tests/browser/requirements.txt";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Debian's browser and its WebDriver, as (package, program).
const PACKAGES: &[(&str, &str)] = &[
    ("chromium", "chromium"),
    ("chromium-driver", "chromedriver"),
];

/// A model card that tries to run script every way markdown and HTML allow.
const HOSTILE_CARD: &str = "# Evil\n\n\
    <script>window.pwned = 1</script>\n\n\
    <img src=x onerror=\"window.pwned = 2\">\n\n\
    [click me](javascript:window.pwned=3)\n\n\
    <svg onload=\"window.pwned = 4\"><script>window.pwned = 5</script></svg>\n\n\
    <iframe srcdoc=\"<script>parent.pwned = 6</script>\"></iframe>\n\n\
    <a href=\"data:text/html,<script>alert(1)</script>\">data link</a>\n\n\
    <div style=\"background:url(javascript:window.pwned=7)\" onmouseover=\"window.pwned=8\">hover</div>\n\n\
    <form action=\"https://example.org\"><button formaction=\"javascript:alert(1)\">go</button></form>\n";

pub(crate) fn run() -> Result<()> {
    let start = Instant::now();
    process::install_missing(
        PACKAGES,
        "the ui step drives Debian's chromium with its chromedriver",
    )?;
    let root = process::workspace_root();
    let interop::Tools { tiffin, python } = interop::tools("ui-venv", REQUIREMENTS)?;

    let work = TempDir::new("tiffin-ui")?;
    let packages = work.path().join("packages");
    for fixture in ["churn_model", "iris"] {
        pack(&tiffin, &root.join("fixtures").join(fixture), &packages)?;
    }
    let evil = hostile_card_source(&root.join("fixtures/churn_model"), work.path())?;
    pack(&tiffin, &evil, &packages)?;

    let mut serve = Command::new(&tiffin);
    serve
        .arg("serve")
        .arg(&packages)
        .args(["--port", "0"])
        .env("TIFFIN_LOG", "info");
    process::announce(&process::shown(&serve));
    let mut server = Server::start(serve)?;
    let address = server.wait_until_ready(START_TIMEOUT)?;

    let shots = process::target_dir()?.join("ui-screenshots");
    // Screenshots of an earlier run (a failure's among them) would pass for this run's.
    if shots.exists() {
        std::fs::remove_dir_all(&shots)
            .with_context(|| format!("cannot empty {}", shots.display()))?;
    }
    std::fs::create_dir_all(&shots).with_context(|| format!("cannot make {}", shots.display()))?;
    let mut test = Command::new(&python);
    test.arg(root.join(SCRIPT))
        .arg(&address)
        .arg(&shots)
        // Selenium must use the driver it is given, never fetch one.
        .env("SE_OFFLINE", "true");
    process::announce(&process::shown(&test));
    let outcome = process::run(&mut test);
    if outcome.is_err() {
        server.print_log();
    }
    outcome.context(
        "the web page failed in the browser (the FAIL line and its screenshot say where)",
    )?;

    // The Triton Python client request the page offers, run as a user would paste it.
    let client = interop::python("interop-venv", interop::REQUIREMENTS)?;
    let mut snippet = Command::new(client);
    snippet.arg(shots.join("triton_snippet.py"));
    process::announce(&process::shown(&snippet));
    let output = snippet
        .output()
        .context("cannot run the Triton client snippet")?;
    let printed = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success() && printed.contains("probabilities"),
        "the page's Triton client snippet failed ({}):\n{printed}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    eprint!("{printed}");
    drop(server);
    eprintln!(
        "    ui passed in {}; screenshots in {}",
        process::human_duration(start.elapsed()),
        shots.display()
    );
    Ok(())
}

fn pack(tiffin: &Path, source: &Path, out: &Path) -> Result<()> {
    let mut pack = Command::new(tiffin);
    pack.args(["-q", "pack"]).arg(source).arg("--out").arg(out);
    process::announce(&process::shown(&pack));
    run_quietly(&mut pack)
}

/// The churn fixture's authoring folder, copied as `evil_card` with [`HOSTILE_CARD`].
fn hostile_card_source(churn: &Path, work: &Path) -> Result<std::path::PathBuf> {
    let source = work.join("evil_card");
    std::fs::create_dir_all(&source)?;
    for file in ["model.onnx", "examples.json", "requirements.txt"] {
        std::fs::copy(churn.join(file), source.join(file))
            .with_context(|| format!("cannot copy {file} of {}", churn.display()))?;
    }
    let toml = std::fs::read_to_string(churn.join("tiffin.toml"))?;
    let renamed = toml.replacen("name = \"churn_model\"", "name = \"evil_card\"", 1);
    anyhow::ensure!(
        renamed != toml,
        "fixtures/churn_model/tiffin.toml no longer says name = \"churn_model\""
    );
    std::fs::write(source.join("tiffin.toml"), renamed)?;
    std::fs::write(source.join("MODEL_CARD.md"), HOSTILE_CARD)?;
    Ok(source)
}

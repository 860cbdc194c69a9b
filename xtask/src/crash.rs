//! `cargo xtask crash` (and the `crash` step of `cargo xtask ci`): the real `tiffin` binary
//! killed with SIGKILL in the middle of every command that writes, then checked.
//!
//! Commands: `pack` (new, and `--force` over another package of the same version), `sign` (a
//! folder and an archive), `add`, `pull` (from a local docker-registry, into the store and
//! `--into` a served folder), `tag`, `rm` and `gc`.
//! Each runs from a fresh copy of its starting state and is killed two ways: at each of its
//! crash points (tiffin stops just before each fsync, rename or removal when
//! `TIFFIN_TEST_CRASH_AT=N` is set, see `tiffin_core::crash`), and after random delays spread
//! over the time a whole run takes. After every kill:
//! - each output path holds the complete old state or the complete new one: absent or
//!   verifying, with the old or the new package digest; nothing else visible (not hidden) sits
//!   in the output folder, so nothing partial could be served;
//! - `tiffin list` works, and every package it lists verifies and is one the old or the new
//!   state holds;
//! - the command run again succeeds and leaves exactly the new state.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::registry::{self, Registry};
use crate::{process, test_build};

/// The crash point variables of `tiffin_core::crash`, and the start of its marker line.
const AT_VAR: &str = "TIFFIN_TEST_CRASH_AT";
const LIST_VAR: &str = "TIFFIN_TEST_CRASH_POINTS";
const MARKER: &str = "tiffin-crash-point";

#[derive(Debug, clap::Args)]
pub(crate) struct CrashArgs {
    /// Kills after a random delay, per command (on top of one kill at each crash point).
    #[arg(long, default_value_t = 24)]
    random: usize,
    /// Seed of the random delays [default: from the clock; printed, to rerun the same delays].
    #[arg(long)]
    seed: Option<u64>,
}

impl CrashArgs {
    /// The form `cargo xtask ci` runs: every crash point, and enough random kills to pass 200
    /// kills in all.
    pub(crate) fn ci() -> CrashArgs {
        CrashArgs {
            random: 24,
            seed: None,
        }
    }
}

/// What a package path or the store holds: a package digest per visible name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Held {
    /// An output path: absent (`None`) or a package with this digest.
    Path(String, Option<String>),
    /// A store entry: its tag (`None` when untagged) and digest.
    Entry(Option<String>, String),
}

/// One command under test.
struct Scenario {
    name: &'static str,
    /// The command's arguments; it runs in a copy of the starting state, with TIFFIN_HOME set
    /// to that copy's `home`.
    args: Vec<String>,
    /// The starting state, made once.
    base: PathBuf,
    /// What the old and the new state hold.
    old: BTreeSet<Held>,
    new: BTreeSet<Held>,
    /// Whether an unfinished run may leave a store entry that is neither old nor new but a
    /// complete package of the new state without its tag yet (add and pull rename the package
    /// in, then tag it).
    untagged_new_ok: bool,
    /// Output paths checked (relative to the copy), besides the store.
    paths: Vec<String>,
    /// The public key that must verify a signed output.
    key: Option<PathBuf>,
}

impl Scenario {
    /// A command run from a copy of `base`; `states` and, for outputs that are paths,
    /// `checking` say what it changes.
    fn new(name: &'static str, args: Vec<String>, base: &Path) -> Scenario {
        Scenario {
            name,
            args,
            base: base.to_owned(),
            old: BTreeSet::new(),
            new: BTreeSet::new(),
            untagged_new_ok: false,
            paths: Vec::new(),
            key: None,
        }
    }

    fn states(mut self, old: BTreeSet<Held>, new: BTreeSet<Held>) -> Scenario {
        self.old = old;
        self.new = new;
        self
    }

    fn checking(mut self, paths: Vec<String>, key: Option<&Path>) -> Scenario {
        self.paths = paths;
        self.key = key.map(Path::to_owned);
        self
    }

    fn tagged_last(mut self) -> Scenario {
        self.untagged_new_ok = true;
        self
    }
}

/// The tallies of one scenario.
#[derive(Debug, Default)]
struct Tally {
    points: usize,
    point_kills: usize,
    random_kills: usize,
    finished_first: usize,
}

pub(crate) fn run(args: &CrashArgs) -> Result<()> {
    let start = Instant::now();
    process::install_missing(
        registry::PACKAGES,
        "the pull scenario needs docker-registry",
    )?;
    let tiffin = test_build::tiffin()?;
    let work = process::fresh_dir("tiffin-crash")?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("==> random delays seeded with {seed} (`cargo xtask crash --seed {seed}`)");
    let mut rng = XorShift(seed | 1);
    let registry = Registry::start(&work.join("registry"), None)?;
    let scenarios = scenarios(&tiffin, &work, &registry)?;
    let mut rows = Vec::new();
    let mut kills = 0;
    for scenario in &scenarios {
        let tally = run_scenario(&tiffin, &work, scenario, args.random, &mut rng)
            .with_context(|| format!("crash scenario `{}`", scenario.name))?;
        kills += tally.point_kills + tally.random_kills;
        eprintln!(
            "    {}: {} crash points, {} kills there, {} random kills ({} runs finished first)",
            scenario.name,
            tally.points,
            tally.point_kills,
            tally.random_kills,
            tally.finished_first
        );
        rows.push((scenario.name, tally));
    }
    eprintln!(
        "\n| command | crash points | kills at points | random kills | finished before the kill |"
    );
    eprintln!("|---|---|---|---|---|");
    for (name, t) in &rows {
        eprintln!(
            "| {name} | {} | {} | {} | {} |",
            t.points, t.point_kills, t.random_kills, t.finished_first
        );
    }
    drop(registry);
    std::fs::remove_dir_all(&work).ok();
    eprintln!(
        "==> {kills} kills with SIGKILL, every state complete, every rerun converged, in {}",
        process::human_duration(start.elapsed())
    );
    Ok(())
}

/// A small, seeded generator for the delays: xorshift64.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// `tiffin` with the store at `dir/home` and no outside configuration.
fn tiffin_in(tiffin: &Path, dir: &Path) -> Command {
    let mut command = registry::tiffin_cmd(tiffin, &dir.join("home"));
    command
        .current_dir(dir)
        .env_remove(AT_VAR)
        .env_remove(LIST_VAR);
    command
}

fn ok(output: Output, what: &str) -> Result<Output> {
    registry::check(&output, what)?;
    Ok(output)
}

/// The package digest `tiffin verify --no-run` reports for `path`, failing unless it verifies
/// (with `key`, its signature too).
fn verified_digest(tiffin: &Path, dir: &Path, path: &str, key: Option<&Path>) -> Result<String> {
    let mut command = tiffin_in(tiffin, dir);
    command.args(["verify", "--no-run", "--json", path]);
    if let Some(key) = key {
        command.arg("--key").arg(key);
    }
    let report = registry::json(&command.output()?, &format!("tiffin verify {path}"))?;
    // With a key the report is the signature's, and the package's own is inside it.
    let package = if key.is_some() {
        ensure!(
            report["signature_valid"] == true,
            "the signature of {path} does not verify"
        );
        &report["package"]
    } else {
        &report
    };
    package["digest"]
        .as_str()
        .map(str::to_owned)
        .context("verify printed no digest")
}

/// Whether the package at `path` carries a signature.
fn signed(tiffin: &Path, dir: &Path, path: &str) -> Result<bool> {
    let output = tiffin_in(tiffin, dir)
        .args(["verify", "--no-run", "--json", path])
        .output()?;
    let report = registry::json(&output, &format!("tiffin verify {path}"))?;
    Ok(report["signed"].as_bool().unwrap_or(false))
}

/// What `dir` holds now: each output path, and each store entry (each verified).
fn observe(tiffin: &Path, dir: &Path, scenario: &Scenario) -> Result<BTreeSet<Held>> {
    let mut held = BTreeSet::new();
    for path in &scenario.paths {
        let digest = if dir.join(path).symlink_metadata().is_ok() {
            let key = match &scenario.key {
                Some(key) if signed(tiffin, dir, path)? => Some(key.as_path()),
                _ => None,
            };
            let digest = verified_digest(tiffin, dir, path, key)?;
            // A signed output is the new state of a sign; its signature verified above.
            Some(if key.is_some() {
                format!("{digest}+signed")
            } else {
                digest
            })
        } else {
            None
        };
        held.insert(Held::Path(path.clone(), digest));
    }
    let list = registry::json(
        &tiffin_in(tiffin, dir).args(["list", "--json"]).output()?,
        "tiffin list",
    )?;
    for entry in list.as_array().context("list printed no array")? {
        let digest = entry["digest"]
            .as_str()
            .context("a listed entry has no digest")?;
        let verified = verified_digest(tiffin, dir, digest, None)?;
        ensure!(
            verified == digest,
            "tiffin list says {digest}, verify of it says {verified}"
        );
        let tag = entry["tag"].as_str().map(str::to_owned);
        held.insert(Held::Entry(tag, digest.to_owned()));
    }
    Ok(held)
}

/// Fails unless `held` is the old state, the new one, or (where allowed) on its way: every item
/// old or new, each output path whole.
fn check_between(scenario: &Scenario, held: &BTreeSet<Held>, dir: &Path) -> Result<()> {
    for item in held {
        let known = scenario.old.contains(item) || scenario.new.contains(item);
        let untagged_new = scenario.untagged_new_ok
            && matches!(item, Held::Entry(None, d)
                if scenario.new.iter().any(|n| matches!(n, Held::Entry(_, nd) if nd == d)));
        ensure!(
            known || untagged_new,
            "after the kill the state holds {item:?}, which is in neither the old state \
             {:?} nor the new one {:?}",
            scenario.old,
            scenario.new
        );
    }
    // Nothing visible but the outputs in the output folder: a server watching it would load
    // every entry that is not hidden.
    let out = dir.join("out");
    if out.is_dir() && !scenario.paths.is_empty() {
        let allowed: BTreeSet<String> = scenario
            .paths
            .iter()
            .filter_map(|p| p.strip_prefix("out/"))
            .filter_map(|p| p.split('/').next())
            .map(str::to_owned)
            .collect();
        for entry in std::fs::read_dir(&out)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            ensure!(
                name.starts_with('.') || allowed.contains(&name),
                "after the kill out/ holds `{name}`, which is neither hidden nor an output"
            );
        }
    }
    Ok(())
}

/// Copies the starting state (hard links of the store kept: `cp -a`).
fn fresh_copy(base: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let status = Command::new("cp").arg("-a").arg(base).arg(dir).status()?;
    ensure!(status.success(), "cp -a {} failed", base.display());
    Ok(())
}

/// Starts the scenario's command in `dir`, its stderr lines sent to the returned channel.
fn spawn(
    tiffin: &Path,
    dir: &Path,
    scenario: &Scenario,
    env: Option<(&str, String)>,
) -> Result<(Child, mpsc::Receiver<String>)> {
    let mut command = tiffin_in(tiffin, dir);
    command
        .args(&scenario.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some((name, value)) = env {
        command.env(name, value);
    }
    let mut child = command.spawn().context("cannot start tiffin")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    Ok((child, lines))
}

/// The crash points a whole run passes, from a run in a copy with them listed.
fn count_points(tiffin: &Path, trial: &Path, scenario: &Scenario) -> Result<(usize, Duration)> {
    fresh_copy(&scenario.base, trial)?;
    let started = Instant::now();
    let (mut child, lines) = spawn(tiffin, trial, scenario, Some((LIST_VAR, "1".into())))?;
    let status = child.wait()?;
    let took = started.elapsed();
    // Every line, up to the end of stderr (the reader thread may still be forwarding some).
    let log: Vec<String> = lines.iter().collect();
    ensure!(
        status.success(),
        "`tiffin {}` failed from the starting state:\n{}",
        scenario.args.join(" "),
        log.join("\n")
    );
    let points = log.iter().filter(|l| l.starts_with(MARKER)).count();
    ensure!(
        points > 0,
        "`tiffin {}` passed no crash point",
        scenario.args.join(" ")
    );
    Ok((points, took))
}

fn run_scenario(
    tiffin: &Path,
    work: &Path,
    scenario: &Scenario,
    random: usize,
    rng: &mut XorShift,
) -> Result<Tally> {
    let trial = work.join(format!("trial-{}", scenario.name));
    let (points, took) = count_points(tiffin, &trial, scenario)?;
    let held = observe(tiffin, &trial, scenario)?;
    ensure!(
        held == scenario.new,
        "a whole run left {held:?}, not the new state {:?}",
        scenario.new
    );
    let mut tally = Tally {
        points,
        ..Tally::default()
    };
    for at in 1..=points {
        fresh_copy(&scenario.base, &trial)?;
        let (mut child, lines) = spawn(tiffin, &trial, scenario, Some((AT_VAR, at.to_string())))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let reached = loop {
            match lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line.starts_with(MARKER) => break true,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break false,
            }
            if Instant::now() > deadline {
                break false;
            }
        };
        if !reached {
            let _ = child.kill();
            child.wait()?;
            bail!("tiffin did not stop at crash point {at} (it exited, or took over 120 s)");
        }
        // It waits at the point: SIGKILL now.
        child.kill()?;
        child.wait()?;
        tally.point_kills += 1;
        after_kill(tiffin, &trial, scenario)
            .with_context(|| format!("killed at crash point {at}"))?;
    }
    // Random delays over the whole run, startup included.
    let span = (took.as_micros() as u64).max(1000);
    for _ in 0..random {
        fresh_copy(&scenario.base, &trial)?;
        let delay = Duration::from_micros(rng.below(span));
        let (mut child, _lines) = spawn(tiffin, &trial, scenario, None)?;
        std::thread::sleep(delay);
        if child.try_wait()?.is_some() {
            tally.finished_first += 1;
        } else {
            child.kill()?;
            tally.random_kills += 1;
        }
        child.wait()?;
        after_kill(tiffin, &trial, scenario).with_context(|| format!("killed after {delay:?}"))?;
    }
    std::fs::remove_dir_all(&trial).ok();
    Ok(tally)
}

/// The checks after one kill: a state between old and new, then a rerun that reaches new.
fn after_kill(tiffin: &Path, trial: &Path, scenario: &Scenario) -> Result<()> {
    let held = observe(tiffin, trial, scenario)?;
    check_between(scenario, &held, trial)?;
    let rerun = tiffin_in(tiffin, trial).args(&scenario.args).output()?;
    if !rerun.status.success() {
        // `rm` of what is gone already says so: the removal was done.
        let gone = scenario.name == "rm"
            && held == scenario.new
            && String::from_utf8_lossy(&rerun.stderr).contains("in the local store");
        ensure!(
            gone,
            "the rerun of `tiffin {}` failed ({}):\n{}",
            scenario.args.join(" "),
            rerun.status,
            String::from_utf8_lossy(&rerun.stderr)
        );
    }
    let after = observe(tiffin, trial, scenario)?;
    ensure!(
        after == scenario.new,
        "after the rerun the state is {after:?}, not the new state {:?}",
        scenario.new
    );
    if scenario.name == "gc" {
        // The rerun collected everything: one more finds nothing left.
        let again = registry::json(
            &tiffin_in(tiffin, trial).args(["gc", "--json"]).output()?,
            "tiffin gc",
        )?;
        ensure!(
            again["blobs"] == 0 && again["staging"] == 0 && again["tags"] == 0,
            "a gc after the rerun still collected {again}"
        );
    }
    Ok(())
}

/// Builds every scenario's starting state under `work`.
fn scenarios(tiffin: &Path, work: &Path, registry: &Registry) -> Result<Vec<Scenario>> {
    let fixtures = process::workspace_root().join("fixtures");
    let iris = fixtures.join("iris").to_string_lossy().into_owned();
    let churn = fixtures.join("churn_model").to_string_lossy().into_owned();
    let key = fixtures
        .join("keys/signer.pem")
        .to_string_lossy()
        .into_owned();
    let public = fixtures.join("keys/signer.pub.pem");
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let folder = "out/iris/1.0.0".to_owned();
    let archive = "out/iris-1.0.0.tiffin".to_owned();
    let tag = |t: &str, d: &str| Held::Entry(Some(t.to_owned()), d.to_owned());

    // One package, packed as every starting state packs it (SOURCE_DATE_EPOCH is fixed by
    // `tiffin_cmd`): its digest is the same everywhere.
    let empty = work.join("base-empty");
    std::fs::create_dir_all(empty.join("out"))?;
    let packed = work.join("base-packed");
    std::fs::create_dir_all(&packed)?;
    ok(
        tiffin_in(tiffin, &packed)
            .args(["-q", "pack", &iris, "--out", "out"])
            .output()?,
        "tiffin pack iris",
    )?;
    let digest = verified_digest(tiffin, &packed, &folder, None)?;

    // The same name and version with another creation time: another package.
    let other = work.join("base-other");
    std::fs::create_dir_all(&other)?;
    ok(
        tiffin_in(tiffin, &other)
            .env("SOURCE_DATE_EPOCH", "1600000000")
            .args(["-q", "pack", &iris, "--out", "out"])
            .output()?,
        "tiffin pack iris (another creation time)",
    )?;
    let other_digest = verified_digest(tiffin, &other, &folder, None)?;
    ensure!(other_digest != digest, "two creation times gave one digest");

    let stored = work.join("base-stored");
    fresh_copy(&packed, &stored)?;
    ok(
        tiffin_in(tiffin, &stored)
            .args(["-q", "add", &folder])
            .output()?,
        "tiffin add",
    )?;

    // A store with iris, and churn's files left unused by removing churn.
    let litter = work.join("base-litter");
    fresh_copy(&stored, &litter)?;
    ok(
        tiffin_in(tiffin, &litter)
            .args(["-q", "pack", &churn, "--out", "churn-out"])
            .output()?,
        "tiffin pack churn_model",
    )?;
    ok(
        tiffin_in(tiffin, &litter)
            .args(["-q", "add", "churn-out/churn_model/1.0.0"])
            .output()?,
        "tiffin add churn",
    )?;
    ok(
        tiffin_in(tiffin, &litter)
            .args(["-q", "rm", "churn_model:1.0.0"])
            .output()?,
        "tiffin rm churn",
    )?;

    let reference = format!("{}/crash/iris:1.0.0", registry.address);
    let pusher = work.join("pusher");
    fresh_copy(&packed, &pusher)?;
    ok(
        tiffin_in(tiffin, &pusher)
            .args(["-q", "push", &archive, &reference])
            .output()?,
        "tiffin push",
    )?;

    let path_state = |d: Option<&str>| {
        [folder.clone(), archive.clone()]
            .into_iter()
            .map(|p| Held::Path(p, d.map(str::to_owned)))
            .collect::<BTreeSet<_>>()
    };
    let signed = format!("{digest}+signed");
    let both = vec![folder.clone(), archive.clone()];
    let signed_at = |signed_path: &str| -> BTreeSet<Held> {
        [folder.clone(), archive.clone()]
            .into_iter()
            .map(|p| {
                let d = if p == signed_path { &signed } else { &digest };
                Held::Path(p, Some(d.clone()))
            })
            .collect()
    };
    let tagged: BTreeSet<Held> = [tag("iris:1.0.0", &digest)].into();
    let scenarios = vec![
        Scenario::new("pack", s(&["pack", &iris, "--out", "out"]), &empty)
            .states(path_state(None), path_state(Some(&digest)))
            .checking(both.clone(), None),
        Scenario::new(
            "pack --force",
            s(&["pack", &iris, "--out", "out", "--force"]),
            &other,
        )
        .states(path_state(Some(&other_digest)), path_state(Some(&digest)))
        .checking(both.clone(), None),
        Scenario::new(
            "sign (folder)",
            s(&["sign", &folder, "--key", &key]),
            &packed,
        )
        .states(path_state(Some(&digest)), signed_at(&folder))
        .checking(both.clone(), Some(&public)),
        Scenario::new(
            "sign (archive)",
            s(&["sign", &archive, "--key", &key]),
            &packed,
        )
        .states(path_state(Some(&digest)), signed_at(&archive))
        .checking(both.clone(), Some(&public)),
        Scenario::new(
            "pull --into",
            s(&["pull", "--no-run", &reference, "--into", "out"]),
            &empty,
        )
        .states(
            [Held::Path(folder.clone(), None)].into(),
            [Held::Path(folder.clone(), Some(digest.clone()))].into(),
        )
        .checking(vec![folder.clone()], None),
        // add and pull rename the package in, then tag it.
        Scenario::new("add", s(&["add", &folder]), &packed)
            .states(BTreeSet::new(), tagged.clone())
            .tagged_last(),
        Scenario::new("pull", s(&["pull", "--no-run", &reference]), &empty)
            .states(BTreeSet::new(), tagged.clone())
            .tagged_last(),
        Scenario::new("tag", s(&["tag", "iris:1.0.0", "iris:prod"]), &stored).states(
            tagged.clone(),
            [tag("iris:1.0.0", &digest), tag("iris:prod", &digest)].into(),
        ),
        Scenario::new("rm", s(&["rm", "iris:1.0.0"]), &stored)
            .states(tagged.clone(), BTreeSet::new()),
        Scenario::new("gc", s(&["gc"]), &litter).states(tagged.clone(), tagged),
    ];
    Ok(scenarios)
}

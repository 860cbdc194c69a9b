//! `cargo xtask registry` (and the `registry` step of `cargo xtask ci`): `tiffin push` and
//! `tiffin pull` against a real OCI registry, Debian's `docker-registry` (CNCF distribution).
//!
//! It installs `docker-registry` and `skopeo` with apt when they are missing, starts a registry
//! on 127.0.0.1 with a config file of its own (the stock one listens on every interface) and
//! storage in a temporary folder, then: packs a fixture, pushes it, pushes it again (nothing may
//! be sent twice), pulls it into a fresh store and verifies it, has skopeo copy it (a second
//! client reads what tiffin wrote), pushes through htpasswd basic auth, and finally alters a
//! blob in the registry's storage and checks that a pull fails naming that digest and leaves
//! no package in the store. The registry is killed by its PID when the step ends.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::interop::build_tiffin;
use crate::process;

/// The Debian packages the step needs, and the programs they provide.
pub(crate) const PACKAGES: &[(&str, &str)] =
    &[("docker-registry", "docker-registry"), ("skopeo", "skopeo")];

/// The user of the htpasswd-protected registry and its password.
const USER: &str = "tiffin";
const PASSWORD: &str = "tiffin-secret";

/// Runs the whole registry test.
pub(crate) fn run() -> Result<()> {
    let start = Instant::now();
    install()?;
    let tiffin = build_tiffin()?;
    let work = process::fresh_dir("tiffin-registry")?;
    let root = process::workspace_root();

    let out = work.join("packages");
    let pack = tiffin_cmd(&tiffin, &work.join("home-push"))
        .args(["-q", "pack"])
        .arg(root.join("fixtures").join("churn_model"))
        .arg("--out")
        .arg(&out)
        .output()?;
    check(&pack, "tiffin pack")?;
    let archive = out.join("churn_model-1.0.0.tiffin");

    let registry = Registry::start(&work.join("open"), None)?;
    let reference = format!("{}/models/churn:1.0.0", registry.address);

    // Push twice: the second sends nothing.
    let first = push(&tiffin, &work.join("home-push"), &archive, &reference, &[])?;
    ensure!(
        first["uploaded"].as_u64() == first["blobs"].as_u64() && first["skipped"] == 0,
        "the first push should send every blob: {first}"
    );
    let again = push(&tiffin, &work.join("home-push"), &archive, &reference, &[])?;
    ensure!(
        again["uploaded"] == 0 && again["skipped"].as_u64() == again["blobs"].as_u64(),
        "a second push re-sent blobs the registry had: {again}"
    );
    eprintln!(
        "    pushed {} blobs, then 0 again",
        first["blobs"].as_u64().unwrap_or(0)
    );

    // A package with a 20 MiB file goes up in PATCH chunks and comes down streamed; its model
    // and other files are the same as churn 1.0.0's, so the registry has them already.
    let big = big_package(&work, &tiffin)?;
    let big_reference = format!("{}/models/churn:2.0.0", registry.address);
    let pushed = push(&tiffin, &work.join("home-push"), &big, &big_reference, &[])?;
    let sent = pushed["bytes_uploaded"].as_u64().unwrap_or(0);
    ensure!(
        sent >= BIG_SIZE && pushed["skipped"].as_u64().unwrap_or(0) >= 3,
        "the 2.0.0 push should send the big file and skip the files 1.0.0 shares: {pushed}"
    );
    let pulled = tiffin_cmd(&tiffin, &work.join("home-big"))
        .args(["pull", "--no-run", &big_reference])
        .output()?;
    check(&pulled, "tiffin pull of the big package")?;
    let verify = tiffin_cmd(&tiffin, &work.join("home-big"))
        .args(["verify", "--no-run", "--sha256", "churn_model:2.0.0"])
        .output()?;
    check(&verify, "tiffin verify churn_model:2.0.0")?;
    eprintln!(
        "    a package with a {} MiB file went up in chunks and came down verified",
        BIG_SIZE >> 20
    );

    // Pull into a fresh store, verified on arrival; then verify by name.
    let home = work.join("home-pull");
    let pulled = tiffin_cmd(&tiffin, &home)
        .args(["pull", "--json", &reference])
        .output()?;
    let pulled = json(&pulled, "tiffin pull")?;
    ensure!(
        pulled["stored"]["entry"]["digest"] == first["package_digest"],
        "the pulled package is not the pushed one: {pulled}"
    );
    let verify = tiffin_cmd(&tiffin, &home)
        .args(["verify", "--sha256", "churn_model:1.0.0"])
        .output()?;
    check(&verify, "tiffin verify churn_model:1.0.0")?;
    eprintln!("    pulled and verified churn_model:1.0.0");

    // tiffin-store's example, as a library consumer would pull: into a folder, verified whole.
    let into = work.join("example-models");
    let example = Command::new(crate::test_build::example("tiffin-store", "pull_into")?)
        .arg(&reference)
        .arg(&into)
        .env("TIFFIN_HOME", work.join("home-example"))
        .output()?;
    check(&example, "example pull_into of tiffin-store")?;
    ensure!(
        into.join("churn_model/1.0.0/tiffin.json").is_file(),
        "example pull_into wrote no churn_model/1.0.0 into {}",
        into.display()
    );
    eprintln!("    example pull_into of tiffin-store: churn_model/1.0.0 pulled into a folder");

    // A signed package carries its bundle as a layer of its own; a pull with the signer's key
    // checks it before the package enters the store, and refuses an unsigned package.
    let keys = root.join("fixtures").join("keys");
    let signed = work.join("signed.tiffin");
    std::fs::copy(&archive, &signed)?;
    let sign = tiffin_cmd(&tiffin, &work.join("home-push"))
        .arg("sign")
        .arg(&signed)
        .arg("--key")
        .arg(keys.join("signer.pem"))
        .output()?;
    check(&sign, "tiffin sign")?;
    let signed_reference = format!("{}/models/churn:1.0.0-signed", registry.address);
    push(
        &tiffin,
        &work.join("home-push"),
        &signed,
        &signed_reference,
        &[],
    )?;
    let pulled = tiffin_cmd(&tiffin, &work.join("home-signed"))
        .args(["pull", "--no-run", &signed_reference, "--key"])
        .arg(keys.join("signer.pub.pem"))
        .output()?;
    check(&pulled, "tiffin pull --key of the signed package")?;
    let other_key = tiffin_cmd(&tiffin, &work.join("home-other"))
        .args(["pull", "--no-run", &signed_reference, "--key"])
        .arg(keys.join("other.pub.pem"))
        .output()?;
    let unsigned = tiffin_cmd(&tiffin, &work.join("home-other"))
        .args(["pull", "--no-run", &reference, "--key"])
        .arg(keys.join("signer.pub.pem"))
        .output()?;
    ensure!(
        !other_key.status.success() && !unsigned.status.success(),
        "a pull with another key or of an unsigned package was accepted"
    );
    let said = String::from_utf8_lossy(&unsigned.stderr);
    ensure!(
        said.contains("not signed") && !said.contains("/tmp/"),
        "a pull --key of an unsigned package should say it is not signed, without staging paths; \
         it said:\n{said}"
    );
    ensure!(
        !work
            .join("home-other")
            .join("tags")
            .join("churn_model")
            .exists(),
        "a refused signed pull left a tag in the store"
    );
    eprintln!(
        "    signed package pulled with its key; another key and an unsigned package refused"
    );

    // skopeo reads what tiffin pushed, and sees the ModelPack types.
    let layout = work.join("layout");
    let copy = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:1.0.0", layout.display()))
        .output()
        .context("cannot run skopeo")?;
    check(&copy, "skopeo copy")?;
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .context("cannot run skopeo")?;
    let manifest = json(&raw, "skopeo inspect --raw")?;
    ensure!(
        manifest["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
            && manifest["config"]["mediaType"] == "application/vnd.cncf.model.config.v1+json",
        "skopeo sees another artifact type: {manifest}"
    );
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    let weight = layers
        .iter()
        .find(|l| l["mediaType"] == "application/vnd.cncf.model.weight.v1.raw")
        .and_then(|l| l["digest"].as_str())
        .context("no weight layer in the pushed manifest")?
        .to_owned();
    ensure!(
        layers
            .iter()
            .all(|l| l["annotations"]["org.cncf.model.filepath"].is_string()),
        "a layer lacks its org.cncf.model.filepath annotation: {manifest}"
    );
    eprintln!("    skopeo copied it; artifactType and media types are ModelPack's");

    // Alter the weights in the registry's storage: a pull must fail naming the digest.
    let hex = weight.trim_start_matches("sha256:");
    let blob = registry
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes =
        std::fs::read(&blob).with_context(|| format!("cannot read {}", blob.display()))?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, &bytes)?;
    let home = work.join("home-tampered");
    let tampered = tiffin_cmd(&tiffin, &home)
        .args(["pull", &reference])
        .output()?;
    let stderr = String::from_utf8_lossy(&tampered.stderr);
    ensure!(
        !tampered.status.success() && stderr.contains(&weight),
        "a pull of an altered blob should fail naming {weight}; it said:\n{stderr}"
    );
    let packages = std::fs::read_dir(home.join("packages"))
        .map(|d| d.count())
        .unwrap_or(0);
    let tags = std::fs::read_dir(home.join("tags"))
        .map(|d| d.count())
        .unwrap_or(0);
    ensure!(
        packages == 0 && tags == 0,
        "a failed pull left {packages} package(s) and {tags} tag(s) in the store"
    );
    eprintln!("    a pull of an altered blob failed naming {weight}, storing nothing");
    drop(registry);

    // Basic auth through htpasswd: refused without credentials, accepted with them.
    let secured = Registry::start(&work.join("secured"), Some(&work))?;
    let reference = format!("{}/models/churn:1.0.0", secured.address);
    let refused = tiffin_cmd(&tiffin, &work.join("home-push"))
        .args(["push", &archive.to_string_lossy(), &reference])
        .output()?;
    ensure!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr).contains("--username"),
        "a push without credentials should be refused, naming the flags: {}",
        String::from_utf8_lossy(&refused.stderr)
    );
    push(
        &tiffin,
        &work.join("home-push"),
        &archive,
        &reference,
        &[
            ("TIFFIN_REGISTRY_USERNAME", USER),
            ("TIFFIN_REGISTRY_PASSWORD", PASSWORD),
        ],
    )?;
    let pulled = tiffin_cmd(&tiffin, &work.join("home-auth"))
        .args([
            "pull",
            "--username",
            USER,
            "--password",
            PASSWORD,
            &reference,
        ])
        .output()?;
    check(&pulled, "tiffin pull with basic auth")?;
    eprintln!("    basic auth: refused without credentials, push and pull with them");
    drop(secured);
    // Only litter in the temp folder if this fails; a failed run keeps it for a look.
    let _ = std::fs::remove_dir_all(&work);

    eprintln!(
        "    registry passed in {}",
        process::human_duration(start.elapsed())
    );
    Ok(())
}

/// The size of the large file of [`big_package`]: over two upload chunks.
const BIG_SIZE: u64 = 20 << 20;

/// Packs churn_model as version 2.0.0 with an extra file of [`BIG_SIZE`] bytes; returns the
/// package folder.
fn big_package(work: &Path, tiffin: &Path) -> Result<PathBuf> {
    let source = process::workspace_root()
        .join("fixtures")
        .join("churn_model");
    let dir = work.join("big_model");
    std::fs::create_dir_all(&dir)?;
    for entry in std::fs::read_dir(&source)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name()))?;
        }
    }
    let toml = std::fs::read_to_string(dir.join("tiffin.toml"))?;
    ensure!(
        toml.contains("version = \"1.0.0\""),
        "fixtures/churn_model/tiffin.toml no longer says version 1.0.0"
    );
    let toml = toml.replacen("version = \"1.0.0\"", "version = \"2.0.0\"", 1)
        + "\n[[files]]\npath = \"weights.bin\"\nrole = \"extra\"\n";
    std::fs::write(dir.join("tiffin.toml"), toml)?;
    // Bytes from a linear congruential generator: deterministic, and not one repeated chunk.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut bytes = Vec::with_capacity(BIG_SIZE as usize);
    while (bytes.len() as u64) < BIG_SIZE {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    std::fs::write(dir.join("weights.bin"), &bytes)?;
    let out = work.join("packages");
    let pack = tiffin_cmd(tiffin, &work.join("home-push"))
        .args(["-q", "pack"])
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .output()?;
    check(&pack, "tiffin pack of the big package")?;
    Ok(out.join("churn_model").join("2.0.0"))
}

/// Installs docker-registry and skopeo when they are missing.
fn install() -> Result<()> {
    process::install_missing(
        PACKAGES,
        "the registry step needs Debian's docker-registry and skopeo packages",
    )
}

/// `tiffin` with its store in `home` and a fixed creation time.
pub(crate) fn tiffin_cmd(tiffin: &Path, home: &Path) -> Command {
    let mut command = Command::new(tiffin);
    command
        .env("TIFFIN_HOME", home)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("TIFFIN_REGISTRY_USERNAME")
        .env_remove("TIFFIN_REGISTRY_PASSWORD")
        // No Docker config of the machine's user may lend credentials to the test.
        .env("DOCKER_CONFIG", home.join("no-docker-config"));
    command
}

fn push(
    tiffin: &Path,
    home: &Path,
    archive: &Path,
    reference: &str,
    env: &[(&str, &str)],
) -> Result<serde_json::Value> {
    let output = tiffin_cmd(tiffin, home)
        .args(["push", "--json"])
        .arg(archive)
        .arg(reference)
        .envs(env.iter().copied())
        .output()?;
    json(&output, "tiffin push")
}

/// Fails with the command's output unless it succeeded.
pub(crate) fn check(output: &Output, what: &str) -> Result<()> {
    ensure!(
        output.status.success(),
        "`{what}` failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The JSON the command printed, failing unless it succeeded.
pub(crate) fn json(output: &Output, what: &str) -> Result<serde_json::Value> {
    check(output, what)?;
    serde_json::from_slice(&output.stdout).with_context(|| format!("`{what}` printed no JSON"))
}

/// A `docker-registry` child on 127.0.0.1, killed by its PID when dropped.
pub(crate) struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) address: String,
    storage: PathBuf,
}

impl Registry {
    /// Starts a registry with its config and storage in `dir`; with `htpasswd_dir`, behind basic
    /// auth for [`USER`].
    pub(crate) fn start(dir: &Path, htpasswd_dir: Option<&Path>) -> Result<Registry> {
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let address = format!("127.0.0.1:{port}");
        let storage = dir.join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {address}\n",
            storage.display()
        );
        if let Some(htdir) = htpasswd_dir {
            let htpasswd = htdir.join("htpasswd");
            std::fs::write(&htpasswd, format!("{USER}:{}\n", bcrypt_of_password()))?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: tiffin-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let mut command = Command::new("docker-registry");
        command
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        process::announce(&process::shown(&command));
        let child = command.spawn().context("cannot start docker-registry")?;
        let mut registry = Registry {
            child,
            address,
            storage,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(&registry.address).is_ok() {
                return Ok(registry);
            }
            if let Some(status) = registry.child.try_wait()? {
                let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
                bail!("docker-registry exited ({status}) before it listened:\n{log}");
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not listen on {} in 30s",
                    registry.address
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Killed by its own PID, never by name: other registries may run on this machine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bcrypt hash of [`PASSWORD`] (cost 5). `htpasswd` is not on a plain Debian, so the hash
/// was made once (with libxcrypt's `crypt`) and is fixed here.
fn bcrypt_of_password() -> &'static str {
    "$2b$05$wAgItAPcJ.F24pwgnhSpw.aaSsILOP9Ej3.23McSBv9a.yN7pmnjm"
}

/// A port free on 127.0.0.1 now.
pub(crate) fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

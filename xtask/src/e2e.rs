//! `cargo xtask e2e` (and the `e2e` step of `cargo xtask ci`): the whole journey of a model,
//! through the real release binary and real outside tools, as a deployer would take it.
//!
//! From an ONNX model: `tiffin init`, the metadata an author adds, `pack` with examples,
//! `doctor --strict`, `sign`, `push` to a local docker-registry, `pull --key --into` a folder,
//! `serve` that folder and ask it for the golden examples with the Triton Python client; then
//! `tiffin image --push` to the registry and `podman run` of the pushed image answering V2 and
//! `/predict`, and the same with ONNX Runtime (`tiffin image --ort-lib` with the dynamic `-ort`
//! build of `cargo xtask dist`: the image's own loader, C library and libonnxruntime.so, the log
//! saying `engine=ort`); then KServe's storage path: a runtime container waiting on an empty model folder
//! (`MODEL_INIT_MODE=async`) until the storage-initializer container, called as KServe calls it
//! (`<tiffin://uri> <dest>`), has pulled and verified the signed package into it.
//!
//! Every process it starts (registry, server, containers) is stopped by its PID or container ID
//! when the step ends, pass or fail. podman runs with runc, cgroupfs and lowered limits, which is
//! what works on this kind of machine (`CONTAINERS_CONF`, see docs/deploy.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::registry::{self, Registry, check, json, tiffin_cmd};
use crate::served::{Server, get_status, post_json};
use crate::{dist, interop, process};

/// The Debian packages the step needs beyond the registry step's, and the programs they provide.
const PACKAGES: &[(&str, &str)] = &[("podman", "podman"), ("runc", "runc")];

/// The fixture the journey starts from: its model, model card, examples and pinned
/// requirements, and the metadata its tiffin.toml adds to what `init` reads from the graph.
const FIXTURE: &str = "churn_model";

/// The package's name and version as the journey packs it.
const NAME: &str = "churn_model";
const VERSION: &str = "1.0.0";

/// The client that asks a server for a package's golden examples.
const GOLDEN_CLIENT: &str = "crates/tiffin-server/tests/interop/v2_golden.py";

/// How long a server may take to be ready, on the host or in a container.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// podman's configuration on this kind of machine: crun fails on a cgroup v1 hybrid host and the
/// default open-files limit cannot be raised without CAP_SYS_RESOURCE.
const CONTAINERS_CONF: &str = "[containers]\n\
    default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
    [engine]\n\
    runtime = \"runc\"\n\
    cgroup_manager = \"cgroupfs\"\n";

/// Runs the whole journey.
pub(crate) fn run() -> Result<()> {
    let start = Instant::now();
    process::install_missing(
        registry::PACKAGES,
        "the e2e step needs Debian's docker-registry and skopeo packages",
    )?;
    process::install_missing(PACKAGES, "the e2e step runs images with podman and runc")?;
    let tiffin = dist::static_binary()?;
    let python = interop::python("interop-venv", interop::REQUIREMENTS)?;
    let work = process::fresh_dir("tiffin-e2e")?;
    let journey = Journey {
        tiffin,
        python,
        keys: process::workspace_root().join("fixtures").join("keys"),
        work: work.clone(),
        podman: Podman::new(&work)?,
    };

    let package = journey.author()?;
    let registry = Registry::start(&work.join("registry"), None)?;
    let reference = format!("{}/models/churn:{VERSION}", registry.address);
    journey.push_and_pull(&package, &reference)?;
    let images = journey.image(&package, &registry.address)?;
    let ort_image = journey.ort_image(&package, &registry.address)?;
    journey.kserve(&images.runtime, &reference, &package)?;
    journey
        .podman
        .remove_images(&[&images.model, &images.runtime, &ort_image]);
    drop(registry);
    let _ = std::fs::remove_dir_all(&work);
    eprintln!(
        "    e2e passed in {}",
        process::human_duration(start.elapsed())
    );
    Ok(())
}

/// The tools and folders every stage uses.
struct Journey {
    /// The static release binary, the one the images carry.
    tiffin: PathBuf,
    /// The Python of the interop virtualenv (the Triton client).
    python: PathBuf,
    /// fixtures/keys: the signer's key pair.
    keys: PathBuf,
    work: PathBuf,
    podman: Podman,
}

/// The two images the journey pushes: one with the package, one with the binary alone (what a
/// KServe runtime and storage-initializer container run).
struct Images {
    model: String,
    runtime: String,
}

impl Journey {
    fn tiffin(&self) -> Command {
        tiffin_cmd(&self.tiffin, &self.work.join("home"))
    }

    /// init, the author's metadata, pack with examples, doctor --strict, sign: the package folder.
    fn author(&self) -> Result<PathBuf> {
        let fixture = process::workspace_root().join("fixtures").join(FIXTURE);
        let author = self.work.join("author");
        std::fs::create_dir_all(&author)?;
        for file in [
            "model.onnx",
            "MODEL_CARD.md",
            "examples.json",
            "requirements.txt",
        ] {
            std::fs::copy(fixture.join(file), author.join(file))
                .with_context(|| format!("cannot copy fixtures/{FIXTURE}/{file}"))?;
        }
        let init = self
            .tiffin()
            .current_dir(&author)
            .args(["init", "model.onnx", "--name", NAME, "--version", VERSION])
            .output()?;
        check(&init, "tiffin init model.onnx")?;
        let written = std::fs::read_to_string(author.join("tiffin.toml"))?;
        let (expected, onnxruntime) = expected_outputs(&fixture)?;
        let authored = complete_authoring(
            &written,
            &std::fs::read_to_string(fixture.join("tiffin.toml"))?,
            &onnxruntime,
        )?;
        std::fs::write(author.join("tiffin.toml"), authored)?;
        std::fs::write(author.join("expected.json"), expected)?;
        eprintln!("    init read the signature from the graph; the author's metadata added");

        let out = self.work.join("packages");
        let pack = self
            .tiffin()
            .args(["-q", "pack"])
            .arg(&author)
            .arg("--out")
            .arg(&out)
            .output()?;
        check(&pack, "tiffin pack")?;
        let package = out.join(NAME).join(VERSION);
        let doctor = self
            .tiffin()
            .args(["doctor", "--strict"])
            .arg(&package)
            .output()?;
        check(&doctor, "tiffin doctor --strict")?;
        let sign = self
            .tiffin()
            .arg("sign")
            .arg(&package)
            .arg("--key")
            .arg(self.keys.join("signer.pem"))
            .output()?;
        check(&sign, "tiffin sign")?;
        eprintln!(
            "    packed with golden examples and parity with the original outputs, doctor \
             --strict clean, signed"
        );
        Ok(package)
    }

    /// push, pull --key --into a folder, serve that folder on the host and ask it for the
    /// golden examples with the Triton client.
    fn push_and_pull(&self, package: &Path, reference: &str) -> Result<()> {
        let pushed = self
            .tiffin()
            .args(["push", "--json"])
            .arg(package)
            .arg(reference)
            .output()?;
        json(&pushed, "tiffin push")?;
        let served = self.work.join("served");
        let pull = tiffin_cmd(&self.tiffin, &self.work.join("home-pull"))
            .args(["pull", reference, "--key"])
            .arg(self.keys.join("signer.pub.pem"))
            .arg("--into")
            .arg(&served)
            .output()?;
        check(&pull, "tiffin pull --key --into")?;
        let pulled = served.join(NAME).join(VERSION);
        ensure!(
            pulled.join("tiffin.json").is_file(),
            "tiffin pull --into wrote no package at {}",
            pulled.display()
        );
        eprintln!("    pushed to the registry, pulled with the signer's key into a folder");

        let mut serve = Command::new(&self.tiffin);
        serve
            .arg("serve")
            .arg(&served)
            .args(["--port", "0"])
            .env("TIFFIN_LOG", "info");
        process::announce(&process::shown(&serve));
        let mut server = Server::start(serve)?;
        let address = server.wait_until_ready(READY_TIMEOUT)?;
        let outcome = self.golden(&address, &pulled);
        if outcome.is_err() {
            server.print_log();
        }
        outcome
    }

    /// `tiffin image --push` of the package, then `podman run` of the pushed image answering V2
    /// and `/predict`; also pushes the runtime-only image the KServe stage runs.
    fn image(&self, package: &Path, registry: &str) -> Result<Images> {
        // One repository for both: a registry shares blobs within a repository, so the runtime
        // image's push finds the binary's layer there.
        let model = format!("{registry}/images/tiffin:churn-{VERSION}");
        let runtime = format!("{registry}/images/tiffin:runtime");
        let started = Instant::now();
        let pushed = self
            .tiffin()
            .args(["image", "--json", "--binary"])
            .arg(&self.tiffin)
            .arg(package)
            .args(["--push", &model])
            .output()?;
        let pushed = json(&pushed, "tiffin image --push")?;
        let took = started.elapsed();
        let bare = self
            .tiffin()
            .args(["image", "--json", "--binary"])
            .arg(&self.tiffin)
            .args(["--push", &runtime])
            .output()?;
        let bare = json(&bare, "tiffin image --push (runtime only)")?;
        // Same binary, same first layer: the registry has it from the first image.
        ensure!(
            bare["skipped"].as_u64() == Some(1) && bare["uploaded"].as_u64() == Some(1),
            "the runtime image should send only its config, the binary layer being there: {bare}"
        );
        eprintln!(
            "    tiffin image --push in {}: {pushed}",
            process::human_duration(took)
        );

        let (container, address, ready) = self.run_image(&model)?;
        eprintln!(
            "    podman run of the pushed image ready in {} (read-only, user {})",
            process::human_duration(ready),
            self.podman.user(&container)?
        );
        self.answers(&address, package, &container)?;
        drop(container);
        Ok(Images { model, runtime })
    }

    /// Pulls `image` and runs it, read-only, with its port 8080 on a free port of loopback,
    /// until it is ready: the container, its address, and how long it took from the run.
    fn run_image(&self, image: &str) -> Result<(Container, String, Duration)> {
        self.podman.pull(image)?;
        let port = registry::free_port()?;
        let started = Instant::now();
        let container = self.podman.run(&[
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            "--read-only",
            image,
        ])?;
        let address = format!("127.0.0.1:{port}");
        wait_ready(&address, &container, &self.podman)?;
        Ok((container, address, started.elapsed()))
    }

    /// The served package's golden examples and `/predict` answered at `address`, with the
    /// container's log printed if they are not.
    fn answers(&self, address: &str, package: &Path, container: &Container) -> Result<()> {
        self.golden(address, package)
            .and_then(|()| predict(address, package))
            .inspect_err(|_| self.podman.print_logs(container))
    }

    /// `tiffin image --ort-lib --push` of the package with the dynamic `-ort` build and the
    /// pinned onnxruntime library, then `podman run` of it answering the golden examples and
    /// `/predict` with ONNX Runtime: the image carries every shared library the two need.
    fn ort_image(&self, package: &Path, registry: &str) -> Result<String> {
        let binary = dist::ort_binary()?;
        let ort = dist::OrtFiles::pinned()?;
        let image = format!("{registry}/images/tiffin:churn-{VERSION}-ort");
        let started = Instant::now();
        let mut command = self.tiffin();
        command
            .args(["image", "--json", "--binary"])
            .arg(&binary)
            .arg("--ort-lib")
            .arg(&ort.library);
        for notice in &ort.notices {
            command.arg("--ort-notice").arg(notice);
        }
        let pushed = command.arg(package).args(["--push", &image]).output()?;
        let pushed = json(&pushed, "tiffin image --ort-lib --push")?;
        let holds: Vec<&str> = pushed["layers"]
            .as_array()
            .context("tiffin image --json printed no layers")?
            .iter()
            .filter_map(|l| l["holds"].as_str())
            .collect();
        ensure!(
            holds == ["tiffin", "onnxruntime", &format!("{NAME}:{VERSION}")],
            "the ONNX Runtime image should hold tiffin, onnxruntime and the package: {pushed}"
        );
        eprintln!(
            "    tiffin image --ort-lib --push in {}: {} bytes",
            process::human_duration(started.elapsed()),
            pushed["size"]
        );
        let (container, address, _) = self.run_image(&image)?;
        let logs = self.podman.logs(&container)?;
        ensure!(
            logs.contains("engine=ort"),
            "the ONNX Runtime image did not serve with ONNX Runtime; its log:\n{logs}"
        );
        self.answers(&address, package, &container)?;
        eprintln!("    podman run of the ONNX Runtime image answers with engine=ort");
        Ok(image)
    }

    /// KServe's storage path with the runtime-only image: the runtime container starts on an
    /// empty model folder and waits (`MODEL_INIT_MODE=async`, live but not ready); the
    /// storage-initializer container, given `<tiffin://uri> <dest>` as KServe gives it, pulls and
    /// verifies the signed package into the shared folder; the runtime then serves it.
    fn kserve(&self, image: &str, reference: &str, package: &Path) -> Result<()> {
        self.podman.pull(image)?;
        let models = self.work.join("kserve-models");
        std::fs::create_dir_all(&models)?;
        // An emptyDir of a pod is writable by its containers' user; the folder here stands in.
        set_mode(&models, 0o777)?;
        let port = registry::free_port()?;
        let address = format!("127.0.0.1:{port}");
        let runtime = self.podman.run(&[
            "-p",
            &format!("{address}:8080"),
            "--read-only",
            "-e",
            "MODEL_INIT_MODE=async",
            "-v",
            &format!("{}:/mnt/models:ro", models.display()),
            image,
            "serve",
            "/mnt/models",
            "--host",
            "0.0.0.0",
            "--port",
            "8080",
        ])?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while get_status(&address, "/v2/health/live")? != Some(200) {
            if Instant::now() > deadline {
                self.podman.print_logs(&runtime);
                bail!("the runtime container on an empty folder never answered /v2/health/live");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let ready = get_status(&address, "/v2/health/ready")?;
        ensure!(
            ready == Some(503),
            "with no model yet /v2/health/ready should be 503, not {ready:?}"
        );

        // The key as deploy/kserve's ClusterStorageContainer gives it: its PEM text in
        // TIFFIN_PULL_KEY (a storage initializer cannot mount a file).
        let key = std::fs::read_to_string(self.keys.join("signer.pub.pem"))?;
        let storage = self
            .podman
            .command()
            .args(["run", "--rm", "--network", "host", "--read-only", "-e"])
            .arg(format!("TIFFIN_PULL_KEY={key}"))
            .arg("-v")
            .arg(format!("{}:/mnt/models", models.display()))
            .args(["--entrypoint", "/usr/bin/tiffin", image, "pull"])
            .args([&format!("tiffin://{reference}"), "/mnt/models"])
            .output()?;
        check(&storage, "the storage-initializer container")?;
        eprintln!("    storage initializer pulled tiffin://{reference} into the shared folder");
        wait_ready(&address, &runtime, &self.podman)?;
        self.golden(&address, package)
            .inspect_err(|_| self.podman.print_logs(&runtime))?;
        eprintln!("    the waiting runtime container found the package and answers V2");
        Ok(())
    }

    /// The Triton client asks `address` for the package's golden examples.
    fn golden(&self, address: &str, package: &Path) -> Result<()> {
        let mut client = Command::new(&self.python);
        client
            .arg(process::workspace_root().join(GOLDEN_CLIENT))
            .arg(address)
            .arg(NAME)
            .arg(package);
        process::announce(&process::shown(&client));
        process::run(&mut client)
    }
}

/// The authoring file as an author completes it after `tiffin init`: the signature `init` read
/// from the graph, with the fixture's feature names, and every other table (metadata, framework,
/// training, runtime, files, examples) from the fixture's own tiffin.toml. Fails if `init`
/// read another signature than the fixture declares.
fn complete_authoring(written: &str, fixture: &str, onnxruntime: &str) -> Result<String> {
    let written: toml::Table = toml::from_str(written).context("init wrote invalid TOML")?;
    let mut authored: toml::Table = toml::from_str(fixture)?;
    let read = written
        .get("signature")
        .cloned()
        .context("init wrote no signature")?;
    let declared = authored
        .get("signature")
        .cloned()
        .context("the fixture has no signature")?;
    ensure!(
        without_authors_names(&read) == without_authors_names(&declared),
        "init read another signature from the graph than fixtures/{FIXTURE} declares:\n{read}\n\
         vs\n{declared}"
    );
    // The graph names no features and numbers the classes; the author names them, as the
    // fixture does.
    authored.insert("signature".into(), declared);
    let package = authored
        .get_mut("package")
        .and_then(toml::Value::as_table_mut)
        .context("the fixture has no [package]")?;
    package.insert("name".into(), NAME.into());
    package.insert("version".into(), VERSION.into());
    let examples = authored
        .get_mut("examples")
        .and_then(toml::Value::as_table_mut)
        .context("the fixture has no [examples]")?;
    examples.insert("expected".into(), "expected.json".into());
    // The stand-in says what it is: onnxruntime computed these, not scikit-learn.
    let mut source = toml::Table::new();
    source.insert("name".into(), "onnxruntime".into());
    source.insert("version".into(), onnxruntime.into());
    examples.insert("expected_from".into(), source.into());
    Ok(toml::to_string(&authored)?)
}

/// The original model's outputs on the fixture's example rows, for `[examples] expected`, and
/// the onnxruntime version that computed them: onnxruntime's outputs from `reference.json`
/// (computed on the same leading rows) stand in for scikit-learn's own, with which they agree to
/// about 1e-7.
fn expected_outputs(fixture: &Path) -> Result<(String, String)> {
    let examples: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("examples.json"))?)?;
    let rows = examples
        .as_array()
        .context("the fixture's examples.json is not a list of records")?
        .len();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("reference.json"))?)?;
    let mut expected = serde_json::Map::new();
    for (name, tensor) in reference["outputs"]
        .as_object()
        .context("reference.json has no outputs")?
    {
        let shape = tensor["shape"]
            .as_array()
            .context("a reference output has no shape")?;
        let width: usize = shape[1..]
            .iter()
            .map(|d| d.as_u64().unwrap_or(1) as usize)
            .product();
        let data = tensor["data"]
            .as_array()
            .context("a reference output has no data")?;
        ensure!(
            data.len() >= rows * width,
            "reference.json holds fewer rows than examples.json"
        );
        let value: Vec<serde_json::Value> = if shape.len() == 1 {
            data[..rows].to_vec()
        } else {
            data[..rows * width]
                .chunks(width)
                .map(|row| serde_json::Value::Array(row.to_vec()))
                .collect()
        };
        expected.insert(name.clone(), value.into());
    }
    let onnxruntime = reference["onnxruntime"]
        .as_str()
        .context("reference.json does not say which onnxruntime made it")?
        .to_owned();
    Ok((serde_json::Value::Object(expected).to_string(), onnxruntime))
}

/// A signature without the names an author gives features and classes (a graph of integer
/// classes calls them "0", "1", ...), to compare with what `init` read from the graph: names,
/// dtypes and shapes.
fn without_authors_names(signature: &toml::Value) -> toml::Value {
    let mut signature = signature.clone();
    if let Some(table) = signature.as_table_mut() {
        for (_, tensors) in table.iter_mut() {
            for tensor in tensors.as_array_mut().into_iter().flatten() {
                if let Some(tensor) = tensor.as_table_mut() {
                    tensor.remove("feature_names");
                    tensor.remove("class_labels");
                }
            }
        }
    }
    signature
}

/// `POST /predict` of the package's first golden row answers 200 with every output it names.
fn predict(address: &str, package: &Path) -> Result<()> {
    let examples: serde_json::Value = serde_json::from_slice(&std::fs::read(
        package.join("examples").join("inputs.json"),
    )?)?;
    let x = &examples["X"];
    let width = x["shape"][1]
        .as_u64()
        .context("examples have no X [rows, width]")? as usize;
    let row: Vec<serde_json::Value> = x["data"]
        .as_array()
        .context("examples' X has no data")?
        .iter()
        .take(width)
        .cloned()
        .collect();
    let body = serde_json::json!({ "X": [row] }).to_string();
    let answer = post_json(address, "/predict", &body)?;
    let outputs: serde_json::Value = serde_json::from_str(&answer)
        .with_context(|| format!("/predict answered no JSON: {answer}"))?;
    ensure!(
        outputs["label"].is_array() && outputs["probabilities"].is_array(),
        "/predict answered without label and probabilities: {answer}"
    );
    eprintln!("    /predict answered {answer}");
    Ok(())
}

/// Waits for `/v2/health/ready` of a container's published port to answer 200.
fn wait_ready(address: &str, container: &Container, podman: &Podman) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if get_status(address, "/v2/health/ready")? == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            podman.print_logs(container);
            bail!(
                "the container {} was not ready on {address} after {}",
                container.id,
                process::human_duration(READY_TIMEOUT)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<()> {
    bail!("the e2e step runs containers and needs a Unix host")
}

/// podman with the configuration that works on this kind of machine.
struct Podman {
    conf: PathBuf,
}

impl Podman {
    fn new(work: &Path) -> Result<Self> {
        let conf = work.join("containers.conf");
        std::fs::write(&conf, CONTAINERS_CONF)?;
        Ok(Self { conf })
    }

    fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command.env("CONTAINERS_CONF", &self.conf);
        command
    }

    /// Pulls an image from the local registry (plain HTTP).
    fn pull(&self, image: &str) -> Result<()> {
        let mut pull = self.command();
        pull.args(["pull", "--quiet", "--tls-verify=false", image]);
        process::announce(&process::shown(&pull));
        check(&pull.output()?, "podman pull")
    }

    /// Starts a detached container from `args` (options, the image, its arguments).
    fn run(&self, args: &[&str]) -> Result<Container> {
        let mut run = self.command();
        run.args(["run", "-d"]).args(args);
        process::announce(&process::shown(&run));
        let output = run.output()?;
        check(&output, "podman run")?;
        let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        ensure!(!id.is_empty(), "podman run printed no container ID");
        Ok(Container {
            id,
            conf: self.conf.clone(),
        })
    }

    /// The user a running container's process runs as, as podman reports it.
    fn user(&self, container: &Container) -> Result<String> {
        let output = self
            .command()
            .args(["inspect", "--format", "{{.Config.User}}", &container.id])
            .output()?;
        check(&output, "podman inspect")?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// A container's log so far, stdout then stderr.
    fn logs(&self, container: &Container) -> Result<String> {
        let output = self.command().args(["logs", &container.id]).output()?;
        check(&output, "podman logs")?;
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    fn print_logs(&self, container: &Container) {
        if let Ok(Output { stdout, stderr, .. }) =
            self.command().args(["logs", &container.id]).output()
        {
            eprintln!("    log of container {}:", container.id);
            for line in String::from_utf8_lossy(&stdout)
                .lines()
                .chain(String::from_utf8_lossy(&stderr).lines())
            {
                eprintln!("    | {line}");
            }
        }
    }

    /// Removes images by name; a failure only leaves an image behind.
    fn remove_images(&self, images: &[&str]) {
        let _ = self.command().args(["rmi", "-f"]).args(images).output();
    }
}

/// A running container, removed (stopped first) by its ID when dropped.
struct Container {
    id: String,
    conf: PathBuf,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .env("CONTAINERS_CONF", &self.conf)
            .args(["rm", "-f", "-t", "2", &self.id])
            .output();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_author_keeps_inits_signature_and_adds_the_metadata() {
        let fixture = std::fs::read_to_string(
            process::workspace_root()
                .join("fixtures")
                .join(FIXTURE)
                .join("tiffin.toml"),
        )
        .unwrap();
        let written = r#"
            [package]
            name = "model"
            version = "0.1.0"
            [model]
            path = "model.onnx"
            [[signature.inputs]]
            name = "X"
            dtype = "f32"
            shape = ["batch", 5]
            [[signature.outputs]]
            name = "label"
            dtype = "i64"
            shape = ["batch"]
            class_labels = ["0", "1"]
            [[signature.outputs]]
            name = "probabilities"
            dtype = "f32"
            shape = ["batch", 2]
            class_labels = ["0", "1"]
        "#;
        let authored: toml::Table =
            toml::from_str(&complete_authoring(written, &fixture, "1.32.0").unwrap()).unwrap();
        assert_eq!(authored["package"]["license"].as_str(), Some("MIT"));
        assert_eq!(authored["package"]["version"].as_str(), Some(VERSION));
        assert!(authored["examples"]["inputs"].is_str());
        assert_eq!(
            authored["examples"]["expected"].as_str(),
            Some("expected.json")
        );
        assert_eq!(
            authored["examples"]["expected_from"]["name"].as_str(),
            Some("onnxruntime")
        );
        let other = written.replace("[\"batch\", 5]", "[\"batch\", 6]");
        assert!(complete_authoring(&other, &fixture, "1.32.0").is_err());
    }

    #[test]
    fn the_expected_outputs_are_the_example_rows_of_the_reference() {
        let fixture = process::workspace_root().join("fixtures").join(FIXTURE);
        let (expected, onnxruntime) = expected_outputs(&fixture).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&expected).unwrap();
        let rows = expected["label"].as_array().unwrap().len();
        assert_eq!(rows, 8);
        assert_eq!(expected["probabilities"].as_array().unwrap().len(), rows);
        assert_eq!(expected["probabilities"][0].as_array().unwrap().len(), 2);
        assert!(!onnxruntime.is_empty());
    }
}

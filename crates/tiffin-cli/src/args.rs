//! The command line, as clap structs: these doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tiffin_doctor::Rule;

/// What `tiffin --version` prints: the version, then the engines this build runs models with
/// (`tiffin image --ort-lib` reads it to refuse a build without ONNX Runtime).
#[cfg(feature = "ort")]
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nengines: tract, onnxruntime (loaded at run time: --runtime ort)"
);
#[cfg(not(feature = "ort"))]
const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\nengines: tract");

/// Pack a trained model into a package anyone can run and trust, and check such packages.
#[derive(Debug, Parser)]
#[command(name = "tiffin", version, long_version = LONG_VERSION, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Print nothing but results and errors: no progress bars.
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a tiffin.toml for a model, with the signature read from its graph.
    ///
    /// Names, dtypes and shapes of inputs and outputs come from the graph, dynamic dims named;
    /// class labels and feature names too where the graph carries them. Fill in the rest
    /// (description, license, training, examples), then run `tiffin pack`.
    Init(InitArgs),
    /// Build NAME/VERSION/ and NAME-VERSION.tiffin from a folder holding tiffin.toml.
    ///
    /// The package holds the model, tiffin.json (metadata, signature, every file's size, sha256 and
    /// blake3), signature.json, model-card.md and checksum.txt. The archive is byte-for-byte
    /// reproducible. Nothing is written unless the whole package is: an interrupted pack leaves
    /// no half-written package, and packing again completes it. A folder or archive already
    /// holding this exact package is kept; one holding another package is refused unless
    /// --force.
    Pack(PackArgs),
    /// Check a package folder or archive: every digest, the exact file list, the manifest.
    ///
    /// Exits 0 when the package is intact and 1, listing each problem with the file concerned,
    /// when it is not. An archive is checked in place, without unpacking it. A signed
    /// package is reported as signed; with --key its signature is checked first, then every
    /// file against the signed digests.
    Verify(VerifyArgs),
    /// Show a package's manifest, signature, files and digests, without checking them.
    Inspect(InspectArgs),
    /// Sign a package with an ECDSA P-256 key, in the OpenSSF model_signing format.
    ///
    /// The package is verified first; the signature covers every file (each one's sha256) and is
    /// written as tiffin.sigstore.json into the folder, or added to the archive, replacing an
    /// earlier one. `model_signing verify key` checks it as `tiffin verify --key` does. Make a
    /// key with `openssl ecparam -name prime256v1 -genkey -noout -out key.pem` and its public key
    /// with `openssl ec -in key.pem -pubout -out pub.pem`.
    Sign(SignArgs),
    /// Run the packaging checklist on an authoring folder or a package: each rule passes, warns
    /// or fails, with the fix.
    ///
    /// Rules: integrity, version, signature, dependencies, unsafe-formats, preprocessing,
    /// model-card, metadata, device, size. PATH is a folder holding tiffin.toml (before packing),
    /// a package folder NAME/VERSION/ or an archive NAME-VERSION.tiffin. Exits 0 when nothing
    /// fails, 1 when a rule fails, and 2 when a rule warns under --strict.
    Doctor(DoctorArgs),
    /// Run a package's model on a JSON payload and print the outputs as JSON.
    ///
    /// The package is verified first. The payload is `{"X": [[...]]}` (inputs by name), a bare
    /// list for a one-input model, records with feature names `[{"mean radius": 17.9, ...}]`, or
    /// `{"columns": [...], "data": [[...]]}`. Integer outputs with class labels print the labels.
    Predict(PredictArgs),
    /// Convert a package's ONNX model to NNEF, as a new package version `VERSION+nnef`.
    ///
    /// The golden examples are rerun on the converted model and the drift of each output is
    /// printed; the new package is written only if every output stays within its tolerance.
    Convert(ConvertArgs),
    /// List every callable a pickle or joblib file imports when loaded, without loading it.
    ///
    /// Loading a pickle runs the callables it names, which is why tiffin refuses to package one.
    /// This walks the opcodes (GLOBAL, INST, STACK_GLOBAL, with the memo) and prints each import
    /// with its byte offset, flagging those that are not plain data. Exits 1 when any import can
    /// run code, or when the scan stopped at a bound (10 million opcodes, 4 GiB inflated) before
    /// the end of the file: what it did not read, it cannot vouch for.
    Scan(ScanArgs),
    /// Serve packages over HTTP: KServe/Triton V2, MLflow scoring, TF-Serving V1 and
    /// `POST /predict`.
    ///
    /// Every package is verified (digests, signature against the graph) and its golden
    /// examples rerun before it is served; one that fails stops the start unless
    /// --allow-partial. Several names and versions are served at once; the newest version
    /// answers when none is named. SIGHUP or `POST /admin/reload` loads the packages again from
    /// the same paths (a folder is searched for packages, so a new version dropped into it is
    /// found), swapping them in without failing a request; SIGTERM or Ctrl-C stops accepting,
    /// finishes the requests in flight and exits 0. `GET /openapi.json` describes every endpoint.
    Serve(ServeArgs),
    /// Put a package folder or archive into the local store, verified, tagged NAME:VERSION.
    ///
    /// The store lives in $TIFFIN_HOME, else in the user's data folder. Files identical across
    /// packages are stored once. Every command that takes a package path also takes NAME:VERSION,
    /// NAME (its newest version) or a digest (sha256:HEX, or its first digits) from the store.
    Add(AddArgs),
    /// List the packages of the local store: NAME:VERSION, digest and size.
    List(ListArgs),
    /// Remove a tag NAME:VERSION from the local store, and the package once no tag names it;
    /// a digest removes the package and all its tags. Run `tiffin gc` to free the files.
    Rm(RmArgs),
    /// Give a package of the local store another tag NAME:VERSION.
    Tag(TagArgs),
    /// Remove the files of the local store that no package uses.
    Gc(GcArgs),
    /// Push a package to an OCI registry as a CNCF ModelPack artifact.
    ///
    /// One layer per file, annotated with its path; blobs the registry already has are not sent
    /// again. REF is `HOST[:PORT]/REPOSITORY[:TAG]`; the tag defaults to the package version.
    /// Plain HTTP is used for registries on this machine (localhost, 127.0.0.1, ::1) and with
    /// --insecure; HTTPS otherwise.
    Push(PushArgs),
    /// Pull a package from an OCI registry into the local store, or a folder, verified on
    /// arrival.
    ///
    /// Every blob is checked against its digest as it streams, then the whole package is
    /// verified before it is tagged in the store; nothing half-pulled is ever used. Rerunning an
    /// interrupted pull fetches only what is missing. With --into (or a DEST after the
    /// reference, as KServe runs a storage initializer) the verified package folder is renamed
    /// into DIR/NAME/VERSION/ instead, for `tiffin serve DIR`.
    Pull(PullArgs),
    /// Build a runnable OCI image of tiffin and packages, without a container daemon.
    ///
    /// Layer 1 is a static tiffin at /usr/bin/tiffin (the running executable unless --binary),
    /// with /tmp, /etc/passwd for user 65532 and an empty /models; each package, verified first,
    /// is a layer of its own under /models/NAME/VERSION/. The image runs `tiffin serve /models
    /// --host 0.0.0.0 --port 8080` as 65532:65532. Layers are deterministic: the same packages
    /// and binary give the same image digest. Without packages it is the runtime image KServe's
    /// containers use. Write an OCI layout (--out), an archive for `podman load`/`docker load`
    /// (--archive), or push it (--push, sending only the blobs the registry lacks). With
    /// --ort-lib it serves with ONNX Runtime: the dynamic build, its shared libraries and
    /// libonnxruntime.so go in.
    Image(ImageArgs),
    /// Print the completion script of a shell, to be saved where the shell looks for them.
    ///
    /// For example `tiffin completions bash > ~/.local/share/bash-completion/completions/tiffin`,
    /// `tiffin completions zsh > ~/.zfunc/_tiffin` (with ~/.zfunc in $fpath) or `tiffin
    /// completions fish > ~/.config/fish/completions/tiffin.fish`. The release archive ships the
    /// bash, zsh and fish scripts ready-made.
    Completions(CompletionsArgs),
    /// Print tiffin's man page (roff), as the release archive ships it.
    #[command(hide = true)]
    Man,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// A package folder (NAME/VERSION/) or archive (NAME-VERSION.tiffin).
    pub(crate) path: PathBuf,
    /// Check digests and files only: do not load the model or rerun the golden examples.
    #[arg(long)]
    pub(crate) no_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print the list as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// NAME:VERSION, or a package digest (sha256:HEX or its first digits).
    pub(crate) package: String,
    /// Print what was removed as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TagArgs {
    /// The package: NAME:VERSION, NAME or a digest.
    pub(crate) source: String,
    /// The new tag, NAME:VERSION (the version may be any label, e.g. `churn:prod`).
    pub(crate) target: String,
}

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Print what was removed as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// How to reach and log in to a registry.
#[derive(Debug, Args)]
pub(crate) struct RegistryArgs {
    /// User name [default: $TIFFIN_REGISTRY_USERNAME, else the Docker config's auths].
    #[arg(long, requires = "password")]
    pub(crate) username: Option<String>,
    /// Password or token [default: $TIFFIN_REGISTRY_PASSWORD].
    #[arg(long, requires = "username")]
    pub(crate) password: Option<String>,
    /// Allow plain HTTP to a registry that is not on this machine.
    #[arg(long)]
    pub(crate) insecure: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// A package folder or archive, or NAME:VERSION, NAME or a digest from the local store.
    pub(crate) package: PathBuf,
    /// `HOST[:PORT]/REPOSITORY[:TAG]`, e.g. `localhost:5000/models/churn:1.0.0`.
    pub(crate) reference: String,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// `HOST[:PORT]/REPOSITORY:TAG` or `HOST[:PORT]/REPOSITORY@sha256:HEX`, optionally as a
    /// URI `tiffin://HOST/...` (a KServe `storageUri`).
    pub(crate) reference: String,
    /// Write the verified package folder to DEST/NAME/VERSION/ instead of the local store: the
    /// same as --into, in the form KServe calls a storage initializer with (`<uri> <dest>`).
    #[arg(value_name = "DEST", conflicts_with = "into")]
    pub(crate) dest: Option<PathBuf>,
    /// Write the verified package folder to DIR/NAME/VERSION/ (a folder `tiffin serve` serves)
    /// instead of the local store; it appears there whole or not at all.
    #[arg(long, value_name = "DIR")]
    pub(crate) into: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// Check digests and files only: do not load the model or rerun the golden examples.
    #[arg(long)]
    pub(crate) no_run: bool,
    /// The signer's public key (PEM, ECDSA P-256): the pulled package must carry a signature
    /// it verifies, over exactly its files, before it enters the store. In TIFFIN_PULL_KEY, a
    /// path or the PEM text itself.
    #[arg(
        long,
        value_name = "PUB.pem",
        group = "checker",
        env = "TIFFIN_PULL_KEY"
    )]
    pub(crate) key: Option<PathBuf>,
    /// Certificate mode: trusted root CA certificates (PEM) the signature's chain must lead to.
    #[arg(
        long,
        value_name = "ROOTS.pem",
        group = "checker",
        env = "TIFFIN_PULL_ROOT"
    )]
    pub(crate) root: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["out", "archive", "push"]))]
pub(crate) struct ImageArgs {
    /// Package folders or archives, or NAME:VERSION, NAME or digests from the local store.
    pub(crate) packages: Vec<PathBuf>,
    /// Write an OCI image layout to this folder (it must not exist).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Write the image as one tar, for `podman load -i` or `docker load -i`.
    #[arg(long, value_name = "FILE.tar")]
    pub(crate) archive: Option<PathBuf>,
    /// Push the image to a registry: `HOST[:PORT]/REPOSITORY:TAG`.
    #[arg(long, value_name = "REF")]
    pub(crate) push: Option<String>,
    /// The name the layout or archive gives the image [default: NAME:VERSION of the first
    /// package, else tiffin:VERSION].
    #[arg(long, value_name = "NAME:TAG")]
    pub(crate) tag: Option<String>,
    /// The static tiffin binary to put in the image [default: this executable]; with
    /// --ort-lib, the dynamically linked build with ONNX Runtime support.
    #[arg(long, value_name = "PATH")]
    pub(crate) binary: Option<PathBuf>,
    /// Serve with ONNX Runtime: put this libonnxruntime.so in the image (at
    /// /usr/lib/onnxruntime/), with the shared libraries it and the binary need, taken from this
    /// machine, and run `serve` with TIFFIN_RUNTIME=ort. The binary must be the dynamically
    /// linked build with ONNX Runtime support (the -ort archive of `cargo xtask dist`).
    #[arg(long, value_name = "PATH", requires = "ort_notice")]
    pub(crate) ort_lib: Option<PathBuf>,
    /// ONNX Runtime's licence and notices, put in /usr/share/doc/onnxruntime/ by their names
    /// (the wheel's onnxruntime/LICENSE and onnxruntime/ThirdPartyNotices.txt); required with
    /// --ort-lib, repeatable.
    #[arg(long, value_name = "FILE", requires = "ort_lib")]
    pub(crate) ort_notice: Vec<PathBuf>,
    /// The signer's public key (PEM, ECDSA P-256): every package must carry a signature it
    /// verifies.
    #[arg(long, value_name = "PUB.pem")]
    pub(crate) key: Option<PathBuf>,
    /// Store layers as plain tars instead of gzipped ones.
    #[arg(long)]
    pub(crate) uncompressed: bool,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PackArgs {
    /// The authoring folder (holding tiffin.toml) or the tiffin.toml itself.
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,
    /// Where to write NAME/VERSION/ and NAME-VERSION.tiffin [default: the authoring folder].
    #[arg(long, short)]
    pub(crate) out: Option<PathBuf>,
    /// Replace an existing, different package of the same name and version.
    #[arg(long)]
    pub(crate) force: bool,
    /// Example inputs (JSON, any form `predict` takes) to run and store with their outputs as
    /// golden examples, which `verify` reruns [default: `[examples] inputs` of tiffin.toml].
    #[arg(long, value_name = "FILE")]
    pub(crate) examples: Option<PathBuf>,
    /// Pack even though this `tiffin doctor` rule fails (repeatable), e.g. `--skip-check device`.
    /// Pack refuses an authoring folder on which any other rule fails.
    #[arg(long = "skip-check", value_name = "RULE")]
    pub(crate) skip_check: Vec<Rule>,
    // Check the model and make the golden examples' outputs with this engine (recorded in the
    // manifest as `runtime.checked_on`), e.g. `--runtime ort` for a model tract mis-runs.
    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// An authoring folder (holding tiffin.toml), a package folder (NAME/VERSION/) or an archive
    /// (NAME-VERSION.tiffin), or NAME:VERSION, NAME or a digest from the local store.
    pub(crate) path: PathBuf,
    /// A sample payload (JSON, any form `predict` takes) that must conform to the signature and
    /// run [default: the package's golden examples].
    #[arg(long, value_name = "FILE")]
    pub(crate) payload: Option<PathBuf>,
    /// Exit 2 when a rule warns (and none fails), for CI.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Do not run this rule (repeatable), e.g. `--skip-check preprocessing`.
    #[arg(long = "skip-check", value_name = "RULE")]
    pub(crate) skip_check: Vec<Rule>,
    /// Print the report as JSON: each finding with its rule, level, message, fix and location.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// A package folder (NAME/VERSION/) or archive (NAME-VERSION.tiffin), or NAME:VERSION,
    /// NAME or a digest from the local store.
    pub(crate) path: PathBuf,
    /// Recompute sha256 as well as blake3 (slower; blake3 alone already checks every byte).
    #[arg(long)]
    pub(crate) sha256: bool,
    /// Check digests and files only: do not load the model, check its signature against the
    /// graph, or rerun the golden examples.
    #[arg(long)]
    pub(crate) no_run: bool,
    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
    /// The signer's public key (PEM, ECDSA P-256): check the package's tiffin.sigstore.json with
    /// it, then every file against the signed digests. An unsigned package fails.
    #[arg(long, value_name = "PUB.pem", group = "checker")]
    pub(crate) key: Option<PathBuf>,
    /// Certificate mode: trusted root CA certificates (PEM); the signature's certificate chain
    /// must lead to one of them, then every file is checked against the signed digests.
    /// (`--cert-chain` is the same flag, named as model_signing's `--certificate_chain`.)
    #[arg(
        long,
        value_name = "ROOTS.pem",
        group = "checker",
        visible_alias = "cert-chain"
    )]
    pub(crate) root: Option<PathBuf>,
    /// A detached signature bundle to check instead of the package's own tiffin.sigstore.json,
    /// such as one `model_signing sign` wrote outside the folder.
    #[arg(long, value_name = "FILE", requires = "checker")]
    pub(crate) signature: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// A package folder (NAME/VERSION/) or archive (NAME-VERSION.tiffin).
    pub(crate) path: PathBuf,
    /// The private key (PEM: PKCS#8 `BEGIN PRIVATE KEY` or SEC1 `BEGIN EC PRIVATE KEY`, on
    /// P-256, unencrypted).
    #[arg(long, value_name = "KEY.pem")]
    pub(crate) key: PathBuf,
    /// Certificate mode: the key's certificate (PEM), put in the signature with --cert-chain, so
    /// that it is checked against root certificates (`tiffin verify --root`) instead of a key.
    #[arg(long, value_name = "CERT.pem")]
    pub(crate) cert: Option<PathBuf>,
    /// The intermediate CA certificates between --cert and the root (PEM, any number).
    #[arg(long, value_name = "CHAIN.pem", requires = "cert")]
    pub(crate) cert_chain: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// A package folder (NAME/VERSION/) or archive (NAME-VERSION.tiffin), or NAME:VERSION,
    /// NAME or a digest from the local store.
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

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The model: an .onnx file, an NNEF archive (.nnef.tar, .nnef.tgz) or an NNEF folder.
    pub(crate) model: PathBuf,
    /// The package name [default: from the model's file name].
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// The package version.
    #[arg(long, default_value = "0.1.0")]
    pub(crate) version: String,
    /// Replace an existing tiffin.toml.
    #[arg(long)]
    pub(crate) force: bool,
    /// Print the file instead of writing tiffin.toml beside the model.
    #[arg(long)]
    pub(crate) stdout: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PredictArgs {
    /// A package folder (NAME/VERSION/) or archive (NAME-VERSION.tiffin), or NAME:VERSION,
    /// NAME or a digest from the local store.
    pub(crate) package: PathBuf,
    /// The payload: JSON text, or @FILE to read it from a file [default: read standard input].
    #[arg(long, short)]
    pub(crate) input: Option<String>,
    /// Print class indices as the model gives them instead of their labels.
    #[arg(long)]
    pub(crate) raw: bool,
    /// Threads to spread the model's matrix products over; pays for large convolution models
    /// on many cores only (see docs/runtime.md).
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// An ONNX package folder or archive with golden examples, or NAME:VERSION, NAME or a
    /// digest from the local store.
    pub(crate) package: PathBuf,
    /// The format to convert to.
    #[arg(long, value_enum)]
    pub(crate) to: TargetFormat,
    /// Where to write the new package [default: beside the original; the current folder for a
    /// package of the local store].
    #[arg(long, short)]
    pub(crate) out: Option<PathBuf>,
    /// Replace an existing package of the same name and version.
    #[arg(long)]
    pub(crate) force: bool,
    /// Print the drift table and the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The engine that runs a model, for `predict`, `serve`, `verify` and `pack`.
#[derive(Debug, Args)]
pub(crate) struct RuntimeArgs {
    /// The engine that runs the model: tract (built in, pure Rust, ONNX and NNEF) or ort (ONNX
    /// Runtime, loaded from --ort-lib; ONNX models only, in builds with ONNX Runtime support).
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Tract, env = "TIFFIN_RUNTIME")]
    pub(crate) runtime: RuntimeChoice,
    /// The ONNX Runtime library for --runtime ort: libonnxruntime.so, version 1.17 or later
    /// (`pip install onnxruntime` puts it in onnxruntime/capi/) [default: libonnxruntime.so
    /// beside the tiffin executable, else from the system's library path].
    #[arg(long, value_name = "PATH", env = "TIFFIN_ORT_LIB")]
    pub(crate) ort_lib: Option<PathBuf>,
}

impl RuntimeArgs {
    /// The runtime as the runtime crate takes it.
    pub(crate) fn runtime(&self) -> tiffin_core::runtime::Runtime {
        match self.runtime {
            RuntimeChoice::Tract => tiffin_core::runtime::Runtime::Tract,
            RuntimeChoice::Ort => tiffin_core::runtime::Runtime::Ort {
                library: match &self.ort_lib {
                    // A path with a folder in it is the user's, from the current folder (the
                    // loader would look beside the executable first); a bare file name is
                    // looked up beside the executable, then on the library path.
                    Some(path) if path.components().count() > 1 => {
                        std::path::absolute(path).unwrap_or_else(|_| path.clone())
                    }
                    Some(path) => path.clone(),
                    None => PathBuf::from("libonnxruntime.so"),
                },
            },
        }
    }
}

/// Engines `--runtime` chooses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RuntimeChoice {
    /// tract, built in.
    Tract,
    /// ONNX Runtime, loaded from --ort-lib.
    Ort,
}

/// Formats `convert` writes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum TargetFormat {
    /// tract's NNEF archive.
    Nnef,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Package folders (NAME/VERSION/), archives (NAME-VERSION.tiffin), folders holding them,
    /// or NAME:VERSION, NAME or digests from the local store.
    #[arg(required = true)]
    pub(crate) packages: Vec<PathBuf>,
    /// The address to listen on; 0.0.0.0 for every interface.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: String,
    /// The port to listen on; 0 picks a free one (the log says which).
    #[arg(long, short, default_value_t = 8080)]
    pub(crate) port: u16,
    /// Serve the packages that load even if others fail verification.
    #[arg(long)]
    pub(crate) allow_partial: bool,
    /// Start even when the paths hold no package yet, and load them once they appear: live at
    /// once, ready when a package is served; the log says why it still waits (missing,
    /// permission denied, a package that fails). Also on when `MODEL_INIT_MODE=async`, as KServe
    /// sets it when a storage initializer writes the model after the server starts.
    #[arg(long)]
    pub(crate) wait_for_models: bool,
    /// The signer's public key (PEM, ECDSA P-256): serve only packages whose signature it
    /// verifies; an unsigned or changed package is refused at load like a tampered one.
    #[arg(long, value_name = "PUB.pem", group = "serve_checker")]
    pub(crate) key: Option<PathBuf>,
    /// Certificate mode: serve only packages whose signing certificate chain leads to one of
    /// these trusted root CA certificates (PEM).
    #[arg(long, value_name = "ROOTS.pem", group = "serve_checker")]
    pub(crate) root: Option<PathBuf>,
    /// Turn off the web page (the models, their cards and a try-it form for a browser at `/`
    /// and under `/ui/`); the APIs answer the same either way.
    #[arg(long)]
    pub(crate) no_ui: bool,
    /// Merge concurrent requests into model runs of at most this many rows (1 turns batching
    /// off), for every model whose signature has a batch dim, or as `MODEL=N` for one model;
    /// repeat for several [default: each package's `serving.max_batch_size`, else off].
    #[arg(long, value_name = "[MODEL=]N", value_parser = scoped::<usize>)]
    pub(crate) max_batch_size: Vec<Scoped<usize>>,
    /// Merge requests whenever batching is set. Without it, each model batching is set for is
    /// timed at load on its example inputs (one row alone against a batch of copies), and its
    /// requests run singly when a batch does not cost clearly less per row (tract's
    /// convolutions do not: batched, mnist_cnn served 0.6x the requests).
    #[arg(long)]
    pub(crate) no_batch_probe: bool,
    /// How long a request may wait for others to join its batch, in microseconds, for every
    /// model or as `MODEL=US` for one; repeat for several [default: each package's
    /// `serving.max_delay_us`, else 500].
    #[arg(long, value_name = "[MODEL=]US", value_parser = scoped::<u64>)]
    pub(crate) max_delay_us: Vec<Scoped<u64>>,
    /// How many plans tract keeps per model, each typed and optimized for one batch size or,
    /// for a model typed per shape, one input shape (least recently used out; 0 runs every
    /// call on the plan that takes any size), for every model or as `MODEL=N` for one; repeat
    /// for several [default: each package's `serving.plan_cache`, else 8].
    #[arg(long, value_name = "[MODEL=]N", value_parser = scoped::<usize>)]
    pub(crate) plan_cache: Vec<Scoped<usize>>,
    /// Threads each model run spreads its matrix products over. The server already runs
    /// requests in parallel, so 1 (off) suits most loads; more can pay for a large convolution
    /// model with few requests on many cores.
    #[arg(long, default_value_t = 1)]
    pub(crate) model_threads: usize,
    /// With --runtime ort: sessions each model is loaded into, each holding a copy of the
    /// weights, so that that many requests run it at once; 1 runs them in turn behind a lock.
    /// See docs/runtime.md for which serves better.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub(crate) ort_sessions: usize,
    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
    /// Runs measured to take less than this many microseconds run on the async workers rather
    /// than the blocking pool, which saves the hop between them on small models; 0 sends every
    /// run to the pool.
    #[arg(long, default_value_t = 50)]
    pub(crate) inline_below_us: u64,
    /// Largest request body, in bytes, after gzip/deflate decoding.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub(crate) max_body_bytes: usize,
    /// Request bodies held in memory at once, in bytes, all requests together; a request
    /// whose body would go past it gets 503 with Retry-After.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub(crate) max_body_memory: usize,
    /// Open connections at once; more wait to be accepted.
    #[arg(long, default_value_t = 1024)]
    pub(crate) max_connections: usize,
    /// Most rows one request may send.
    #[arg(long, default_value_t = 4096)]
    pub(crate) max_request_rows: usize,
    /// Model runs at once [default: the number of cores].
    #[arg(long)]
    pub(crate) max_concurrency: Option<usize>,
    /// Requests that may wait for a model run; beyond this, 503 with Retry-After.
    #[arg(long, default_value_t = 256)]
    pub(crate) max_queue: usize,
    /// Longest a request may take, in milliseconds; longer ones get 503.
    #[arg(long, default_value_t = 30_000)]
    pub(crate) timeout_ms: u64,
    /// Longest shutdown waits for requests in flight, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) grace_ms: u64,
    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// How `serve` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// A setting for every model (`N`) or for one model by name (`MODEL=N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scoped<T> {
    /// For every model.
    All(T),
    /// For the model of this name.
    Model(String, T),
}

fn scoped<T: std::str::FromStr>(text: &str) -> Result<Scoped<T>, String>
where
    T::Err: std::fmt::Display,
{
    let number = |n: &str| n.trim().parse::<T>().map_err(|e| format!("`{n}`: {e}"));
    match text.rsplit_once('=') {
        Some((model, n)) if !model.trim().is_empty() => {
            Ok(Scoped::Model(model.trim().to_owned(), number(n)?))
        }
        Some(_) => Err(format!("`{text}` names no model before `=`")),
        None => Ok(Scoped::All(number(text)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_settings_take_a_number_or_a_model_and_a_number() {
        assert_eq!(scoped::<usize>("64"), Ok(Scoped::All(64)));
        assert_eq!(
            scoped::<usize>("mnist_cnn=16"),
            Ok(Scoped::Model("mnist_cnn".into(), 16))
        );
        assert!(scoped::<usize>("=16").is_err());
        assert!(scoped::<usize>("mnist_cnn=").is_err());
        assert!(scoped::<usize>("sixteen").is_err());
    }
}

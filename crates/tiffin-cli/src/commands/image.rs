//! `tiffin image`: a runnable OCI image of the static binary and packages, with no daemon.

use std::path::PathBuf;

use anyhow::Context;
use indicatif::HumanBytes;
use tiffin_core::Verifier;
use tiffin_store::oci::Reference;
use tiffin_store::oci::image::{self, ImageOptions, ImageTarget, OnnxRuntimeFiles};

use crate::Outcome;
use crate::args::ImageArgs;

pub(crate) fn run(args: &ImageArgs) -> anyhow::Result<Outcome> {
    let packages = args
        .packages
        .iter()
        .map(|p| tiffin_store::resolve(p))
        .collect::<Result<Vec<_>, _>>()?;
    let binary = match &args.binary {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("cannot find the running tiffin executable")?,
    };
    let tag = match &args.tag {
        Some(tag) => tag.clone(),
        None => image::default_tag(&packages)?,
    };
    let target = if let Some(dir) = &args.out {
        ImageTarget::Layout {
            dir: dir.clone(),
            tag,
        }
    } else if let Some(file) = &args.archive {
        ImageTarget::Archive {
            file: file.clone(),
            tag,
        }
    } else {
        let reference: Reference = args
            .push
            .as_deref()
            .expect("clap requires one of --out, --archive, --push")
            .parse()?;
        let options = super::push::client_options(&args.registry, &reference)?;
        ImageTarget::Push { reference, options }
    };
    if args.ort_lib.is_some() {
        check_ort_support(&binary)?;
    }
    let options = ImageOptions {
        packages,
        binary,
        gzip: !args.uncompressed,
        signer: Verifier::from_pem_files(args.key.as_deref(), None)?,
        onnxruntime: args.ort_lib.as_ref().map(|library| OnnxRuntimeFiles {
            library: library.clone(),
            notices: args.ort_notice.clone(),
            root: PathBuf::from("/"),
        }),
    };
    let report = image::build_image(&options, &target)?;
    if args.json {
        super::print_json(&report)?;
        return Ok(Outcome::Success);
    }
    outln!("image {}", report.target);
    outln!("  digest   {}", report.digest);
    outln!("  size     {}", HumanBytes(report.size));
    for layer in &report.layers {
        outln!(
            "  layer    {} {} ({})",
            layer.holds,
            layer.digest,
            HumanBytes(layer.size)
        );
    }
    if let (Some(uploaded), Some(skipped)) = (report.uploaded, report.skipped) {
        outln!("  blobs    {uploaded} sent, {skipped} already in the registry");
    }
    Ok(Outcome::Success)
}

/// Refuses, before anything is built, a binary that cannot serve with ONNX Runtime, by asking
/// it: its `--version` names the engines it was built with.
fn check_ort_support(binary: &std::path::Path) -> anyhow::Result<()> {
    let output = std::process::Command::new(binary)
        .arg("--version")
        .env_clear()
        .output()
        .with_context(|| format!("cannot run {} --version", binary.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success() && text.contains("onnxruntime"),
        "{} was built without ONNX Runtime support (its --version says {:?}): give the build \
         with it with --binary (the -ort archive of `cargo xtask dist`, or `cargo build \
         --release -p tiffin-cli --features ort`)",
        binary.display(),
        text.trim()
    );
    Ok(())
}

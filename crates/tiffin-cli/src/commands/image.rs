//! `tiffin image`: a runnable OCI image of the static binary and packages, with no daemon.

use anyhow::Context;
use indicatif::HumanBytes;
use tiffin_core::Verifier;
use tiffin_store::oci::Reference;
use tiffin_store::oci::image::{self, ImageOptions, ImageTarget};

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
    let options = ImageOptions {
        packages,
        binary,
        gzip: !args.uncompressed,
        signer: Verifier::from_pem_files(args.key.as_deref(), None)?,
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

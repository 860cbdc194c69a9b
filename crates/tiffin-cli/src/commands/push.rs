//! `tiffin push`: a package to an OCI registry, as a ModelPack artifact.

use indicatif::HumanBytes;
use tiffin_core::oci::{self, ClientOptions, Credentials, Reference};
use tiffin_core::store::Store;
use tiffin_core::{PackageKind, VerifyOptions, hash::Algorithms, package_kind};

use crate::Outcome;
use crate::args::{PushArgs, RegistryArgs};

pub(crate) fn run(args: &PushArgs) -> anyhow::Result<Outcome> {
    let reference: Reference = args.reference.parse()?;
    let options = client_options(&args.registry, &reference)?;
    let mut folder = tiffin_core::store::resolve(&args.package)?;
    if package_kind(&folder)? == PackageKind::Archive {
        // Layers are files, so an archive is unpacked into the local store first (verified).
        let store = Store::open_default()?;
        let verify = VerifyOptions {
            algorithms: Algorithms::BLAKE3,
            run_model: false,
        };
        folder = store.add(&folder, &verify)?.entry.path;
    }
    let report = oci::push(&folder, &reference, &options)?;
    if args.json {
        super::print_json(&report)?;
    } else {
        outln!("pushed {}", report.reference);
        outln!("  manifest {}", report.manifest_digest);
        outln!("  package  {}", report.package_digest);
        outln!(
            "  blobs    {} sent ({}), {} already there",
            report.uploaded,
            HumanBytes(report.bytes_uploaded),
            report.skipped
        );
    }
    Ok(Outcome::Success)
}

/// The flags, else the environment or the Docker config file.
pub(crate) fn client_options(
    args: &RegistryArgs,
    reference: &Reference,
) -> anyhow::Result<ClientOptions> {
    let credentials = match (&args.username, &args.password) {
        (Some(username), Some(password)) => Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        }),
        _ => Credentials::lookup(&reference.registry)?,
    };
    Ok(ClientOptions {
        insecure: args.insecure,
        credentials,
    })
}

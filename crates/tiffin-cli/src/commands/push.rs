//! `tiffin push`: a package to an OCI registry, as a ModelPack artifact.

use indicatif::HumanBytes;
use tiffin_store::oci::{self, ClientOptions, Credentials, Reference};

use crate::Outcome;
use crate::args::{PushArgs, RegistryArgs};

pub(crate) fn run(args: &PushArgs) -> anyhow::Result<Outcome> {
    let reference: Reference = args.reference.parse()?;
    let options = client_options(&args.registry, &reference)?;
    let package = tiffin_store::resolve(&args.package)?;
    let report = oci::push(&package, &reference, &options)?;
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

//! `tiffin sign`: sign a package with a private key.

use tiffin_core::{CertificateChain, PackageKind, SignOptions, SigningKey, sign};

use crate::Outcome;
use crate::args::SignArgs;
use crate::progress::Bar;

pub(crate) fn run(args: &SignArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let key = SigningKey::from_pem_file(&args.key)?;
    let certificates = match &args.cert {
        Some(cert) => Some(CertificateChain::from_pem_files(
            cert,
            args.cert_chain.as_deref(),
        )?),
        None => None,
    };
    let options = SignOptions {
        certificates,
        ..SignOptions::default()
    };
    let bar = Bar::new(quiet, "verifying");
    let signed = sign(&args.path, &key, &options, &bar)?;
    bar.finish();
    if args.json {
        super::print_json(&signed)?;
        return Ok(Outcome::Success);
    }
    outln!(
        "signed {} {} ({}): {} files",
        signed.name,
        signed.version,
        signed.kind,
        signed.files
    );
    match (signed.kind, signed.replaced) {
        (PackageKind::Folder, false) => {
            outln!("  bundle   {}", signed.bundle.display());
        }
        (PackageKind::Folder, true) => {
            outln!(
                "  bundle   {} (replaced the earlier signature)",
                signed.bundle.display()
            );
        }
        (PackageKind::Archive, false) => {
            outln!("  bundle   tiffin.sigstore.json, added to the archive");
        }
        (PackageKind::Archive, true) => {
            outln!("  bundle   tiffin.sigstore.json, replaced in the archive");
        }
    }
    outln!("  subject  {}", signed.subject_digest);
    outln!("  key      {}", signed.key_hint);
    if let Some(subject) = &signed.certificate {
        outln!("  cert     {subject}");
    }
    Ok(Outcome::Success)
}

//! `tiffin list`, `rm`, `tag` and `gc`: the local store.

use indicatif::HumanBytes;
use tiffin_store::{Store, Stored};

use crate::Outcome;
use crate::args::{GcArgs, ListArgs, RmArgs, TagArgs};

/// Prints what an add or a pull put into the store.
pub(crate) fn print_stored(verb: &str, stored: &Stored) {
    let e = &stored.entry;
    let tag = e.tag.as_deref().unwrap_or("-");
    let note = if stored.new {
        ""
    } else {
        " (the store already had it)"
    };
    outln!("{verb} {tag}{note}");
    outln!("  digest   {}", e.digest);
    outln!("  size     {}", HumanBytes(e.size));
    outln!("  path     {}", e.path.display());
    if let Some(old) = &stored.replaced {
        outln!("  the tag {tag} named {old} before");
    }
}

pub(crate) fn list(args: &ListArgs) -> anyhow::Result<Outcome> {
    let store = Store::open_default()?;
    let entries = store.list()?;
    if args.json {
        super::print_json(&entries)?;
        return Ok(Outcome::Success);
    }
    if entries.is_empty() {
        outln!(
            "the store {} is empty: add a package with `tiffin add PKG` or `tiffin pull REF`",
            store.root().display()
        );
        return Ok(Outcome::Success);
    }
    let width = entries
        .iter()
        .map(|e| e.tag.as_deref().unwrap_or("<none>").len())
        .max()
        .unwrap_or(0)
        .max("NAME:VERSION".len());
    outln!(
        "{:<width$}  {:<19}  {:>10}",
        "NAME:VERSION",
        "DIGEST",
        "SIZE"
    );
    for e in &entries {
        // The first 12 hex digits name a package as well as the whole digest does here.
        let short = &e.digest[..e.digest.len().min("sha256:".len() + 12)];
        outln!(
            "{:<width$}  {short:<19}  {:>10}",
            e.tag.as_deref().unwrap_or("<none>"),
            HumanBytes(e.size).to_string()
        );
    }
    Ok(Outcome::Success)
}

pub(crate) fn rm(args: &RmArgs) -> anyhow::Result<Outcome> {
    let store = Store::open_default()?;
    let removed = store.remove(&args.package)?;
    if args.json {
        super::print_json(&removed)?;
    } else {
        for tag in &removed.tags {
            outln!("untagged {tag}");
        }
        if let Some(digest) = &removed.package {
            outln!("removed {digest} (run `tiffin gc` to free its files)");
        }
    }
    Ok(Outcome::Success)
}

pub(crate) fn tag(args: &TagArgs) -> anyhow::Result<Outcome> {
    let store = Store::open_default()?;
    let entry = store.tag(&args.source, &args.target)?;
    outln!("tagged {} as {}", entry.digest, args.target);
    Ok(Outcome::Success)
}

pub(crate) fn gc(args: &GcArgs) -> anyhow::Result<Outcome> {
    let store = Store::open_default()?;
    let collected = store.gc()?;
    if args.json {
        super::print_json(&collected)?;
    } else {
        outln!(
            "removed {} unused file(s), {}",
            collected.blobs,
            HumanBytes(collected.bytes)
        );
        if collected.staging + collected.tags > 0 {
            outln!(
                "removed {} leftover(s) of interrupted commands",
                collected.staging + collected.tags
            );
        }
    }
    Ok(Outcome::Success)
}

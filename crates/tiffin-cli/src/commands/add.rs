//! `tiffin add`: put a package into the local store.

use tiffin_core::{VerifyOptions, hash::Algorithms};
use tiffin_store::Store;

use crate::Outcome;
use crate::args::AddArgs;

pub(crate) fn run(args: &AddArgs) -> anyhow::Result<Outcome> {
    let store = Store::open_default()?;
    let options = VerifyOptions {
        algorithms: Algorithms::BLAKE3,
        run_model: !args.no_run,
        ..VerifyOptions::default()
    };
    let stored = store.add(&args.path, &options)?;
    if args.json {
        super::print_json(&stored)?;
    } else {
        super::store::print_stored("added", &stored);
    }
    Ok(Outcome::Success)
}

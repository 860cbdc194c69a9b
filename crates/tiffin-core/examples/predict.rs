//! Loads a package and predicts from Rust: the package is verified (digests) and its model
//! loaded once, then run on a JSON payload in any form `tiffin predict` takes, outputs by name
//! with class labels mapped.
//!
//! ```text
//! cargo run -p tiffin-core --example predict -- PKG '{"X": [[5.1, 3.5, 1.4, 0.2]]}'
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use tiffin_core::runtime::LoadOptions;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(package), Some(payload)) = (args.next(), args.next()) else {
        eprintln!("usage: predict PACKAGE JSON");
        return ExitCode::from(2);
    };
    match predict(&PathBuf::from(package), &payload) {
        Ok(outputs) => {
            println!("{outputs}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn predict(package: &std::path::Path, payload: &str) -> Result<String, Box<dyn std::error::Error>> {
    let payload: serde_json::Value = serde_json::from_str(payload)?;
    // Load once (verifying the files and typing the model), then run as often as needed, from
    // any number of threads.
    let loaded = tiffin_core::load(package, &LoadOptions::default())?;
    let outputs = loaded.predict_json(&payload, true)?;
    Ok(serde_json::to_string(&outputs)?)
}

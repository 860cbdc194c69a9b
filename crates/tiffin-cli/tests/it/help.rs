//! The help text is the documentation of the command line: pin it.

use crate::tiffin;

#[test]
fn help() {
    let here = std::env::current_dir().unwrap();
    insta::assert_snapshot!("help", tiffin(&["--help"], &here, None));
    for command in [
        "init", "pack", "verify", "inspect", "sign", "doctor", "predict", "convert", "scan", "add",
        "list", "rm", "tag", "gc", "push", "pull",
    ] {
        insta::assert_snapshot!(
            format!("help_{command}"),
            tiffin(&[command, "--help"], &here, None)
        );
    }
}

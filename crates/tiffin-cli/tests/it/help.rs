//! The help text is the documentation of the command line: pin it.

use crate::tiffin;

#[test]
fn help() {
    let here = std::env::current_dir().unwrap();
    insta::assert_snapshot!("help", tiffin(&["--help"], &here, None));
    for command in [
        "init",
        "pack",
        "verify",
        "inspect",
        "sign",
        "doctor",
        "predict",
        "convert",
        "scan",
        "add",
        "list",
        "rm",
        "tag",
        "gc",
        "push",
        "pull",
        "image",
        "completions",
    ] {
        insta::assert_snapshot!(
            format!("help_{command}"),
            tiffin(&[command, "--help"], &here, None)
        );
    }
}

/// Every shell's script is generated from the same definitions: each names a command and a flag
/// of a command, and an unknown shell is refused with the list of known ones.
#[test]
fn completions() {
    let here = std::env::current_dir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _tiffin"),
        ("zsh", "#compdef tiffin"),
        ("fish", "complete -c tiffin"),
    ] {
        let output = tiffin(&["completions", shell], &here, None);
        assert!(output.starts_with("exit_code: 0"), "{shell}: {output}");
        assert!(output.contains(marker), "{shell}: {output}");
        assert!(output.contains("verify"), "{shell}: no verify command");
        assert!(output.contains("allow-partial"), "{shell}: no serve flag");
    }
    let output = tiffin(&["completions", "tcsh"], &here, None);
    assert!(output.starts_with("exit_code: 2"), "{output}");
    assert!(output.contains("possible values: bash"), "{output}");
}

/// The man page is roff for section 1, lists the commands, and carries no date: it is the same
/// from every build of the same source.
#[test]
fn man_page() {
    let here = std::env::current_dir().unwrap();
    let output = tiffin(&["man"], &here, None);
    assert!(output.starts_with("exit_code: 0"), "{output}");
    assert!(output.contains(".TH tiffin 1"), "{output}");
    assert!(output.contains("tiffin\\-verify"), "{output}");
    assert_eq!(output, tiffin(&["man"], &here, None));
}

#[test]
fn version_names_the_engines_of_the_build() {
    let out = tiffin(&["--version"], std::path::Path::new("."), None);
    assert!(out.contains("engines: tract"), "{out}");
    assert_eq!(out.contains("onnxruntime"), cfg!(feature = "ort"), "{out}");
}

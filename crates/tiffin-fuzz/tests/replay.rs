//! Replays every committed corpus file through its fuzz target on stable, so that an input that
//! once crashed a target (and was added to its corpus with its fix) keeps passing.

use std::path::Path;

#[test]
fn every_corpus_replays_without_a_failure() {
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in tiffin_fuzz::TARGETS {
        let dir = corpora.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no corpus {}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "the corpus {} is empty", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} failed on {}", file.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} corpus files");
}

/// Every target has its libFuzzer binary in fuzz/, and every binary there is a target here.
#[test]
fn the_libfuzzer_binaries_are_the_targets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    let mut binaries: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.trim_end_matches(".rs").to_owned()
        })
        .collect();
    binaries.sort();
    let mut targets: Vec<String> = tiffin_fuzz::TARGETS
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    targets.sort();
    assert_eq!(binaries, targets);
}

//! A progress bar on stderr for long hashing runs, shown only where a person can see it.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Below this much data the work is over before a bar would be worth drawing.
const SHOW_FROM: u64 = 100 << 20;

/// A byte-counting bar that stays hidden until the work grows past [`SHOW_FROM`], and for good
/// when stderr is not a terminal or `--quiet` was given.
pub(crate) struct Bar {
    bar: ProgressBar,
    enabled: bool,
}

impl Bar {
    pub(crate) fn new(quiet: bool, message: &'static str) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(message);
        Bar {
            bar,
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl tiffin_core::hash::Progress for Bar {
    fn grow(&self, bytes: u64) {
        self.bar.inc_length(bytes);
        if self.enabled && self.bar.is_hidden() && self.bar.length().unwrap_or(0) >= SHOW_FROM {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
}

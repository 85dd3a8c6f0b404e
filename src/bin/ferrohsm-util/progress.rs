//! The progress bar of long commands: drawn on stderr when it is a terminal, nothing at all
//! in pipes and scripts.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub fn bar(len: u64, what: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_message(what);
    let style = ProgressStyle::with_template(
        "{msg} {wide_bar} {pos}/{len} [{elapsed_precise}, {eta} left]",
    )
    .expect("a valid progress template");
    bar.set_style(style);
    bar
}

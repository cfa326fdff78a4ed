//! Progress reporting: indicatif bars on a terminal, nothing otherwise.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-counting progress bar that draws only on a terminal and never when
/// `quiet` is set.
pub(crate) fn bytes_bar(total: u64, quiet: bool, verb: &str) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        // indicatif hides itself when stderr is not a terminal.
        ProgressDrawTarget::stderr_with_hz(10)
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    let template = format!(
        "{verb:>9} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} ETA {{eta}} {{msg}}"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The message beside a build's bar: items so far and the deduplication and
/// compression achieved on what the writer has stored.
pub(crate) fn build_message(count: u64, what: &str, p: hexz_format::WriteProgress) -> String {
    let compression = if p.stored_bytes == 0 {
        1.0
    } else {
        p.unique_bytes as f64 / p.stored_bytes as f64
    };
    format!(
        "{count} {what}, dedup {:.2}x, compression {compression:.2}x",
        p.dedup_ratio()
    )
}

//! `peak-rss OUT PROGRAM [ARGS…]`: run PROGRAM with ARGS (standard streams
//! inherited), write the peak resident set size of it and its descendants, in
//! KiB, to the file OUT, and exit with PROGRAM's exit code (128 + the signal
//! number when a signal ended it).
//!
//! The tests assert memory bounds with it: `getrusage(RUSAGE_CHILDREN)` of a
//! process whose only child is PROGRAM is exactly PROGRAM's peak, whatever else
//! the test process has run (a `cargo build` of the binary under test, say) —
//! deterministic, no sampling, no timing.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode};

use nix::sys::resource::{UsageWho, getrusage};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), Some(program)) = (args.next(), args.next()) else {
        eprintln!("usage: peak-rss OUT PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };
    let status = match Command::new(&program).args(args).status() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("peak-rss: cannot run {}: {e}", program.to_string_lossy());
            return ExitCode::from(127);
        }
    };
    let peak_kib = match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(usage) => usage.max_rss(),
        Err(e) => {
            eprintln!("peak-rss: getrusage: {e}");
            return ExitCode::from(125);
        }
    };
    if let Err(e) = std::fs::write(&out, format!("{peak_kib}\n")) {
        eprintln!("peak-rss: writing {}: {e}", out.to_string_lossy());
        return ExitCode::from(125);
    }
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

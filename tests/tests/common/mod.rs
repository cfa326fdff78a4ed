//! Helpers shared by the test targets that talk to the test servers
//! (`remote.rs`, `volume.rs`), by `cli.rs` and by the benchmark examples: the
//! server URLs `tests/run.sh` exports, deterministic data, S3 settings for the
//! test servers, the `hexz` binary, killing a process while it writes. Each
//! target uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// An environment variable `tests/run.sh` sets (the test servers' URLs); unset or
/// empty → `None` and a SKIPPED line, so plain `cargo test` skips server tests.
pub fn env(name: &str) -> Option<String> {
    let value = std::env::var(name).ok().filter(|v| !v.is_empty());
    if value.is_none() {
        eprintln!("SKIPPED: {name} is not set (tests/run.sh starts the test servers and sets it)");
    }
    value
}

/// Pseudo-random bytes (xorshift), so chunks do not compress away.
pub fn noise(len: usize, mut x: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// S3 settings for the moto server at `endpoint` (static test keys).
pub fn s3_options(endpoint: &str) -> hexz_opendal::S3Options {
    hexz_opendal::S3Options {
        endpoint: Some(endpoint.to_string()),
        region: Some("us-east-1".into()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        ..Default::default()
    }
}

/// Create the bucket (`PUT /bucket`), or leave it if it exists (moto answers
/// 200 then, s3s-fs 409).
pub fn create_bucket(endpoint: &str, bucket: &str) {
    // Signed with the tests' keys (curl's SigV4): moto ignores signatures, s3s-fs
    // checks them.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
        .args([
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            "testing:testing",
        ])
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        .arg(format!("{endpoint}/{bucket}"))
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout);
    assert!(
        code == "200" || code == "409",
        "cannot create bucket {bucket}: HTTP {code}"
    );
}

/// Run `cmd` to its end; it must succeed (its stderr in the failure message).
pub fn succeed(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `hexz` binary: `HEXZ_BIN`, else built (`cargo build -p hexz-cli`) next to
/// this test binary.
pub fn hexz_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("HEXZ_BIN") {
        return bin.into();
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "hexz-cli", "--bin", "hexz"])
        .status()
        .unwrap();
    assert!(status.success());
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("hexz")
}

/// Wait until `child` holds a file open in `dir` (an unnamed `O_TMPFILE` file
/// reads as `dir/#inode (deleted)`, a named one as its path), kill it
/// (SIGKILL) there and return what is left in `dir`. Fails if the child ends
/// first or never writes within two minutes.
pub fn kill_while_writing(mut child: Child, dir: &Path, what: &str) -> Vec<PathBuf> {
    let writes_in = |pid: u32| {
        let Ok(dir) = std::fs::canonicalize(dir) else {
            return false;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .any(|target| target.starts_with(&dir))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !writes_in(child.id()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{what} ended before it was seen writing"
        );
        assert!(Instant::now() < deadline, "{what} never wrote");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

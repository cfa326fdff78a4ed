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

/// A thin pair written as a hostile builder could: `dir/v1.hxz`, a plain archive
/// of one file `data.bin`, and `dir/v2.hxz`, a child holding the same file (so
/// every chunk of it is read from v1) whose location hint for v1 is `hint`,
/// whatever it says. Returns (v1, v2).
pub fn thin_pair_with_hint(dir: &Path, hint: &str) -> (PathBuf, PathBuf) {
    use hexz_format::{Archive, ArchiveWriter, EntryMeta, ParentArchive, ParentSet, WriterOptions};
    let options = || WriterOptions::new(std::sync::Arc::new(hexz_lz4::Lz4Compressor::new()));
    let data = noise(200_000, 21);
    let meta = EntryMeta {
        mode: 0o100644,
        ..EntryMeta::default()
    };
    let mut w = ArchiveWriter::new(Vec::new(), options()).unwrap();
    w.add_bytes("data.bin", &data, meta.clone()).unwrap();
    let v1 = dir.join("v1.hxz");
    std::fs::write(&v1, w.finish().unwrap().0).unwrap();
    let parent = Archive::open_path(
        &v1,
        &hexz_pipeline::Registry::default(),
        hexz_format::ReadOptions::default(),
    )
    .unwrap();
    let mut w = ArchiveWriter::new(Vec::new(), options()).unwrap();
    w.set_parents(
        ParentSet::new(vec![ParentArchive {
            archive: parent,
            hint: hint.to_string(),
        }])
        .unwrap(),
    )
    .unwrap();
    w.add_bytes("data.bin", &data, meta).unwrap();
    let v2 = dir.join("v2.hxz");
    std::fs::write(&v2, w.finish().unwrap().0).unwrap();
    (v1, v2)
}

/// A loopback HTTP server that answers every request with 404 and counts the
/// connections it accepted: a host a hint may name. The count is read after
/// the client returned; a client that sent a request waited for its answer, so
/// the count already includes it.
#[derive(Debug, Clone)]
pub struct CountingServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CountingServer {
    /// Start one (its thread lives until the test process ends).
    pub fn start() -> CountingServer {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&connections);
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        CountingServer { url, connections }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

//! Parent location hints are untrusted input (docs/SECURITY.md, "Parent hints"):
//! a FIFO cannot hang a reader, a local archive's hint sends nothing to any host,
//! a file a hint names is never echoed; `--parent` and `--allow-parent-url` let
//! the reader decide otherwise.

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;

use crate::common::{CountingServer, noise, thin_pair_with_hint};
use crate::support::{fails_with, hexz_bin, ok, run, scratch};

fn cat(v2: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["cat".as_ref(), v2.as_os_str(), "data.bin".as_ref()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    run(args)
}

#[test]
fn a_parent_replaced_by_a_fifo_is_refused_without_blocking() {
    let dir = scratch();
    let (v1, v2) = thin_pair_with_hint(dir.path(), "v1.hxz");
    ok(&cat(&v2, &[]));
    fs::remove_file(&v1).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&v1)
        .status()
        .unwrap();
    assert!(made.success());
    let mut child = std::process::Command::new(hexz_bin())
        .args(["cat".as_ref(), v2.as_os_str(), "data.bin".as_ref()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Should the reader block in open() waiting for a writer (as it did), a
    // writer appears as soon as it waits, which releases it: the test then fails
    // on the assertions below instead of hanging. Not timing-based: the loop
    // ends when the reader exits or once it was seen waiting.
    let mut writer = None;
    while writer.is_none() && child.try_wait().unwrap().is_none() {
        writer = fs::OpenOptions::new()
            .write(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&v1)
            .ok();
        std::thread::yield_now();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        writer.is_none(),
        "hexz opened the FIFO and waited for a writer"
    );
    let err = fails_with(&out, 4);
    assert!(err.contains("FIFO"), "{err}");
}

#[test]
fn a_local_archive_naming_an_http_host_sends_it_nothing() {
    let server = CountingServer::start();
    let dir = scratch();
    let hint = format!("{}/v1.hxz", server.url);
    let (v1, v2) = thin_pair_with_hint(dir.path(), &hint);
    for verb in [
        vec!["cat".as_ref(), v2.as_os_str(), "data.bin".as_ref()],
        vec![
            "extract".as_ref(),
            v2.as_os_str(),
            dir.path().join("x").as_os_str(),
            "-q".as_ref(),
        ],
        vec!["verify".as_ref(), v2.as_os_str(), "--deep".as_ref()],
        vec![
            "squash".as_ref(),
            v2.as_os_str(),
            dir.path().join("s.hxz").as_os_str(),
        ],
    ] {
        let err = fails_with(&run(&verb), 4);
        for needle in [
            hint.as_str(),
            "a URL named by a local archive",
            "--parent",
            "--allow-parent-url",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
    let log = run(["log".as_ref(), v2.as_os_str(), "--json".as_ref()]);
    ok(&log);
    let log: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    assert_eq!(log["chain"][1]["status"], "refused");
    assert_eq!(server.connections(), 0, "a request reached the hinted host");

    // Allowed: the request is sent (the server answers 404: not found, exit 4).
    let prefix = format!("{}/", server.url);
    let err = fails_with(&cat(&v2, &["--allow-parent-url", &prefix]), 4);
    assert!(err.contains("not available"), "{err}");
    assert!(server.connections() >= 1);
    // Named: the parent is read from where the reader says, the hint ignored.
    let before = server.connections();
    let out = cat(&v2, &["--parent", v1.to_str().unwrap()]);
    ok(&out);
    assert_eq!(out.stdout, noise(200_000, 21));
    assert_eq!(server.connections(), before);
    // A named archive that is not one of the parents does not help.
    let other = dir.path().join("other");
    fs::create_dir_all(&other).unwrap();
    let (_, unrelated) = thin_pair_with_hint(&other, "v1.hxz");
    fails_with(&cat(&v2, &["--parent", unrelated.to_str().unwrap()]), 4);
}

#[test]
fn a_file_a_hint_names_is_not_echoed() {
    let dir = scratch();
    let (v1, v2) = thin_pair_with_hint(dir.path(), "v1.hxz");
    let secret = b"SECRET-token-0123456789 do not print me\n".repeat(3);
    fs::write(&v1, &secret).unwrap();
    let err = fails_with(&cat(&v2, &[]), 4);
    assert!(err.contains("not a hexz archive"), "{err}");
    assert!(!err.contains("SECRET"), "{err}");
    for window in secret.windows(4) {
        let hex = format!("{window:02x?}");
        let inner = &hex[1..hex.len() - 1];
        assert!(!err.contains(inner), "bytes {inner} of the file in: {err}");
    }
}

#[test]
fn local_chains_in_other_folders_still_resolve() {
    // Hints with `..` and absolute paths: a local archive's hints reach local
    // files anywhere (only regular files, never echoed).
    let dir = scratch();
    let deep = dir.path().join("a/b");
    fs::create_dir_all(&deep).unwrap();
    let (v1, _) = thin_pair_with_hint(dir.path(), "v1.hxz");
    let up = Path::new("../../v1.hxz");
    for hint in [up.to_str().unwrap(), v1.to_str().unwrap()] {
        let (moved, v2) = thin_pair_with_hint(&deep, hint);
        fs::remove_file(moved).unwrap();
        let out = cat(&v2, &[]);
        ok(&out);
        assert_eq!(out.stdout, noise(200_000, 21));
    }
}

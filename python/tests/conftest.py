"""Shared fixtures: small archives built through the public API, and the S3 test server."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

import hexz

N_SAMPLES = 101  # odd on purpose: uneven splits across ranks and workers


def sample_bytes(i: int) -> bytes:
    """Sample i's content: names itself, then a length that varies."""
    head = f"sample-{i:05d};".encode()
    return head + bytes((i * 31 + j) % 251 for j in range(200 + (i * 97) % 3000))


@pytest.fixture(scope="session")
def samples_archive(tmp_path_factory) -> str:
    """N_SAMPLES records with a `label` column, plus a directory entry."""
    path = str(tmp_path_factory.mktemp("samples") / "samples.hxz")
    with hexz.Writer(path, compression="lz4", chunk_min=256, chunk_avg=1024, chunk_max=4096) as w:
        for i in range(N_SAMPLES):
            w.add_bytes(f"train/{i:05d}.bin", sample_bytes(i), label=i % 10)
    return path


@pytest.fixture
def tree(tmp_path):
    """A small directory tree on disk."""
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\n" * 100)
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)) * 64)
    (root / "sub" / "c.txt").write_bytes(b"gamma")
    return root


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    endpoint = os.environ.get("HEXZ_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.skip("HEXZ_TEST_S3_ENDPOINT is not set (tests/run.sh starts the S3 servers and sets it)")
    return endpoint


def _s3_put(url: str, data_file: str | None = None) -> None:
    """A PUT signed with the test keys (curl's SigV4): moto ignores signatures,
    s3s-fs checks them. An existing bucket is fine (moto: 200, s3s-fs: 409)."""
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
            "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "testing:testing",
            "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    if data_file is not None:
        args += ["-H", "Content-Type: application/octet-stream", "--data-binary", f"@{data_file}"]
    code = subprocess.run(args + [url], capture_output=True, text=True, timeout=120).stdout
    ok = ("200", "409") if data_file is None else ("200",)
    assert code in ok, f"PUT {url}: HTTP {code}"


def s3_bucket(endpoint: str) -> str:
    """Create a fresh bucket on the S3 test server; returns its name."""
    bucket = "hexz-py-" + uuid.uuid4().hex[:12]
    _s3_put(f"{endpoint}/{bucket}")
    return bucket


def s3_upload(endpoint: str, local_path: str) -> str:
    """Create a fresh bucket on the S3 test server and upload the file; returns its s3:// URL."""
    bucket = s3_bucket(endpoint)
    _s3_put(f"{endpoint}/{bucket}/data/archive.hxz", local_path)
    return f"s3://{bucket}/data/archive.hxz"


S3_KEYS = {"s3_region": "us-east-1", "s3_access_key_id": "testing", "s3_secret_access_key": "testing"}


class CountingProxy:
    """An HTTP proxy in front of the S3 server that counts the ranged GETs of
    one object path (what a loader's fetch pattern costs at the server)."""

    def __init__(self, upstream: str):
        import http.client
        import http.server
        import threading
        import urllib.parse

        up = urllib.parse.urlparse(upstream)
        self.gets: list = []
        self.heads = 0
        self.path_part = None
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "GET" and proxy.path_part and proxy.path_part in self.path:
                    proxy.gets.append(self.headers.get("Range"))
                if self.command == "HEAD" and proxy.path_part and proxy.path_part in self.path:
                    proxy.heads += 1
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
                # The Host header is kept: the client signed it (SigV4).
                headers = dict(self.headers.items())
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                head = self.command == "HEAD"
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection") and (head or k.lower() != "content-length"):
                        self.send_header(k, v)
                if not head:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def counting_s3(s3_endpoint):
    proxy = CountingProxy(s3_endpoint)
    yield proxy
    proxy.close()

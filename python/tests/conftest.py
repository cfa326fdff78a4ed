"""Shared fixtures: small archives built through the public API, and the S3 test server."""

from __future__ import annotations

import os
import urllib.request
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
        pytest.skip("HEXZ_TEST_S3_ENDPOINT is not set (tests/run.sh starts moto and sets it)")
    return endpoint


def s3_bucket(endpoint: str) -> str:
    """Create a fresh bucket on the moto server; returns its name."""
    bucket = "hexz-py-" + uuid.uuid4().hex[:12]
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", data=b"", method="PUT"), timeout=30).read()
    return bucket


def s3_upload(endpoint: str, local_path: str) -> str:
    """Create a fresh bucket on the moto server and upload the file; returns s3:// URL.
    moto does not check signatures, so PUTs with a dummy SigV4 header do."""
    bucket = s3_bucket(endpoint)
    with open(local_path, "rb") as f:
        data = f.read()
    headers = {
        "Content-Type": "application/octet-stream",
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=00",
    }
    req = urllib.request.Request(f"{endpoint}/{bucket}/data/archive.hxz", data=data, method="PUT", headers=headers)
    urllib.request.urlopen(req, timeout=60).read()
    return f"s3://{bucket}/data/archive.hxz"


S3_KEYS = {"s3_region": "us-east-1", "s3_access_key_id": "test", "s3_secret_access_key": "test"}


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
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = up.netloc
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

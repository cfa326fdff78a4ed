"""hexz.Volume from Python: the workload of tests/examples/volume_bench.rs (BENCHMARKS
section 9) through the Python binding, against a plain local file written the same way
(os.pwrite + os.fsync) in the same run; with --rust-table, also against the Rust
`Volume` figures of the same run (the binding's overhead).

Sequential = VOLUME_MIB MiB of incompressible bytes in 1 MiB ``write_at`` calls, then
``flush``; random = RANDOM_WRITES ``write_at`` of 4 KiB at random 4 KiB-aligned offsets
(the Rust bench's offsets), then ``flush``. Run by bench/python/volume.sh.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import urllib.request
import uuid

import hexz


def offsets(count: int, size: int):
    """The Rust bench's offsets (same LCG)."""
    x = 0x9E3779B97F4A7C15
    out = []
    for _ in range(count):
        x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        out.append(((x >> 16) % (size // 4096)) * 4096)
    return out


def run_file(path, data, small, offs):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        t = time.perf_counter()
        for i in range(0, len(data), 1 << 20):
            os.pwrite(fd, data[i : i + (1 << 20)], i)
        seq_write = time.perf_counter() - t
        t = time.perf_counter()
        os.fsync(fd)
        seq_flush = time.perf_counter() - t
        t = time.perf_counter()
        for o in offs:
            os.pwrite(fd, small, o)
        rand_write = time.perf_counter() - t
        t = time.perf_counter()
        os.fsync(fd)
        rand_flush = time.perf_counter() - t
    finally:
        os.close(fd)
    return seq_write, seq_flush, rand_write, rand_flush


def run_volume(url, data, small, offs, storage):
    size = len(data)
    view = memoryview(data)
    v = hexz.Volume.create(url, size, dirty_limit=size + (1 << 20), **storage)
    t = time.perf_counter()
    for i in range(0, size, 1 << 20):
        v.write_at(i, view[i : i + (1 << 20)])
    seq_write = time.perf_counter() - t
    t = time.perf_counter()
    v.flush()
    seq_flush = time.perf_counter() - t
    t = time.perf_counter()
    for o in offs:
        v.write_at(o, small)
    rand_write = time.perf_counter() - t
    t = time.perf_counter()
    v.flush()
    rand_flush = time.perf_counter() - t
    v.close()
    # Check: the content is what was written.
    expect = bytearray(data)
    for o in offs:
        expect[o : o + 4096] = small
    with hexz.Volume(url, **storage) as again:
        assert again.read_at(0, size) == expect, url
    return seq_write, seq_flush, rand_write, rand_flush


def rust_rows(path):
    """{name: (seq MiB/s, random writes/s)} from the Rust bench's table."""
    rows = {}
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].startswith("volume,"):
            rows[cells[0]] = (float(cells[1]), float(cells[4]))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--s3-endpoint", default=os.environ.get("HEXZ_TEST_S3_ENDPOINT"))
    p.add_argument("--rust-table", help="output of the Rust volume_bench of the same run")
    args = p.parse_args()
    mib = int(os.environ.get("VOLUME_MIB", "64"))
    randoms = int(os.environ.get("RANDOM_WRITES", "2000"))
    size = mib << 20
    data = os.urandom(size)
    small = os.urandom(4096)
    offs = offsets(randoms, size)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        rows.append(("local file (os.pwrite + os.fsync)", run_file(os.path.join(d, "plain.img"), data, small, offs)))
        rows.append(("volume, local folder", run_volume(os.path.join(d, "vol"), data, small, offs, {})))
        if args.s3_endpoint:
            bucket = "hexz-py-volume-bench-" + uuid.uuid4().hex[:8]
            req = urllib.request.Request(f"{args.s3_endpoint}/{bucket}", data=b"", method="PUT")
            urllib.request.urlopen(req, timeout=30).read()
            storage = dict(
                s3_endpoint=args.s3_endpoint,
                s3_region="us-east-1",
                s3_access_key_id="testing",
                s3_secret_access_key="testing",
            )
            rows.append(("volume, S3 (moto)", run_volume(f"s3://{bucket}/v", data, small, offs, storage)))
    rust = rust_rows(args.rust_table) if args.rust_table else {}
    print(
        f"hexz.Volume from Python: volume {mib} MiB; sequential = {mib} MiB in 1 MiB writes then flush; "
        f"random = {randoms} x 4 KiB writes then flush\n"
    )
    header = "| target | seq MiB/s (incl. flush) | vs baseline | seq flush | random writes/s (incl. flush) | vs baseline | random flush |"
    sep = "|---|---|---|---|---|---|---|"
    if rust:
        header += " seq vs Rust | random vs Rust |"
        sep += "---|---|"
    print(header)
    print(sep)
    base_seq = size / (1 << 20) / (rows[0][1][0] + rows[0][1][1])
    base_rand = randoms / (rows[0][1][2] + rows[0][1][3])
    for name, (sw, sf, rw, rf) in rows:
        seq = size / (1 << 20) / (sw + sf)
        rnd = randoms / (rw + rf)
        line = (
            f"| {name} | {seq:.1f} | {seq / base_seq:.3f}x | {sf * 1000:.0f} ms | {rnd:.0f} | "
            f"{rnd / base_rand:.3f}x | {rf * 1000:.0f} ms |"
        )
        if rust:
            r = rust.get(name)
            line += f" {seq / r[0]:.3f}x | {rnd / r[1]:.3f}x |" if r else " – | – |"
        print(line)


if __name__ == "__main__":
    main()

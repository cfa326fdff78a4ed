"""PyTorch DataLoader throughput over a real image dataset: hexz vs MosaicML Streaming
vs WebDataset, from local disk and from loopback S3 servers, in one run.

usage: python bench/python/dataloader.py IMAGE_DIR [NAME=S3_ENDPOINT ...] [--workers 2] [--batch 64]
                                        [--epochs 2] [--s3-log NAME=MOTO_LOG]

Each ``NAME=S3_ENDPOINT`` (a bare endpoint is named ``s3``) is an S3 server to read
from, after local disk (``bench/python/run.sh`` gives moto and s3s-fs). Every server
is first probed for what a request costs it: a 4 KiB ranged GET from the 65 MB hexz
object and from a 64 KiB object (median of 15) — moto reads the whole object for
every ranged GET, so there a request costs what the object weighs, not what it
carries.

Every system gets the same files (every *.png under IMAGE_DIR, sorted), stored without
recompression (PNGs do not compress), the same DataLoader (num_workers, batch_size,
collate to a list of raw bytes — no image decoding, so the figure is the data path
alone) and a shuffled epoch. Reported per system and location: time to first sample
(DataLoader iterator created → first batch in hand, a cold start: fresh dataset object,
fresh worker processes, empty local cache for remote data) and samples/s over the
whole epoch (including that start). Every epoch is checked to deliver each sample
exactly once (hexz, Streaming) or all samples (WebDataset, whose shuffle is a buffer).
With ``--s3-log NAME=PATH`` (that server's request log, as moto writes it) the
requests each system sent for its objects are counted: while its dataset object is built (before
the clock starts) and per epoch (timed).
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import boto3
import torch
import webdataset as wds
from streaming import MDSWriter, StreamingDataset

import hexz
import hexz.torch as htorch

KEYS = {"s3_region": "us-east-1", "s3_access_key_id": "test", "s3_secret_access_key": "test"}


def keep_list(batch):
    return batch


def files_of(root):
    paths = sorted(glob.glob(os.path.join(root, "**", "*.png"), recursive=True))
    return [(os.path.relpath(p, root), open(p, "rb").read()) for p in paths]


def build_all(files, work):
    out = {}
    t = time.perf_counter()
    arch = os.path.join(work, "images.hxz")
    with hexz.Writer(arch, compression="none") as w:
        for name, data in files:
            w.add_bytes(name, data)
    out["hexz"] = (arch, time.perf_counter() - t)
    t = time.perf_counter()
    mds = os.path.join(work, "mds")
    with MDSWriter(out=mds, columns={"name": "str", "data": "bytes"}, compression=None, size_limit="64mb") as w:
        for name, data in files:
            w.write({"name": name, "data": data})
    out["mds"] = (mds, time.perf_counter() - t)
    t = time.perf_counter()
    wdir = os.path.join(work, "wds")
    os.makedirs(wdir)
    with wds.ShardWriter(os.path.join(wdir, "shard-%06d.tar"), maxsize=64 << 20, verbose=0) as sink:
        for i, (name, data) in enumerate(files):
            sink.write({"__key__": f"{i:07d}", "png": data, "txt": name})
    out["wds"] = (wdir, time.perf_counter() - t)
    return out


def s3_client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def upload(endpoint, bucket, built):
    s3 = s3_client(endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(built["hexz"][0], bucket, "hexz/images.hxz")
    for kind in ("mds", "wds"):
        root = built[kind][0]
        for p in sorted(glob.glob(os.path.join(root, "*"))):
            s3.upload_file(p, bucket, f"{kind}/{os.path.basename(p)}")


def request_cost(endpoint, bucket):
    """Median time of a 4 KiB ranged GET from the hexz object (65 MB) and from a
    64 KiB object on this server, through one client (keep-alive)."""
    s3 = s3_client(endpoint)
    s3.put_object(Bucket=bucket, Key="probe/small", Body=os.urandom(64 << 10))
    out = []
    for key in ("hexz/images.hxz", "probe/small"):
        times = []
        for _ in range(15):
            t = time.perf_counter()
            body = s3.get_object(Bucket=bucket, Key=key, Range="bytes=4096-8191")["Body"].read()
            times.append(time.perf_counter() - t)
            assert len(body) == 4096
        out.append(sorted(times)[len(times) // 2])
    return out


def name_of(sample):
    if isinstance(sample, dict):
        return sample["name"]
    name = sample[0]
    return name.decode() if isinstance(name, bytes) else name


class RequestLog:
    """Requests for one system's S3 objects in moto's log (werkzeug's access lines,
    ``"GET /bucket/key HTTP/1.1" 206``), counted from where the last count stopped."""

    def __init__(self, path):
        self.path = path
        self.pos = os.path.getsize(path) if path else 0

    def take(self, prefix):
        if not self.path:
            return None
        time.sleep(0.2)  # the server writes its line after the response
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            text = f.read().decode(errors="replace")
            self.pos = f.tell()
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # werkzeug colours its lines
        return sum(1 for line in text.splitlines() for m in ("GET", "HEAD") if f'"{m} /{prefix}' in line)


def run_epoch(make_loader, expect, exact, log=None, prefix=None):
    t_setup = time.perf_counter()
    loader = make_loader()
    t_setup = time.perf_counter() - t_setup
    setup = log.take(prefix) if log else None
    t0 = time.perf_counter()
    it = iter(loader)
    first = next(it)
    t_first = time.perf_counter() - t0
    seen = [name_of(x) for x in first]
    for batch in it:
        seen.extend(name_of(x) for x in batch)
    total = time.perf_counter() - t0
    epoch = log.take(prefix) if log else None
    names = sorted(seen)
    if exact:
        assert names == expect, "every sample exactly once"
    else:
        assert len(names) == len(expect) and set(names) == set(expect)
    return t_setup, t_first, len(seen) / total, setup, epoch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("images")
    ap.add_argument("s3", nargs="*", help="NAME=ENDPOINT of an S3 server to read from (a bare endpoint: s3)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--shuffle-block", type=int, default=1024,
                    help="hexz: shuffle runs of this many neighbouring samples (1: the whole epoch)")
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--s3-log", action="append", default=[],
                    help="NAME=PATH: that server's request log (moto's): count each system's requests")
    a = ap.parse_args()
    servers = [tuple(x.split("=", 1)) if "=" in x else ("s3", x) for x in a.s3]
    logs = dict(x.split("=", 1) if "=" in x else ("s3", x) for x in a.s3_log)

    files = files_of(a.images)
    expect = sorted(n for n, _ in files)
    nbytes = sum(len(d) for _, d in files)
    print(f"dataset: {len(files)} files, {nbytes} bytes, from {a.images}", flush=True)
    work = tempfile.mkdtemp(prefix="hexz-dl-bench-")
    built = build_all(files, work)
    for k, (_, s) in built.items():
        print(f"write {k}: {s:.2f} s", flush=True)
    bucket = "bench-" + uuid.uuid4().hex[:8]
    costs = {}
    for server, endpoint in servers:
        upload(endpoint, bucket, built)
        costs[server] = request_cost(endpoint, bucket)
        print(f"{server} ({endpoint}): a 4 KiB GET takes {costs[server][0] * 1e3:.1f} ms from the "
              f"{os.path.getsize(built['hexz'][0]) >> 20} MiB hexz object, {costs[server][1] * 1e3:.1f} ms "
              "from a 64 KiB object", flush=True)
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")

    W, B = a.workers, a.batch
    dl = lambda ds, **kw: torch.utils.data.DataLoader(ds, batch_size=B, num_workers=W, collate_fn=keep_list, **kw)
    nshards = len(glob.glob(os.path.join(built["wds"][0], "*.tar")))

    def hexz_loader(url, epoch, **opts):
        def make():
            ds = htorch.IterableDataset(url, seed=0, batch_size=B, with_names=True,
                                        shuffle_block=a.shuffle_block, **opts)
            ds.set_epoch(epoch)
            return dl(ds)
        return make

    def mds_loader(local, remote, epoch, endpoint=None):
        def make():
            if endpoint:
                os.environ["S3_ENDPOINT_URL"] = endpoint  # read by Streaming's workers
            cache = tempfile.mkdtemp(prefix="mds-cache-") if remote else local
            ds = StreamingDataset(local=cache, remote=remote, shuffle=True, shuffle_seed=epoch, batch_size=B)
            return dl(ds)
        return make

    def wds_loader(urls, epoch):
        def make():
            ds = wds.WebDataset(urls, shardshuffle=100, seed=epoch, nodesplitter=None,
                                workersplitter=wds.split_by_worker, empty_check=False)
            return dl(ds.shuffle(1000).to_tuple("txt", "png"))
        return make

    local_shards = os.path.join(built["wds"][0], f"shard-{{000000..{nshards - 1:06d}}}.tar")
    systems = [
        ("hexz", "local", lambda e: hexz_loader(built["hexz"][0], e), True),
        ("streaming (MDS)", "local", lambda e: mds_loader(built["mds"][0], None, e), True),
        ("webdataset", "local", lambda e: wds_loader(local_shards, e), False),
    ]
    for server, endpoint in servers:
        # WebDataset reads S3 through curl: presigned URLs, valid on any S3 server
        # (moto ignores signatures, s3s-fs checks them).
        s3 = s3_client(endpoint)
        curl = [f"pipe:curl -s -f '{s3.generate_presigned_url('get_object', Params={'Bucket': bucket, 'Key': f'wds/shard-{i:06d}.tar'}, ExpiresIn=86400)}'"
                for i in range(nshards)]
        systems += [
            ("hexz", server, lambda e, ep=endpoint: hexz_loader(f"s3://{bucket}/hexz/images.hxz", e, s3_endpoint=ep, **KEYS), True),
            ("streaming (MDS)", server, lambda e, ep=endpoint: mds_loader(None, f"s3://{bucket}/mds", e, ep), True),
            ("webdataset", server, lambda e, c=curl: wds_loader(c, e), False),
        ]
    prefixes = {"hexz": f"{bucket}/hexz/", "streaming (MDS)": f"{bucket}/mds/", "webdataset": f"{bucket}/wds/"}
    request_logs = {server: RequestLog(logs.get(server)) for server, _ in servers}
    results = []
    for name, where, make, exact in systems:
        builds, firsts, rates, setups, epochs = [], [], [], [], []
        log = request_logs.get(where)
        counted = log is not None and log.path
        for epoch in range(a.epochs):
            t_build, t_first, rate, setup, reqs = run_epoch(make(epoch), expect, exact, log if counted else None,
                                                            prefixes[name])
            builds.append(t_build)
            firsts.append(t_first)
            rates.append(rate)
            setups.append(setup)
            epochs.append(reqs)
        r = {"system": name, "where": where, "build_s": min(builds), "first_s": min(firsts), "samples_per_s": max(rates),
             "setup_requests": setups, "epoch_requests": epochs}
        results.append(r)
        reqs = f"   requests: {setups} building, {epochs} per epoch" if counted else ""
        print(f"{name:16s} {where:7s}  dataset built in {r['build_s']:.3f} s, first sample {r['first_s']:.3f} s   "
              f"{r['samples_per_s']:9.0f} samples/s{reqs}",
              flush=True)

    print("\n| system | where | dataset built (s) | time to first sample (s) | samples/s | hexz speed-up "
          "| S3 requests: building + per epoch |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        base = next(x for x in results if x["system"] == "hexz" and x["where"] == r["where"])
        counted = r["where"] in request_logs and request_logs[r["where"]].path
        reqs = f"{max(r['setup_requests'])} + {max(r['epoch_requests'])}" if counted else "–"
        print(f"| {r['system']} | {r['where']} | {r['build_s']:.3f} | {r['first_s']:.3f} | {r['samples_per_s']:.0f} | "
              f"{base['samples_per_s'] / r['samples_per_s']:.2f}× rate, {r['first_s'] / base['first_s']:.2f}× first | {reqs} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"files": len(files), "bytes": nbytes, "workers": W, "batch": B, "results": results,
                       "request_cost_s": costs}, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

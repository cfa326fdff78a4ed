#!/usr/bin/env python3
"""Regenerate the small record files of recipes/records/data/ (deterministic).

JSONL and CSV need nothing but Python; Parquet and Arrow need pyarrow
(`pip install pyarrow`). The files are committed: run this only to change them.
"""
import base64
import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent / "data"
CLASSES = ["cat", "dog", "bird", "fish"]


def image(rng: random.Random, label: int) -> bytes:
    """A tiny 8x8 greyscale PGM whose pattern depends on the label."""
    pixels = bytes((x * (label + 1) * 16 + y * 8 + rng.randrange(8)) % 256
                   for y in range(8) for x in range(8))
    return b"P5\n8 8\n255\n" + pixels


def rows():
    rng = random.Random(42)
    for i in range(48):
        label = rng.randrange(len(CLASSES))
        yield {
            "id": f"img-{i:03d}",
            "image": image(rng, label),
            "label": label,
            "class": CLASSES[label],
            "score": round(rng.random(), 4) if i % 5 else None,
            "split": "test" if i % 8 == 0 else "train",
            "verified": i % 3 == 0,
        }


def main():
    HERE.mkdir(exist_ok=True)
    data = list(rows())
    # JSONL: image as base64; `score` null in some records; `extra` only in some.
    with open(HERE / "images.jsonl", "w") as f:
        for r in data:
            obj = dict(r, image=base64.b64encode(r["image"]).decode())
            if r["label"] == 2:
                obj["meta"] = {"source": "field", "tags": ["a", "b"]}  # nested: not a column
            f.write(json.dumps(obj, separators=(",", ":")) + "\n")
    # CSV: short texts stored as UTF-8 (encoding: utf8).
    rng = random.Random(7)
    words = "the quick brown fox jumps over a lazy dog while birds sing".split()
    with open(HERE / "reviews.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review_id", "text", "stars", "helpful", "lang"])
        for i in range(40):
            text = " ".join(rng.choice(words) for _ in range(rng.randrange(4, 12)))
            if i % 9 == 0:
                text += ', "quoted", with commas'
            stars = rng.randrange(1, 6)
            helpful = "" if i % 7 == 0 else f"{rng.random():.3f}"
            w.writerow([f"r{i:04d}", text, stars, helpful, "en" if i % 4 else "fr"])
    try:
        import pyarrow as pa
        import pyarrow.feather as feather
        import pyarrow.parquet as pq
    except ImportError:
        print("pyarrow missing: Parquet and Arrow files not regenerated")
        return
    table = pa.table({
        "id": pa.array([r["id"] for r in data], pa.string()),
        "image": pa.array([r["image"] for r in data], pa.binary()),
        "label": pa.array([r["label"] for r in data], pa.int32()),
        "class": pa.array([r["class"] for r in data], pa.string()).dictionary_encode(),
        "score": pa.array([r["score"] for r in data], pa.float32()),
        "split": pa.array([r["split"] for r in data], pa.string()),
        "verified": pa.array([r["verified"] for r in data], pa.bool_()),
        "taken": pa.array([1_700_000_000_000 + i for i in range(len(data))], pa.timestamp("ms")),
    })
    pq.write_table(table, HERE / "images.parquet", compression="snappy", row_group_size=20)
    feather.write_feather(table, HERE / "images.arrow", compression="uncompressed")


if __name__ == "__main__":
    main()

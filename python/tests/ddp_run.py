"""Two-process torch.distributed (gloo) run for test_torch.py.

usage: ddp_run.py ARCHIVE OUT.json [WORLD]

Each rank streams two epochs of hexz.torch.IterableDataset through a DataLoader
with 2 workers (rank and world size come from torch.distributed), then the ranks
exchange what they saw with all_gather_object; rank 0 writes
{epoch: [[names of rank 0 in order], [names of rank 1 in order], ...]}.
"""

import json
import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import hexz.torch as htorch


def keep_list(batch):
    return batch


def run(rank: int, world: int, archive: str, out: str, init_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    ds = htorch.IterableDataset(archive, seed=1234, batch_size=4, with_names=True)
    seen = {}
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=4, num_workers=2, collate_fn=keep_list, multiprocessing_context="fork"
        )
        names = [name for batch in loader for name, _ in batch]
        assert len(names) == len(ds), (len(names), len(ds))
        gathered = [None] * world
        dist.all_gather_object(gathered, names)
        seen[epoch] = gathered
    dist.barrier()
    if rank == 0:
        with open(out, "w") as f:
            json.dump(seen, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    archive, out = sys.argv[1], sys.argv[2]
    world = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    init_file = os.path.join(tempfile.mkdtemp(), "init")
    mp.spawn(run, args=(world, archive, out, init_file), nprocs=world, join=True)

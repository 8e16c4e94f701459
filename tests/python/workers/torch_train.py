"""torch_train.py ROOT OUT --steps S [--save-at K] [--resume]: a small plain torch.nn model
trained with its parameters and AdamW state row-sharded (Shard(0), FSDP/ZeRO-3 style) across
the ranks of this job, the sharding done by hand with mpi4py collectives:

    all-gather each parameter's rows -> forward/backward on this rank's slice of the global
    batch -> reduce-scatter the gradients -> AdamW on the local rows (torch.optim.AdamW)

The loss is normalised by the global batch, so it does not depend on the world size.
--save-at K checkpoints through ckpt.Manager after step K (local rows of every parameter
and AdamW moment, the step as attributes) and dumps the full parameters to OUT.full.npz;
--resume loads the latest checkpoint at this job's world size, checks the loaded rows
against OUT-of-the-save's npz bit-exactly, and goes on. Rank 0 writes the losses to OUT."""
import argparse
import json

import numpy as np
import torch
from mpi4py import MPI

import ckpt
from common import comm, fail, rank, world

torch.set_num_threads(1)
p = argparse.ArgumentParser()
p.add_argument("root")
p.add_argument("out")
p.add_argument("--steps", type=int, required=True)
p.add_argument("--save-at", type=int, default=0)
p.add_argument("--resume", action="store_true")
p.add_argument("--saved-full", default="")
args = p.parse_args()

BATCH = 24
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 13), torch.nn.Tanh(), torch.nn.Linear(13, 3))
gen = torch.Generator().manual_seed(1)
X = torch.randn(BATCH, 8, generator=gen)
Y = torch.randn(BATCH, 3, generator=gen)
params = dict(model.named_parameters())
shapes = {n: tuple(t.shape) for n, t in params.items()}


def counts(shape):
    row = int(np.prod(shape[1:], dtype=np.int64))
    return [ckpt.local_shape(shape, r, world)[0] * row for r in range(world)]


def rows_of(full, shape):
    off, ext = ckpt.shard_box(shape, 0, rank, world)
    return full[off[0]:off[0] + ext[0]]


# this rank's rows: of the initial model, or zeros to be filled by the checkpoint
if args.resume:
    local = ckpt.alloc_shards(shapes, torch.float32, rank, world)
else:
    local = {n: rows_of(t.detach(), shapes[n]).clone() for n, t in params.items()}
opt = torch.optim.AdamW(list(local.values()), lr=1e-2, weight_decay=0.01)
mgr = ckpt.Manager(args.root, comm, keep_last=2)
start = 0
if args.resume:
    latest = mgr.latest()
    if latest is None:
        fail("no checkpoint to resume from")
    start, path = latest
    m = ckpt.alloc_shards(shapes, torch.float32, rank, world)
    v = ckpt.alloc_shards(shapes, torch.float32, rank, world)
    want = {**ckpt.shard_state_dict(local, shapes, rank, world, prefix="model/"),
            **ckpt.shard_state_dict(m, shapes, rank, world, prefix="optim/exp_avg/"),
            **ckpt.shard_state_dict(v, shapes, rank, world, prefix="optim/exp_avg_sq/")}
    got = ckpt.load(path, want, comm)
    if got["model/0.weight"] is not local["0.weight"] or got.attrs["step"] != start:
        fail(f"load did not fill the tensors in place or lost the step: {got.attrs}")
    for n, p_ in zip(shapes, opt.param_groups[0]["params"]):
        opt.state[p_] = {"step": torch.tensor(float(got.attrs["optim/step"])),
                         "exp_avg": m[n], "exp_avg_sq": v[n]}
    saved = np.load(args.saved_full)
    for n in shapes:
        for prefix, mine in (("model/", local[n]), ("optim/exp_avg/", m[n]), ("optim/exp_avg_sq/", v[n])):
            if rows_of(saved[prefix + n], shapes[n]).tobytes() != mine.numpy().tobytes():
                fail(f"{prefix}{n}: loaded rows differ from the saved ones")


def gather(t, shape):
    full = torch.empty(shape)
    c = counts(shape)
    comm.Allgatherv([t.numpy(), MPI.FLOAT], [full.numpy(), c, np.cumsum([0] + c[:-1]).tolist(), MPI.FLOAT])
    return full


off, ext = ckpt.shard_box((BATCH, 8), 0, rank, world)
x, y = X[off[0]:off[0] + ext[0]], Y[off[0]:off[0] + ext[0]]
losses = {}
for step in range(start + 1, args.steps + 1):
    with torch.no_grad():
        for n, prm in params.items():
            prm.copy_(gather(local[n], shapes[n]))
    model.zero_grad()
    loss = ((model(x) - y) ** 2).sum() / (BATCH * 3)
    loss.backward()
    for n, prm in params.items():
        g = torch.empty_like(local[n])
        comm.Reduce_scatter([prm.grad.numpy(), MPI.FLOAT], [g.numpy(), MPI.FLOAT], counts(shapes[n]), op=MPI.SUM)
        local[n].grad = g
    losses[step] = comm.allreduce(float(loss.item()), op=MPI.SUM)
    opt.step()
    if step == args.save_at:
        st = opt.state
        sd = {**ckpt.shard_state_dict(local, shapes, rank, world, prefix="model/"),
              **ckpt.shard_state_dict({n: st[local[n]]["exp_avg"] for n in shapes}, shapes, rank, world,
                                      prefix="optim/exp_avg/"),
              **ckpt.shard_state_dict({n: st[local[n]]["exp_avg_sq"] for n in shapes}, shapes, rank, world,
                                      prefix="optim/exp_avg_sq/")}
        mgr.save(step, sd, attrs={"step": step, "optim/step": int(st[local["0.weight"]]["step"].item()),
                                  "lr": 1e-2}, fsync=False)
        full = {}
        for n in shapes:
            full["model/" + n] = gather(local[n], shapes[n]).numpy()
            full["optim/exp_avg/" + n] = gather(st[local[n]]["exp_avg"], shapes[n]).numpy()
            full["optim/exp_avg_sq/" + n] = gather(st[local[n]]["exp_avg_sq"], shapes[n]).numpy()
        if rank == 0:
            np.savez(args.out + ".full.npz", **full)
        break
mgr.close()
if rank == 0:
    with open(args.out, "w") as f:
        json.dump({"world": world, "losses": losses}, f)

#!/usr/bin/python3
"""Trains the table splitter (model.TableSplit: a vision tower of its own and a split-and-merge
head, table_split.py) on the table shards of make_data.py. Resumable, like train.py.

    tools/train/train_table.py --data DATA --run RUN --init DATA/run7/last.pt [--hours 1] [--steps 3000]

--init: a DocVLM checkpoint (RUN/last.pt) or export (model.safetensors) whose vision tower starts
the splitter's (its row embeddings must cover a table's height: a run that trained the table task),
or a TableSplit checkpoint; the head starts at zero. bfloat16 work copy, float32 master weights,
quantisation-aware (int8, as the C++ int8 path) from the first step. Every --eval-every steps the
grid is read back (table_split.read_grid) from validation tables and compared with the truth:
shape (rows and columns) and structure (every cell's span), filled and empty cells alike.
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import table_split as T  # noqa: E402
from model import Config, QLinear, TableSplit, VisionTower  # noqa: E402
import common as C  # noqa: E402
from train import Bf16Work, TableShards, anchors_valid, lr_at, make_batch, run_log, save_checkpoint  # noqa: E402


class FullTables:
    """Tables at the text-line scale (make_data.py --table-only --full-scale), read in windows of
    at most tile_rows x tile_cols patches — the splitter's input, as table_split.tiled_maps reads a
    large table in C++ and PyTorch alike."""

    def __init__(self, files: list[str], tile_rows: int, tile_cols: int):
        pix, offs, hs, ws, self.grids, base = [], [], [], [], [], 0
        for f in sorted(files):
            z = np.load(f)
            pix.append(z["pixels"])
            offs.append(z["offsets"][:-1] + base)
            base += int(z["offsets"][-1])
            hs.append(z["heights"])
            ws.append(z["widths"])
            for text in z["labels"]:
                g = json.loads(str(text))
                self.grids.append(([tuple(e) for e in g["cols"]], [tuple(e) for e in g["rows"]], T.cell_ids(g["kinds"])))
        self.pixels = np.concatenate(pix) if pix else np.zeros(0, np.uint8)
        self.offsets = np.concatenate(offs) if offs else np.zeros(0, np.int64)
        self.heights = np.concatenate(hs) if hs else np.zeros(0, np.int32)
        self.widths = np.concatenate(ws) if ws else np.zeros(0, np.int32)
        self.tile_rows, self.tile_cols = tile_rows, tile_cols
        self.window_rows = np.minimum(self.heights // C.PATCH, tile_rows)

    def __len__(self):
        return len(self.grids)

    def image(self, i: int) -> np.ndarray:
        h, w = int(self.heights[i]), int(self.widths[i])
        return self.pixels[self.offsets[i]:self.offsets[i] + h * w].reshape(h, w)

    def batches(self, rng: np.random.Generator, batch: int) -> list[np.ndarray]:
        """Batches of tables whose windows have one height (see TableShards)."""
        out = []
        for r in np.unique(self.window_rows):
            idx = rng.permutation(np.flatnonzero(self.window_rows == r))
            out += [idx[i:i + batch] for i in range(0, len(idx), batch)]
        rng.shuffle(out)
        return out

    def make(self, idx: np.ndarray, rng: np.random.Generator, widen: bool = True):
        """A random window of each table -> (patches, rows, cols, valid, targets [4 tensors], widths):
        the targets are the whole table's (table_split.targets_of_grid), cut to the window."""
        P, tr = C.PATCH, int(self.window_rows[idx[0]])
        wins, cuts, widths = [], [], []
        for i in idx:
            img = self.image(i)
            R, K = img.shape[0] // P, img.shape[1] // P
            tc = min(K, self.tile_cols)
            r0, c0 = int(rng.integers(0, R - tr + 1)), int(rng.integers(0, K - tc + 1))
            lr, lc, gr, gc = T.targets_of_grid(*self.grids[i], R, K, img if widen else None)
            ys, xs = slice(r0 * P, (r0 + tr) * P), slice(c0 * P, (c0 + tc) * P)
            wins.append(img[ys, xs])
            cuts.append((lr[c0:c0 + tc, ys], lc[r0:r0 + tr, xs], gr[ys], gc[xs]))
            widths.append(tc * P)
        W = max(widths)
        imgs = np.full((len(idx), tr * P, W), 255, np.uint8)
        tg = [np.zeros((len(idx), W // P, tr * P), np.float32), np.zeros((len(idx), tr, W), np.float32),
              np.zeros((len(idx), tr * P), np.float32), np.zeros((len(idx), W), np.float32)]
        for b, (win, cut) in enumerate(zip(wins, cuts)):
            imgs[b, :, :win.shape[1]] = win
            tg[0][b, :cut[0].shape[0]] = cut[0]
            tg[1][b, :, :cut[1].shape[1]] = cut[1]
            tg[2][b] = cut[2]
            tg[3][b, :cut[3].shape[0]] = cut[3]
        widths = np.array(widths)
        patches, rows, cols, valid, _, _ = make_batch(imgs, widths, [[0]] * len(idx))
        return patches, rows, cols, valid, [torch.from_numpy(t) for t in tg], torch.from_numpy(widths.astype(np.int64))


def evaluate_full(model: TableSplit, s: FullTables, n: int) -> dict:
    """evaluate() on whole full-scale tables, read in tiles (table_split.tiled_maps)."""
    def read(i):
        img = s.image(i)
        return T.read_grid(img, *T.tiled_maps(model, img, s.tile_rows, s.tile_cols), img.shape[0], img.shape[1])[2], s.grids[i][2]
    return score_grids(model, min(n, len(s)), read)


def batch_targets(s: TableShards, idx, rows: int, cols: int, widen: bool = True):
    t = [T.targets(s.labels[i], rows, cols, s.images[i, :int(s.heights[i]), :int(s.widths[i])] if widen else None) for i in idx]
    return [torch.from_numpy(np.stack([x[k] for x in t])) for k in range(4)]


def split_loss(maps, targets, widths: torch.Tensor, P: int, global_weight: float = 1.0):
    """Mean binary cross-entropy of the four maps, each over its valid positions (inside the
    table's width), summed (the row and column maps, which decide the grid's shape, weigh
    global_weight)."""
    lr, lc, gr, gc = maps
    b, cols, H = lr.shape
    W = lc.shape[2]
    wcol = (torch.arange(cols)[None, :] < (widths[:, None] // P)).float()  # [B, cols]
    wx = (torch.arange(W)[None, :] < widths[:, None]).float()  # [B, W]
    masks = (wcol[:, :, None].expand(b, cols, H), wx[:, None, :].expand(b, lc.shape[1], W), torch.ones_like(gr), wx)
    total = 0.0
    for k, (y, t, m) in enumerate(zip(maps, targets, masks)):
        w = global_weight if k >= 2 else 1.0
        total = total + w * (F.binary_cross_entropy_with_logits(y, t, reduction="none") * m).sum() / m.sum().clamp(min=1)
    return total


def load_init(model: TableSplit, path: str):
    if path.endswith(".pt"):
        sd = torch.load(path, map_location="cpu")["model"]
    else:
        from safetensors_io import read_safetensors
        sd = read_safetensors(path)
        sd = {k[len("table."):] if k.startswith("table.") else k: v for k, v in sd.items()}
        sd = {k: (v.float() * sd[k + "_scale"][:, None] if v.dtype == torch.int8 else v) for k, v in sd.items() if not k.endswith("_scale")}
    own = model.state_dict()
    loaded = {n: (sd[n] if n in sd and sd[n].shape == t.shape else t) for n, t in own.items()}
    missing = [n for n in own if n not in sd and not n.startswith(("head.", "out_", "axial."))]
    if missing:
        raise SystemExit(f"--init {path}: missing tensors {missing[:5]}")
    for name in ("head.weight", "head.bias"):  # a fresh head is zero; a smaller one (fewer maps) fills the first rows
        t = torch.zeros_like(own[name])
        if name in sd and sd[name].shape[0] <= t.shape[0] and sd[name].shape[1:] == t.shape[1:]:
            t[:sd[name].shape[0]] = sd[name]
        loaded[name] = t
    model.load_state_dict(loaded)


@torch.no_grad()
def predict(model: TableSplit, s: TableShards, i: int):
    """The grid read from the model's maps for validation table i (batch of one)."""
    patches, rows, cols, valid, _, _ = s.make(np.array([i]), 4)
    dev = model.anchor.device
    v = anchors_valid(valid, model.c.anchors).to(dev)
    maps = [m[0].float().cpu().numpy() for m in model.maps(patches.to(dev).to(model.anchor.dtype), rows, cols, v)]
    h, w = int(s.heights[i]), int(s.widths[i])
    return T.read_grid(s.images[i], *maps, h, w)


def evaluate(model: TableSplit, s: TableShards, n: int) -> dict:
    return score_grids(model, min(n, len(s)), lambda i: (predict(model, s, i)[2], T.parse_grid(s.labels[i])[2]))


@torch.no_grad()
def score_grids(model: TableSplit, m: int, read) -> dict:
    """read(i) -> (cell ids read by the model, the truth's) for tables 0..m-1: the share with the
    truth's shape and with its structure (every cell's span)."""
    model.eval()
    shape = exact = 0
    for i in range(m):
        ids, truth = read(i)
        shape += len(ids) == len(truth) and bool(ids) and len(ids[0]) == len(truth[0])
        exact += T.structure(ids) == T.structure(truth)
    model.train()
    return {"tables": m, "shape": shape / m, "structure": exact / m}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--init", default="")
    ap.add_argument("--steps", type=int, default=3000, help="length of the LR schedule")
    ap.add_argument("--hours", type=float, default=0, help="stop (with a checkpoint) after this long; 0: run to --steps")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--head-lr-scale", type=float, default=10.0)
    ap.add_argument("--global-weight", type=float, default=2.0, help="loss weight of the row and column maps (the local ones: 1)")
    ap.add_argument("--axial", type=int, default=-1, help="pairs of row/column attention blocks before the head "
                    "(Config.split_axial; -1: as the run or --init has it)")
    ap.add_argument("--narrow", action="store_true", help="separator targets between the extents only (not widened over the white next to them)")
    ap.add_argument("--full", action="store_true",
                    help="train on windows of the full-scale tables (DATA/tablefull-*.npz: make_data.py --table-only --full-scale) "
                         "and evaluate whole tables read in tiles")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-tables", type=int, default=100)
    ap.add_argument("--ckpt-minutes", type=float, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    VisionTower.local_attention = True
    QLinear.qat = True
    run = Path(a.run)
    run.mkdir(parents=True, exist_ok=True)
    say = run_log(run)

    ck = run / "last.pt"
    src = ck if ck.exists() else Path(a.init)
    cfg_file = src.parent / "config.json"
    cfg = Config(**{k: v for k, v in json.loads(cfg_file.read_text()).items() if k in Config.__dataclass_fields__})
    if a.axial >= 0 and not ck.exists():
        cfg.split_axial = a.axial
    if a.full:
        cfg.split_tiled = True
    if a.full:
        tile = T.tile_of(cfg)
        train = FullTables(glob.glob(f"{a.data}/tablefull-train-*.npz"), *tile)
        val = FullTables(glob.glob(f"{a.data}/tablefull-val-*.npz"), *tile)
    else:
        train = TableShards(glob.glob(f"{a.data}/table-train-*.npz"))
        val = TableShards(glob.glob(f"{a.data}/table-val-*.npz"))
    say(f"data: {len(train)} train / {len(val)} val tables")
    torch.manual_seed(a.seed)
    model = TableSplit(cfg)
    if not ck.exists() and a.init:
        load_init(model, a.init)
    model.to(device)
    head = [p for n, p in model.named_parameters() if n.startswith("head.")]
    body = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    opt = torch.optim.AdamW([{"params": body, "lr_scale": 1.0}, {"params": head, "lr_scale": a.head_lr_scale}],
                            lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)
    step, epoch = 0, 0
    if ck.exists():
        state = torch.load(ck, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, epoch = state["step"], state["epoch"]
        say(f"resumed at step {step}")
    elif a.init:
        say(f"initialised from {a.init}")
    (run / "config.json").write_text(json.dumps(cfg.to_json(), indent=1))
    say(f"parameters: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M")
    bf16 = Bf16Work(model, TableSplit(cfg).bfloat16().to(device))
    work = bf16.work

    def save():
        save_checkpoint(ck, {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "epoch": epoch})

    queue: list = []
    start_step = step
    t_start = t_ck = time.time()
    loss_avg, seen = None, 0
    while step < a.steps:
        lr = lr_at(step, a.lr, a.warmup, a.steps)
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_scale"]
        if not queue:  # batch order: a function of (seed, epoch, the step this stretch started at)
            queue = train.batches(np.random.default_rng([a.seed, epoch, start_step]), a.batch)
            epoch += 1
        bidx = queue.pop()
        if a.full:  # windows: a function of (seed, step)
            patches, rows, cols, valid, targets, widths = train.make(bidx, np.random.default_rng([a.seed, step]), widen=not a.narrow)
        else:
            patches, rows, cols, valid, _, _ = train.make(bidx, 4)
            targets = batch_targets(train, bidx, rows, cols, widen=not a.narrow)
            widths = torch.from_numpy(train.widths[bidx].astype(np.int64))
        targets = [t.to(device) for t in targets]
        bf16.sync()
        v = anchors_valid(valid, cfg.anchors).to(device)
        maps = work.maps(patches.to(device).bfloat16(), rows, cols, v)
        loss = split_loss(maps, targets, widths.to(device), cfg.patch, a.global_weight)
        bf16.step(loss, opt)
        step += 1
        seen += len(bidx)
        loss_avg = loss.item() if loss_avg is None else 0.95 * loss_avg + 0.05 * loss.item()
        if step % 25 == 0:
            say(f"step {step} loss {loss_avg:.4f} lr {lr:.2e} {seen / (time.time() - t_start):.1f} tables/s")
        if step % a.eval_every == 0:
            bf16.sync()
            say(f"eval step {step}: {json.dumps((evaluate_full if a.full else evaluate)(work, val, a.eval_tables))}")
        if time.time() - t_ck > a.ckpt_minutes * 60:
            save()
            t_ck = time.time()
        if a.hours and time.time() - t_start > a.hours * 3600:
            break
    save()
    say(f"stopped at step {step} (checkpoint {ck})")


if __name__ == "__main__":
    main()

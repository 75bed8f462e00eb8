#!/usr/bin/python3
"""Trains docvlm-small (tools/train/model.py) on shards from make_data.py. Resumable.

    tools/train/train.py --data /work/data --run /work/data/run1 [--hours 2] [--steps 40000]

Runs in bfloat16 on the CPU (shared/TRAINING.md: ~5x float32 with Debian's torch) with float32
master weights in the optimiser. Checkpoints RUN/last.pt every --ckpt-minutes and at the end; a
second call with the same RUN continues where it stopped (same data order, same RNG streams).
With no RUN/last.pt but --init FILE (an exported models/docvlm-small/model.safetensors, or another
run's last.pt), training starts from those weights (the int8 export is the resume point on a fresh
machine).
Quantisation-aware training (int8 weights and activations, as the C++ int8 path) starts at --qat-from.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
from model import Config, DocVLM, QLinear, VisionTower  # noqa: E402


class Shards:
    """All shards of one task in memory; batches of similar width."""

    def __init__(self, files: list[str], task: str):
        self.task = task
        self.height = C.TASK_HEIGHT[task]
        imgs, widths, labels = [], [], []
        for f in sorted(files):
            z = np.load(f)
            imgs.append(z["images"])
            widths.append(z["widths"])
            lab, off = z["labels"], z["offsets"]
            labels += [lab[off[i]:off[i + 1]].tobytes() for i in range(len(off) - 1)]
        self.images = np.concatenate(imgs) if imgs else np.zeros((0, self.height, C.MAX_W), np.uint8)
        self.widths = np.concatenate(widths) if widths else np.zeros(0, np.int32)
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def batches(self, rng: np.random.Generator, batch: int) -> list[np.ndarray]:
        order = np.argsort(self.widths + rng.uniform(0, 24, len(self.widths)), kind="stable")
        out = [order[i:i + batch] for i in range(0, len(order) - batch + 1, batch)]
        rng.shuffle(out)
        return out

    def make(self, idx: np.ndarray, max_tokens: int):
        """patches [B, cols*rows, 64] f32, rows, cols, valid [B, anchors+n] bool, input/target tokens."""
        w = int(self.widths[idx].max())
        seqs = [[C.TASKS[self.task]] + list(self.labels[i][: max_tokens - 2]) + [C.EOS] for i in idx]
        return make_batch(self.images[idx, :, :w], self.widths[idx], seqs)


def make_batch(imgs: np.ndarray, widths: np.ndarray, seqs: list[list[int]]):
    """Images uint8 [B, H, W] (white padded on the right; image i is widths[i] wide) and token
    sequences (task token ... EOS) -> patches [B, cols*rows, 64] f32 in column-major order, rows,
    cols, valid [B, cols*rows] bool (padding columns False), input tokens, target tokens (PAD padded)."""
    b, h, w = imgs.shape
    rows, cols = h // C.PATCH, w // C.PATCH
    x = imgs.astype(np.float32) / 127.5 - 1.0
    patches = x.reshape(b, rows, C.PATCH, cols, C.PATCH).transpose(0, 3, 1, 2, 4).reshape(b, cols * rows, C.PATCH * C.PATCH)
    valid = np.repeat(np.arange(cols)[None, :] < (widths[:, None] // C.PATCH), rows, axis=1)
    toks = np.full((b, max(len(s) for s in seqs)), C.PAD, np.int64)
    for r, s in enumerate(seqs):
        toks[r, :len(s)] = s
    return (torch.from_numpy(np.ascontiguousarray(patches)), rows, cols, torch.from_numpy(valid), torch.from_numpy(toks[:, :-1]),
            torch.from_numpy(toks[:, 1:]))


class TableShards:
    """Table crops (variable height and width) with their OTSL token labels; a batch holds crops of
    one height (the vision window runs over column-major patch order, so padding rows would change
    which tokens are neighbours)."""

    def __init__(self, files: list[str]):
        imgs, hs, ws, labels = [], [], [], []
        for f in sorted(files):
            z = np.load(f)
            imgs.append(z["images"])
            hs.append(z["heights"])
            ws.append(z["widths"])
            tok, off = z["tokens"], z["offsets"]
            labels += [tok[off[i]:off[i + 1]].astype(np.int64).tolist() for i in range(len(off) - 1)]
        self.images = np.concatenate(imgs) if imgs else np.zeros((0, C.TABLE_MAX_H, C.TABLE_MAX_W), np.uint8)
        self.heights = np.concatenate(hs) if hs else np.zeros(0, np.int32)
        self.widths = np.concatenate(ws) if ws else np.zeros(0, np.int32)
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def batches(self, rng: np.random.Generator, batch: int) -> list[np.ndarray]:
        out = []
        for h in np.unique(self.heights):
            idx = np.flatnonzero(self.heights == h)
            idx = idx[np.argsort(self.widths[idx] + rng.uniform(0, 64, len(idx)), kind="stable")]
            out += [idx[i:i + batch] for i in range(0, len(idx), batch)]
        rng.shuffle(out)
        return out

    def make(self, idx: np.ndarray, max_tokens: int):
        idx = np.asarray(idx)
        h, w = int(self.heights[idx[0]]), int(self.widths[idx].max())
        assert (self.heights[idx] == h).all(), "a batch holds tables of one height"
        seqs = [[C.TASK_TABLE] + self.labels[i][: max_tokens - 2] + [C.EOS] for i in idx]
        return make_batch(self.images[idx, :h, :w], self.widths[idx], seqs)

    def geometry(self, idx: np.ndarray, rows: int, cols: int) -> torch.Tensor:
        """Per-patch targets [B, cols*rows, 5] (column-major, as the vision tokens): whether the patch
        overlaps a filled cell's ink box (0/1), and that box as 4 coordinate classes (x0, y0, x1, y1
        in TABLE_Q units, the values of its coordinate tokens); -100 (ignored) where undefined."""
        out = np.full((len(idx), cols, rows, 5), -100, np.int64)
        for b, i in enumerate(idx):
            wcols = min(cols, int(self.widths[i]) // C.PATCH)
            out[b, :wcols, :, 0] = 0
            for row in C.parse_table_tokens(self.labels[i]):
                for kind, box in row:
                    if kind != C.FCEL or box is None:
                        continue
                    x0, y0, x1, y1 = box  # input pixels, ends exclusive
                    c0, c1 = x0 // C.PATCH, min(wcols, -(-x1 // C.PATCH))
                    r0, r1 = y0 // C.PATCH, min(rows, -(-y1 // C.PATCH))
                    out[b, c0:c1, r0:r1, 0] = 1
                    out[b, c0:c1, r0:r1, 1:] = [x0 // C.TABLE_Q, y0 // C.TABLE_Q, x1 // C.TABLE_Q - 1, y1 // C.TABLE_Q - 1]
        return torch.from_numpy(out.reshape(len(idx), cols * rows, 5))


class GeometryHead(torch.nn.Module):
    """Training aid for the table task (not exported), as the CTC head is for text: from each vision
    token, whether it lies in a filled cell and that cell's box. It makes the encoder carry each
    cell's box where the decoder can read it while writing the cell's coordinate tokens."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = torch.nn.Linear(dim, 2 + 4 * C.TABLE_COORDS)

    def loss(self, vis: torch.Tensor, anchors: int, target: torch.Tensor) -> torch.Tensor:
        y = self.proj(vis[:, anchors:].float())
        inside = F.cross_entropy(y[..., :2].reshape(-1, 2), target[..., 0].reshape(-1), ignore_index=-100)
        box = y[..., 2:].reshape(-1, C.TABLE_COORDS)
        return inside + F.cross_entropy(box, target[..., 1:].reshape(-1), ignore_index=-100)


def table_cells(ids: list[int]) -> list[list[int]]:
    """Structure only (OTSL kinds per row) of a table token sequence."""
    return [[k for k, _ in row] for row in C.parse_table_tokens(ids)]


def rare_kinds(t: torch.Tensor) -> torch.Tensor:
    """Where a token tensor holds one of the rare OTSL kinds (ecel, lcel, ucel, xcel)."""
    return (t == C.ECEL) | (t == C.LCEL) | (t == C.UCEL) | (t == C.XCEL)


def anchors_valid(valid: torch.Tensor, anchors: int) -> torch.Tensor:
    return torch.cat([torch.ones(valid.shape[0], anchors, dtype=torch.bool, device=valid.device), valid], dim=1)


def to_device(batch, device):
    """A batch of make() (patches, rows, cols, valid, tokens in, tokens out) on `device`."""
    patches, rows, cols, valid, tin, tout = batch
    return patches.to(device), rows, cols, valid.to(device), tin.to(device), tout.to(device)


def cer(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return prev[-1]


def greedy_scores(out, labels: list[bytes]) -> tuple[int, int, int]:
    """Greedy outputs [B, T] (ending at EOS) against label bytes: character edits, characters
    (at least 1 per label) and exact matches."""
    edits = chars = exact = 0
    for r, label in enumerate(labels):
        ids = out[r].tolist()
        ids = ids[:ids.index(C.EOS)] if C.EOS in ids else ids
        pred, truth = C.decode(ids), label.decode("utf-8", "replace")
        edits += cer(pred, truth)
        chars += max(1, len(truth))
        exact += pred == truth
    return edits, chars, exact


@torch.no_grad()
def evaluate_tables(model, s, idx, greedy_n=8, constrained=True):
    """Teacher-forced loss and next-token accuracy (structure tokens, coordinates within one unit),
    and the recall of the rare OTSL kinds (ecel, lcel, ucel, xcel: the share of them predicted
    right; a model that writes fcel everywhere scores ~0.9 in token accuracy but 0 here); greedy
    decoding (constrained to well-formed OTSL unless constrained=False) on the first greedy_n crops:
    exact structure share, right row count, cell kinds right at the truth's grid positions, and the
    mean error of box coordinates (input pixels) where both have a filled cell."""
    loss_sum = tok = right = coord_ok = coords = struct_exact = rare = rare_ok = 0
    rows_ok = cells = cells_ok = box_err = boxes = 0
    for i, j in enumerate(idx):
        patches, rows, cols, valid, tin, tout = to_device(s.make(np.array([j]), model.c.max_tokens), model.inv_freq.device)
        v = anchors_valid(valid, model.c.anchors)
        logits = model(patches.bfloat16(), rows, cols, tin, v).float()[0]
        t = tout[0]
        loss_sum += F.cross_entropy(logits, t, reduction="sum").item()
        tok += len(t)
        pred = logits.argmax(-1)
        is_coord = t >= C.COORD0
        right += int((pred[~is_coord] == t[~is_coord]).sum())
        coord_ok += int(((pred[is_coord] - t[is_coord]).abs() <= 1).sum())
        coords += int(is_coord.sum())
        is_rare = rare_kinds(t)
        rare += int(is_rare.sum())
        rare_ok += int((pred[is_rare] == t[is_rare]).sum())
        if i < greedy_n:
            out = model.greedy_cached(patches.bfloat16(), rows, cols, C.TASK_TABLE, model.c.max_tokens - 2,
                                      C.otsl_allowed if constrained else None)
            struct_exact += table_cells(out) == table_cells(s.labels[j])
            pred, truth = C.parse_table_tokens(out), C.parse_table_tokens(s.labels[j])
            rows_ok += len(pred) == len(truth)
            for r, trow in enumerate(truth):
                prow = pred[r] if r < len(pred) else []
                for k, (kind, box) in enumerate(trow):
                    cells += 1
                    if k < len(prow):
                        cells_ok += prow[k][0] == kind
                        if box is not None and prow[k][1] is not None:
                            box_err += sum(abs(u - v) for u, v in zip(box, prow[k][1])) / 4
                            boxes += 1
    g = max(1, min(greedy_n, len(idx)))
    return {"greedy_rows_ok": rows_ok / g, "greedy_cell_kind_acc": cells_ok / max(1, cells), "greedy_box_err_px": box_err / max(1, boxes),
            "loss": loss_sum / max(1, tok), "struct_token_acc": right / max(1, tok - coords), "coord_within_1": coord_ok / max(1, coords),
            "rare_kind_recall": rare_ok / max(1, rare), "greedy_struct_exact": struct_exact / g}


@torch.no_grad()
def evaluate(model, sets, n=64, batch=32, max_new=100, n_tables=32):
    model.eval()
    res = {}
    for task, s in sets.items():
        if len(s) == 0:
            continue
        rng = np.random.default_rng(0)
        idx = np.sort(rng.choice(len(s), min(n, len(s)), replace=False))
        if task == "table":
            res[task] = evaluate_tables(model, s, idx[:n_tables])
            continue
        loss_sum = tok = edits = chars = exact = 0
        for i in range(0, len(idx), batch):
            bidx = idx[i:i + batch]
            patches, rows, cols, valid, tin, tout = to_device(s.make(bidx, model.c.max_tokens), model.inv_freq.device)
            v = anchors_valid(valid, model.c.anchors)
            logits = model(patches.bfloat16(), rows, cols, tin, v)
            mask = tout != C.PAD
            loss_sum += F.cross_entropy(logits.float()[mask], tout[mask], reduction="sum").item()
            tok += int(mask.sum())
            out = model.greedy(patches.bfloat16(), rows, cols, C.TASKS[task], max_new, v)
            e, c, x = greedy_scores(out, [s.labels[j] for j in bidx])
            edits, chars, exact = edits + e, chars + c, exact + x
        res[task] = {"loss": loss_sum / max(1, tok), "cer": edits / max(1, chars), "exact": exact / len(idx)}
    model.train()
    return res


def run_log(run: Path):
    """say(msg): a time-stamped line to stdout and RUN/log.txt."""
    log = open(run / "log.txt", "a")

    def say(msg):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    return say


def lr_at(step: int, base: float, warmup: int, steps: int) -> float:
    """Linear warm-up, then a cosine down to a tenth of `base` at `steps`."""
    return base * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / steps))))


def save_checkpoint(path: Path, state: dict):
    """torch.save through a temporary file, so that a stop mid-write leaves the last checkpoint whole."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


class Bf16Work:
    """A bfloat16 working copy of a float32 model whose parameters the optimiser holds (the master
    weights): forward and backward run on the copy, the gradients go to the master."""

    def __init__(self, master: torch.nn.Module, work: torch.nn.Module):
        self.master, self.work = list(master.parameters()), work
        self.params = list(work.parameters())

    def sync(self):
        with torch.no_grad():
            for w, m in zip(self.params, self.master):
                w.copy_(m)

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, extra: list | None = None):
        """Backward through the copy, gradients (clipped to norm 1 with `extra`'s) to the master, optimiser step."""
        self.work.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for w, m in zip(self.params, self.master):
                m.grad = w.grad.float() if w.grad is not None else None
        torch.nn.utils.clip_grad_norm_(self.master + (extra or []), 1.0)
        opt.step()


def load_init(model: DocVLM, path: str):
    """Starts from an exported model (int8 weights + scales are dequantised; a CTC head, which is
    not exported, keeps its fresh initialisation) or from another run's checkpoint (RUN/last.pt:
    its float master weights; the optimiser state and schedule start afresh)."""
    if path.endswith(".pt"):
        sd = torch.load(path, map_location="cpu")["model"]
    else:
        from safetensors_io import read_safetensors
        sd = read_safetensors(path)
    own = model.state_dict()
    loaded = {}
    for name, t in own.items():
        if name.startswith("ctc.") or (name.startswith("out_") and name not in sd):
            loaded[name] = t
        elif name in sd:
            w = sd[name]
            w = w.float() * sd[name + "_scale"][:, None] if w.dtype == torch.int8 else w
            if w.shape != t.shape and w.dim() == 2 and w.shape[1] == t.shape[1] and w.shape[0] < t.shape[0]:
                # a grown table (vocabulary, rows of the row embedding): old rows kept, new rows fresh
                w = torch.cat([w, t[w.shape[0]:]])
            loaded[name] = w
    missing = set(own) - set(loaded)
    if missing:
        raise SystemExit(f"--init {path}: missing tensors {sorted(missing)[:5]}")
    model.load_state_dict(loaded)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--init", default="", help="start from an exported model.safetensors (its folder's config.json sets the "
                    "model's shape and tasks) or a run's last.pt")
    ap.add_argument("--steps", type=int, default=40000, help="length of the LR schedule")
    ap.add_argument("--hours", type=float, default=0, help="stop (with a checkpoint) after this long; 0: run to --steps")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--qat-from", type=int, default=3000)
    ap.add_argument("--formula-share", type=float, default=0.12)
    ap.add_argument("--table-share", type=float, default=0.0, help="share of steps on table batches")
    ap.add_argument("--table-batch", type=int, default=8)
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--ckpt-minutes", type=float, default=10)
    ap.add_argument("--keep-evals", action="store_true",
                    help="also keep the weights at every evaluation (RUN/step-N.pt, model only), to export any of them")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="torch device: cpu (Debian's torch), or cuda where a GPU and a CUDA torch exist")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ctc-weight", type=float, default=0.0, help="weight of an auxiliary CTC loss on the vision tokens")
    ap.add_argument("--geo-weight", type=float, default=0.0,
                    help="weight of an auxiliary per-patch cell-geometry loss on table batches (GeometryHead)")
    ap.add_argument("--coord-noise", type=float, default=0.0,
                    help="share of input coordinate tokens of table batches moved by 1-4 units (targets kept): the "
                         "decoder must find boxes in the image, not extrapolate them from the previous ones")
    ap.add_argument("--kind-weight", type=float, default=1.0,
                    help="table batches: loss weight of the rare OTSL kinds (ecel, lcel, ucel, xcel) against 1 for other tokens")
    ap.add_argument("--out-pos", action="store_true",
                    help="add row/column embeddings again at the vision encoder's output (Config.out_pos)")
    ap.add_argument("--masked-attention", action="store_true",
                    help="vision attention as a masked n x n product (default: window_anchor_attention, the same function, linear)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    VisionTower.local_attention = not a.masked_attention
    run = Path(a.run)
    run.mkdir(parents=True, exist_ok=True)
    say = run_log(run)

    cfg = Config(ctc_head=a.ctc_weight > 0, out_pos=a.out_pos)
    init_cfg = Path(a.init).parent / "config.json"
    if a.init.endswith(".safetensors") and init_cfg.exists():  # fine-tuning a model folder: its shape and tasks
        cfg = Config.from_json(json.loads(init_cfg.read_text()))
        cfg.ctc_head, cfg.out_pos = a.ctc_weight > 0, a.out_pos or cfg.out_pos
    elif (run / "config.json").exists():  # resuming: the run's own
        cfg = Config.from_json(json.loads((run / "config.json").read_text()))
    train = {t: Shards(glob.glob(f"{a.data}/{t}-train-*.npz"), t) for t in ("text", "formula")}
    val = {t: Shards(glob.glob(f"{a.data}/{t}-val-*.npz"), t) for t in ("text", "formula")}
    train["table"] = TableShards(glob.glob(f"{a.data}/table-train-*.npz"))
    val["table"] = TableShards(glob.glob(f"{a.data}/table-val-*.npz"))
    say(f"data: " + ", ".join(f"{t} {len(s)} train / {len(val[t])} val" for t, s in train.items()))

    torch.manual_seed(a.seed)
    model = DocVLM(cfg)
    geo = GeometryHead(cfg.vision_dim) if a.geo_weight > 0 else None
    ck = run / "last.pt"
    if not ck.exists() and a.init:  # before moving to the device (the file's tensors are on the CPU)
        load_init(model, a.init)
    model.to(device)
    if geo is not None:
        geo.to(device)
    fresh = [p for n, p in model.named_parameters() if n.startswith("out_")]
    groups = [{"params": [p for n, p in model.named_parameters() if not n.startswith("out_")], "lr_scale": 1.0}]
    if fresh:  # zero-initialised position embeddings: a higher learning rate than the pretrained weights
        groups.append({"params": fresh, "lr_scale": 10.0})
    if geo is not None:  # a fresh head: a higher learning rate than the pretrained weights
        groups.append({"params": list(geo.parameters()), "lr_scale": 5.0})
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)
    step, epoch = 0, {t: 0 for t in train}
    if ck.exists():
        state = torch.load(ck, map_location=device)
        model.load_state_dict(state["model"])
        if geo is not None:
            geo.load_state_dict(state["geo"])
        opt.load_state_dict(state["opt"])
        step, epoch = state["step"], {**epoch, **state["epoch"]}
        say(f"resumed at step {step}")
    elif a.init:
        say(f"initialised from {a.init}")
    (run / "config.json").write_text(json.dumps(cfg.to_json(), indent=1))
    say(f"parameters: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M")

    # bf16 working copy; f32 master weights stay in `model`.
    bf16 = Bf16Work(model, DocVLM(cfg).bfloat16().to(device))
    work = bf16.work

    rng_py = random.Random(a.seed * 7919 + step)
    queues = {t: [] for t in train}

    start_step = step

    def next_batch(task):
        # Batch order: a function of (seed, task, epoch, the step this stretch started at).
        if not queues[task]:
            g = np.random.default_rng([a.seed, ("text", "formula", "table").index(task), epoch[task], start_step])
            queues[task] = train[task].batches(g, a.table_batch if task == "table" else a.batch)
            epoch[task] += 1
        return queues[task].pop()

    t_start = time.time()
    t_ck = time.time()
    seen = 0
    loss_avg = None
    task_loss = {}

    def save():
        save_checkpoint(ck, {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "epoch": epoch,
                             **({"geo": geo.state_dict()} if geo is not None else {})})

    while step < a.steps:
        lr = lr_at(step, a.lr, a.warmup, a.steps)
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_scale"]
        QLinear.qat = step >= a.qat_from
        r = rng_py.random()
        task = ("table" if (len(train["table"]) and r < a.table_share) else
                "formula" if (len(train["formula"]) and r < a.table_share + a.formula_share) else "text")
        bidx = next_batch(task)
        patches, rows, cols, valid, tin, tout = train[task].make(bidx, cfg.max_tokens)
        if task == "table" and a.coord_noise > 0:
            g = torch.Generator().manual_seed(a.seed * 100003 + step)
            is_coord = (tin >= C.COORD0) & (tin < C.COORD0 + C.TABLE_COORDS)
            hit = is_coord & (torch.rand(tin.shape, generator=g) < a.coord_noise)
            shift = torch.randint(1, 5, tin.shape, generator=g) * (torch.randint(0, 2, tin.shape, generator=g) * 2 - 1)
            tin = torch.where(hit, (tin + shift).clamp(C.COORD0, C.COORD0 + C.TABLE_COORDS - 1), tin)
        patches, rows, cols, valid, tin, tout = to_device((patches, rows, cols, valid, tin, tout), device)
        bf16.sync()
        v = anchors_valid(valid, cfg.anchors)
        logits, vis = work(patches.bfloat16(), rows, cols, tin, v, with_vision=True)
        mask = tout != C.PAD
        if task == "table" and a.kind_weight != 1.0:  # the rare OTSL kinds weigh more (else the prior, fcel, wins)
            w = torch.where(rare_kinds(tout), torch.full_like(tout, a.kind_weight, dtype=torch.float32), torch.ones_like(tout, dtype=torch.float32))[mask]
            loss = (F.cross_entropy(logits.float()[mask], tout[mask], reduction="none") * w).sum() / w.sum()
        else:
            loss = F.cross_entropy(logits.float()[mask], tout[mask])
        if a.ctc_weight > 0 and task != "table":
            tgt = torch.where(tout == C.EOS, torch.full_like(tout, C.PAD), tout)
            loss = loss + a.ctc_weight * work.ctc_loss(vis, v, tgt)
        if geo is not None and task == "table":
            loss = loss + a.geo_weight * geo.loss(vis, cfg.anchors, train["table"].geometry(bidx, rows, cols).to(device))
        bf16.step(loss, opt, list(geo.parameters()) if geo is not None else None)
        step += 1
        seen += patches.shape[0]
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        task_loss[task] = loss.item() if task not in task_loss else 0.95 * task_loss[task] + 0.05 * loss.item()
        if step % 50 == 0:
            el = time.time() - t_start
            per_task = " ".join(f"{t} {v:.3f}" for t, v in sorted(task_loss.items()))
            say(f"step {step} loss {loss_avg:.4f} ({per_task}) lr {lr:.2e} qat {int(QLinear.qat)} {seen / el:.1f} samples/s")
        if step % a.eval_every == 0:
            bf16.sync()
            say(f"eval step {step}: {json.dumps(evaluate(work, val))}")
            if a.keep_evals:
                save_checkpoint(run / f"step-{step}.pt", {"model": model.state_dict(), "step": step})
        if time.time() - t_ck > a.ckpt_minutes * 60:
            save()
            t_ck = time.time()
        if a.hours and time.time() - t_start > a.hours * 3600:
            break
    save()
    say(f"stopped at step {step} (checkpoint {ck})")


if __name__ == "__main__":
    main()

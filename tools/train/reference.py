#!/usr/bin/python3
"""PyTorch reference outputs of a docvlm-small model folder, for the C++ tests.

    tools/train/reference.py --random tests/data/gated-tiny      # a tiny random model + its outputs
    tools/train/reference.py --model models/docvlm-small --crops tests/data/docvlm-small/crops.npz \
        --out tests/data/docvlm-small/reference.safetensors

For each crop (uint8 [H, W], already prepared: see common.to_model_input) it stores:
  crop<i>            the prepared image (U8)
  vision<i>          vision tokens [anchors + n, vision_dim] (float32 forward, int8 weights dequantised)
  tokens<i>          greedy output of the float32 forward (I64, EOS excluded)
  logits<i>          teacher-forced logits [1 + len(tokens), vocab] for task token + tokens
                     (vision and logits: every crop of --random, the first 12 crops otherwise)
  qat_tokens<i>      greedy output with int8 simulated as in training (QAT), what C++ int8 should give
  task<i>            the task token (I64)
  max_new            the greedy length limit used (the table task: max_tokens - 2)
  constrained<i>     table crops: float32 greedy output constrained to well-formed OTSL (common.otsl_allowed)
With a table splitter in the model (config.json "table_split"), every table crop also stores its
float32 maps (split_local_row<i> [cols, H], split_local_col<i> [rows, W], split_row<i> [H],
split_col<i> [W], logits) and the grid table_split.read_grid reads from them (split_cells<i>:
R, K, then the R x K cell ids; split_rows<i> / split_cols<i>: n, then n (first, end) extents),
and that grid under the int8 QAT
simulation (split_qat_cells<i>): what C++ read_split_grid must give in float32 and int8.
With --crops-from, table crops also store their unscaled crop (table_raw<i>, U8), text line height
(table_line_h<i>, F32) and true structure (table_truth<i>: the generator's OTSL + boxes, I64; --random's
two tables too): C++ prepare_table must turn the crop into crop<i>.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
import table_split as TS  # noqa: E402
from export import add_table_split, save_model  # noqa: E402
from model import Config, DocVLM, QLinear, TableSplit  # noqa: E402
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402


def load_model(folder: Path) -> DocVLM:
    cfg = Config.from_json(json.loads((folder / "config.json").read_text()))
    model = DocVLM(cfg)
    sd = read_safetensors(str(folder / "model.safetensors"))
    state = {}
    for name in model.state_dict():
        t = sd[name]
        state[name] = t.float() * sd[name + "_scale"][:, None] if t.dtype == torch.int8 else t
    model.load_state_dict(state)
    return model.eval()


def load_qat_model(folder: Path, threads: int) -> DocVLM:
    """An exported model in bf16 with int8 simulated (QLinear.qat), as the C++ parser runs it, for
    held-out evaluation on `threads` threads."""
    torch.set_num_threads(threads)
    model = load_model(folder).bfloat16()
    QLinear.qat = True
    return model.eval()


@torch.no_grad()
def randomize(module: torch.nn.Module) -> torch.nn.Module:
    """Random weights of a real scale, gates away from zero, norms away from one."""
    for n, p in module.named_parameters():
        if n.endswith("gate"):
            p.copy_(torch.tensor([0.7 if "attn" in n else -0.4]))
        elif "norm" in n and n.endswith("weight"):
            p.copy_(1 + 0.2 * torch.randn_like(p))
        elif p.dim() == 2:
            p.copy_(torch.randn_like(p) * (0.5 if "embed" in n or n == "anchor" else 1.5 / p.shape[1] ** 0.5))
        else:
            p.copy_(0.1 * torch.randn_like(p))
    return module


def load_split(folder: Path) -> TableSplit | None:
    """The model folder's table splitter (tensors "table.*"), or None."""
    cfg = json.loads((folder / "config.json").read_text())
    if "table_split" not in cfg:
        return None
    c = Config(**{k: v for k, v in cfg.items() if k in Config.__dataclass_fields__})
    c.max_rows, c.out_pos = cfg["table_split"]["max_rows"], cfg["table_split"]["out_pos"]
    c.split_axial = cfg["table_split"].get("axial", 0)
    c.split_tiled = "tile_width" in cfg["table_split"]
    c.split_shift = cfg["table_split"].get("shift", 0)
    split = TableSplit(c)
    split.tile = (c.max_rows, cfg["table_split"].get("tile_width", c.max_cols * c.patch) // c.patch)  # tiled_maps's tile
    split.max_size = (cfg["table_split"].get("max_height", c.max_rows * c.patch), cfg["table_split"]["max_width"])  # prepare_table's limits
    sd = read_safetensors(str(folder / "model.safetensors"))
    state = {}
    for name in split.state_dict():
        t = sd["table." + name]
        state[name] = t.float() * sd["table." + name + "_scale"][:, None] if t.dtype == torch.int8 else t
    split.load_state_dict(state)
    return split.eval()


def split_outputs(split: TableSplit, img: np.ndarray, i: int) -> dict[str, np.ndarray]:
    h, w = img.shape
    p = torch.from_numpy(C.patchify(img))[None]
    out = {}
    for qat in (False, True):
        QLinear.qat = qat
        with torch.no_grad():
            if split.c.split_tiled:
                maps = TS.tiled_maps(split, img, *split.tile, split.c.split_shift)
            else:
                maps = [m[0].numpy() for m in split.maps(p, h // C.PATCH, w // C.PATCH)]
        QLinear.qat = False
        cols, rows, ids = TS.read_grid(img, *maps, h, w)
        # flat, never empty: [R, K, ids row by row] and [n, first0, end0, first1, ...]
        flat_ids = np.array([len(ids), len(ids[0]) if ids else 0] + [v for row in ids for v in row], np.int64)
        if qat:
            out[f"split_qat_cells{i}"] = flat_ids
            continue
        for name, m in zip(("local_row", "local_col", "row", "col"), maps):
            out[f"split_{name}{i}"] = m.astype(np.float32)
        out[f"split_cells{i}"] = flat_ids
        out[f"split_rows{i}"] = np.array([len(rows)] + [v for e in rows for v in e], np.int64)
        out[f"split_cols{i}"] = np.array([len(cols)] + [v for e in cols for v in e], np.int64)
        print(f"crop {i}: splitter grid {len(rows)} x {len(cols)}", flush=True)
    return out


def greedy(model: DocVLM, p, rows: int, cols: int, task: str, max_new: int) -> list[int]:
    """Greedy tokens without the end token (tables, whose outputs are long, with the KV cache)."""
    if task == "table":
        return model.greedy_cached(p, rows, cols, C.TASK_TABLE, max_new)
    toks = model.greedy(p, rows, cols, C.TASKS[task], max_new)[0].tolist()
    return toks[:toks.index(C.EOS)] if C.EOS in toks else toks


def outputs(model: DocVLM, crops: list[np.ndarray], tasks: list[str], max_new: int, full: int = 1 << 30,
            split: TableSplit | None = None, decode_tables: bool = True) -> dict[str, np.ndarray]:
    """Tokens for every crop; vision tokens and logits for the first `full` crops (file size); the
    splitter's maps and grids for every table crop (only those where the model has no table task:
    decode_tables False)."""
    out = {"max_new": np.array([max_new], np.int64)}
    for i, (img, task) in enumerate(zip(crops, tasks)):
        if task == "table" and not decode_tables:
            out.update(split_outputs(split, img, i))
            out[f"crop{i}"] = img.astype(np.uint8)
            out[f"task{i}"] = np.array([C.TASK_TABLE], np.int64)
            continue
        n_new = model.c.max_tokens - 2 if task == "table" else max_new
        h, w = img.shape
        rows, cols = h // C.PATCH, w // C.PATCH
        p = torch.from_numpy(C.patchify(img))[None]
        with torch.no_grad():
            QLinear.qat = False
            vis = model.encode(p, rows, cols)
            toks = greedy(model, p, rows, cols, task, n_new)
            seq = torch.tensor([[C.TASKS[task]] + toks])
            logits = model.decode(seq, vis)[0]
            if task == "table":
                out[f"constrained{i}"] = np.array(model.greedy_cached(p, rows, cols, C.TASK_TABLE, n_new, C.otsl_allowed), np.int64)
            QLinear.qat = True
            qt = greedy(model, p, rows, cols, task, n_new)
            QLinear.qat = False
        if task == "table" and split is not None:
            out.update(split_outputs(split, img, i))
        out[f"crop{i}"] = img.astype(np.uint8)
        out[f"task{i}"] = np.array([C.TASKS[task]], np.int64)
        if i < full or task == "table":
            out[f"vision{i}"] = vis[0].numpy()
            out[f"logits{i}"] = logits.numpy()
        out[f"tokens{i}"] = np.array(toks, np.int64)
        out[f"qat_tokens{i}"] = np.array(qt, np.int64)
        show = (lambda t: C.parse_table_tokens(t)) if task == "table" else C.decode
        print(f"crop {i} ({task}, {w}x{h}): {show(toks)!r} | qat {show(qt)!r}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--random", help="write a tiny random model and its reference outputs into this folder")
    ap.add_argument("--model")
    ap.add_argument("--crops", help="npz with crop<i> (uint8) and task<i> (str) arrays")
    ap.add_argument("--crops-from", help="take --n held-out crops from the validation shards in this data folder")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--tables", type=int, default=0, help="with --crops-from: this many held-out table crops more")
    ap.add_argument("--out")
    ap.add_argument("--max-new", type=int, default=48)
    a = ap.parse_args()
    torch.manual_seed(0)
    if a.random:
        folder = Path(a.random)
        cfg = Config(vision_dim=64, vision_layers=2, vision_heads=2, vision_mlp=128, window=5, anchors=2, max_rows=6, max_cols=16,
                     text_dim=64, text_layers=3, text_heads=4, text_kv_heads=2, text_mlp=96, xattn_every=2, xattn_mlp=80, max_tokens=64,
                     out_pos=True)
        model = randomize(DocVLM(cfg))
        save_model(model, folder)
        # a table splitter with one pair of axial blocks, reading its input (at most the model's
        # 48 x 128: prepare_table serves both) in tiles of 3 x 8 patches
        split = randomize(TableSplit(dataclasses.replace(cfg, split_axial=1, split_tiled=True, split_shift=3, max_rows=3)))
        add_table_split(split, folder, sizes={"max_height": cfg.max_rows * C.PATCH, "max_width": cfg.max_cols * C.PATCH, "tile_width": 64})
        model, split = load_model(folder), load_split(folder)  # the int8 weights, dequantised: what every policy in C++ reads
        rng = np.random.default_rng(0)
        crops, tasks = [], []
        for h, w, task in [(24, 40, "text"), (24, 128, "text"), (48, 64, "formula"), (24, 8, "text"), (48, 80, "table")]:
            crops.append(np.clip(rng.normal(170, 70, (h, w)), 0, 255).astype(np.uint8))
            tasks.append(task)
        # two synthetic tables, unscaled, for C++ prepare_table (at the tiny model's size limits)
        import tables as T
        from make_data import list_fonts
        extra, trng, fonts = {}, random.Random(7), list_fonts()
        while len(extra) < 6:
            t = T.make_table(trng, fonts, ["Mean value of the estimate", "number of rows and columns"])
            if t is None or t[0].size > 60_000:
                continue
            lh = float(np.float32(t[2]))
            k = len(crops)
            x, sc = C.to_table_input(t[0], lh, cfg.max_rows * C.PATCH, cfg.max_cols * C.PATCH)
            crops.append(x)
            tasks.append("table")
            extra[f"table_raw{k}"], extra[f"table_line_h{k}"] = t[0], np.array([lh], np.float32)
            extra[f"table_truth{k}"] = np.array(C.table_tokens(t[1], sc), np.int64)
        write_safetensors(str(folder / "reference.safetensors"), {**outputs(model, crops, tasks, a.max_new, split=split), **extra})
        return
    model, split = load_model(Path(a.model)), load_split(Path(a.model))
    if a.crops_from:  # validation crops (documents held out of training), 3/4 text, 1/4 formula
        import glob
        rng = np.random.default_rng(1)
        crops, tasks = [], []
        for task, n in (("text", a.n - a.n // 4), ("formula", a.n // 4)):
            z = np.load(sorted(glob.glob(f"{a.crops_from}/{task}-val-*.npz"))[0])
            for i in rng.choice(len(z["widths"]), n, replace=False):
                crops.append(z["images"][i][:, :z["widths"][i]])
                tasks.append(task)
        extra = {}
        tiled = split is not None and split.c.split_tiled
        if a.tables:  # freshly rendered held-out tables (validation seed), with their unscaled crops
            import tables as T
            from make_data import corpus_lines, list_fonts, list_pdfs, split_of
            trng = random.Random(12345)
            corpus = corpus_lines(trng, [p for p in list_pdfs() if split_of(p) == "val"], 20)
            fonts = list_fonts()
            while sum(t == "table" for t in tasks) < a.tables:
                t = T.make_table(trng, fonts, corpus)
                if t is None or t[0].size > 200_000:  # (file size)
                    continue
                lh = float(np.float32(t[2]))  # what C++ reads back
                # a tiled splitter's input is the table at the text-line scale (up to its config's max_height x max_width)
                x, sc = C.to_table_input(t[0], lh, *(split.max_size if tiled else (C.TABLE_MAX_H, C.TABLE_MAX_W)))
                k = len(crops)
                truth = C.table_tokens(t[1], sc)
                if len(truth) + 2 > C.TABLE_MAX_TOKENS:
                    continue
                extra[f"table_truth{k}"] = np.array(truth, np.int64)
                extra[f"table_raw{k}"], extra[f"table_line_h{k}"] = t[0], np.array([lh], np.float32)
                crops.append(x)
                tasks.append("table")
    else:
        z = np.load(a.crops)
        n = len([k for k in z.files if k.startswith("crop")])
        crops, tasks = [z[f"crop{i}"] for i in range(n)], [str(z[f"task{i}"]) for i in range(n)]
    # (a tiled splitter's table inputs exceed the decoder's: tables are the splitter's alone then)
    has_table_task = "table" in json.loads((Path(a.model) / "config.json").read_text())["task_tokens"] and not (split and split.c.split_tiled)
    ref = outputs(model, crops, tasks, a.max_new, full=12, split=split, decode_tables=has_table_task)
    if a.crops_from:
        ref.update(extra)
    write_safetensors(a.out, ref)


if __name__ == "__main__":
    main()

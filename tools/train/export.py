#!/usr/bin/python3
"""Exports a training checkpoint as docvlm's model folder: config.json + model.safetensors.

Every Linear weight is stored int8 per output channel exactly as the QAT forward quantises it
(scale = max|w| / 127 in float32, q = round-half-even(w / scale)): `<name>` I8 [out, in] and
`<name>_scale` F32 [out]. Everything else (biases, norms, embeddings, anchors, gates) is float32.

    tools/train/export.py --run /work/data/run1 --out models/docvlm-small
    tools/train/export.py --table-split /work/data/split1 --out models/docvlm-small   # adds the table splitter

A table splitter (train_table.py's model.TableSplit) goes into an existing model folder: its tensors
as "table.<name>", its sizes as config.json "table_split" (the C++ GatedVlmDims::TableSplit).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402

import table_split as TS  # noqa: E402
from model import Config, DocVLM, QLinear, TableSplit  # noqa: E402
from safetensors_io import read_metadata, read_safetensors, write_safetensors  # noqa: E402


def quantized_names(model: DocVLM) -> set[str]:
    return {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, QLinear)}


def export_state(model: DocVLM) -> dict[str, np.ndarray]:
    qn = quantized_names(model)
    out = {}
    for name, t in model.state_dict().items():
        if name.startswith("ctc."):  # training aid only
            continue
        t = t.detach().float()
        if name in qn:
            s = t.abs().amax(dim=1) / 127.0
            s = torch.where(s > 0, s, torch.ones_like(s))
            q = torch.clamp(torch.round(t / s[:, None]), -127, 127).to(torch.int8)
            out[name] = q.numpy()
            out[name + "_scale"] = s.numpy().astype(np.float32)
        else:
            out[name] = t.numpy().astype(np.float32)
    return out


def save_model(model: DocVLM, out: Path, metadata: dict[str, str] | None = None, extra: dict | None = None):
    """config.json and model.safetensors (with `extra` tensors, e.g. a kept table splitter) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(model.c.to_json(), indent=1) + "\n")
    write_safetensors(str(out / "model.safetensors"), {**export_state(model), **(extra or {})}, metadata)


def split_config(split: TableSplit, sizes: dict | None = None) -> dict:
    """config.json "table_split"; sizes: max_height, max_width, tile_width other than the training
    code's (the tiny test model's)."""
    c = split.c
    tile_w = TS.tile_of(c)[1] * c.patch
    out = {"max_rows": c.max_rows, "line_height": C.TABLE_LINE_H, "max_width": tile_w, "out_pos": c.out_pos, "axial": c.split_axial}
    if c.split_tiled:  # a larger input, read in tiles of the tower's size (table_split.tiled_maps)
        out.update(max_height=C.SPLIT_MAX_H, max_width=C.FULL_MAX_W, tile_width=tile_w)
        out.update(sizes or {})
    if c.split_shift:  # a second reading, shifted (table_split.tiled_maps)
        out["shift"] = c.split_shift
    return out


def add_table_split(split: TableSplit, out: Path, metadata: dict[str, str] | None = None, sizes: dict | None = None):
    """Writes the splitter's tensors ("table." + name) and config into the model folder `out`
    (replacing a splitter already there); the model's own tensors are kept as they are."""
    cfg = json.loads((out / "config.json").read_text())
    for k in ("patch", "vision_dim", "vision_layers", "vision_heads", "vision_mlp", "window", "anchors", "max_cols"):
        if cfg[k] != getattr(split.c, k):
            raise SystemExit(f"{out}: {k} is {cfg[k]}, the table splitter's {getattr(split.c, k)}")
    old = {k: v.numpy() for k, v in read_safetensors(str(out / "model.safetensors")).items() if not k.startswith("table.")}
    new = {"table." + k: v for k, v in export_state(split).items()}
    cfg["table_split"] = split_config(split, sizes)
    (out / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    meta = {**read_metadata(str(out / "model.safetensors")), **(metadata or {})}
    write_safetensors(str(out / "model.safetensors"), {**old, **new}, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a train.py run: the model folder written anew")
    ap.add_argument("--table-split", help="a train_table.py run: its splitter added to the model folder --out")
    ap.add_argument("--out", required=True)
    ap.add_argument("--keep-table-split", action="store_true",
                    help="--run: keep the table splitter of the model folder --out (its table.* tensors and config) in the new folder")
    ap.add_argument("--checkpoint", default="last.pt",
                    help="the run's checkpoint to export (last.pt, or a step-N.pt kept by train.py --keep-evals)")
    ap.add_argument("--split-shift", type=int, default=C.PATCH // 2,
                    help="a tiled splitter reads each table twice, the second time shifted this many pixels right and down, "
                         "and averages its row and column maps (0: once; half a patch: +4.5 points of right shapes on "
                         "200 validation tables, session 19)")
    a = ap.parse_args()
    if bool(a.run) == bool(a.table_split):
        raise SystemExit("give --run or --table-split")
    run = Path(a.run or a.table_split)
    state = torch.load(run / a.checkpoint, map_location="cpu")
    cfg = Config.from_json(json.loads((run / "config.json").read_text()))
    if a.table_split:
        split = TableSplit(cfg)
        split.load_state_dict(state["model"])
        split.c.split_shift = a.split_shift if cfg.split_tiled else 0
        meta = {"table_split_step": str(state["step"])}
        add_table_split(split, Path(a.out), meta)
        print(f"table splitter of step {state['step']} added to {a.out} ({os.path.getsize(Path(a.out) / 'model.safetensors') / 1e6:.1f} MB)")
        return
    model = DocVLM(cfg)
    model.load_state_dict(state["model"])
    model.c.ctc_head = False
    kept_cfg, kept = None, {}
    if a.keep_table_split:
        old_cfg = json.loads((Path(a.out) / "config.json").read_text())
        if "table_split" not in old_cfg:
            raise SystemExit(f"--keep-table-split: {a.out} has no table splitter")
        kept_cfg = old_cfg["table_split"]
        kept = {k: v.numpy() for k, v in read_safetensors(str(Path(a.out) / "model.safetensors")).items() if k.startswith("table.")}
        old_meta = read_metadata(str(Path(a.out) / "model.safetensors"))
    meta = {"step": str(state["step"]), "format": "docvlm_small int8 per channel"}
    if kept_cfg is not None:
        meta.update({k: v for k, v in old_meta.items() if k.startswith("table_split")})
    save_model(model, Path(a.out), meta, kept)
    if kept_cfg is not None:
        cfg_json = json.loads((Path(a.out) / "config.json").read_text())
        cfg_json["table_split"] = kept_cfg
        (Path(a.out) / "config.json").write_text(json.dumps(cfg_json, indent=1) + "\n")
    print(f"step {state['step']}: wrote {a.out} ({os.path.getsize(Path(a.out) / 'model.safetensors') / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()

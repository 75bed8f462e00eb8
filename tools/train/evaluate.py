#!/usr/bin/python3
"""Held-out accuracy of a training checkpoint or an exported model folder on the validation shards
(documents held out of training): CER, exact-match rate and loss per task, float and QAT int8;
for the table task (--tables N, synthetic tables of the validation seed) greedy structure
accuracy: the share of tables whose OTSL structure is exactly right, whose grid shape (rows x
columns) is right, the share of right cells where the shape is right, and the mean coordinate
error of filled cells (in TABLE_Q units) where the structure is right. Table answers are decoded
constrained to well-formed OTSL (common.otsl_allowed), as the C++ parser decodes them, unless
--unconstrained. With --tables, also the teacher-forced confusion of the OTSL kinds (which kind the
model writes for each true kind, the true answer as its prefix).

    tools/train/evaluate.py --data /work/data (--run RUN | --model models/docvlm-small) [--n 256] [--tables 100]
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import Config, DocVLM, QLinear  # noqa: E402
import common as C  # noqa: E402
from train import Shards, TableShards, evaluate  # noqa: E402


@torch.no_grad()
def evaluate_table_structure(model, s: TableShards, n: int, constrained: bool = True) -> dict:
    exact = shape = cells = cells_ok = 0
    coord_err, coord_n = 0.0, 0
    for j in range(min(n, len(s))):
        patches, rows, cols, _, _, _ = s.make([j], model.c.max_tokens)
        p0 = next(model.parameters())
        out = model.greedy_cached(patches.to(p0.device, p0.dtype), rows, cols, C.TASK_TABLE, model.c.max_tokens - 2,
                                   C.otsl_allowed if constrained else None)
        got, want = C.parse_table_tokens(out), C.parse_table_tokens(s.labels[j])
        gk, wk = [[k for k, _ in r] for r in got], [[k for k, _ in r] for r in want]
        exact += gk == wk
        if len(gk) == len(wk) and all(len(a) == len(b) for a, b in zip(gk, wk)):
            shape += 1
            for a, b in zip(gk, wk):
                cells += len(b)
                cells_ok += sum(x == y for x, y in zip(a, b))
        if gk == wk:
            for ra, rb in zip(got, want):
                for (ka, ba), (_, bb) in zip(ra, rb):
                    if ka == C.FCEL and ba is not None and bb is not None:
                        coord_err += sum(abs(x - y) for x, y in zip(ba, bb)) / 4 / C.TABLE_Q
                        coord_n += 1
    m = max(1, min(n, len(s)))
    return {"tables": m, "structure_exact": exact / m, "shape_right": shape / m, "cell_acc_where_shape_right": cells_ok / max(1, cells),
            "coord_mean_abs_err_units": coord_err / max(1, coord_n)}


@torch.no_grad()
def kind_confusion(model, s: TableShards, n: int) -> dict:
    """Teacher-forced (the true answer as the prefix) confusion of the OTSL kinds, NL and EOS on the
    first n tables: {truth: {prediction: count}}, a coordinate prediction counted as "coord"."""
    names = {**C.OTSL, C.EOS: "eos"}
    out: dict = {}
    p0 = next(model.parameters())
    for j in range(min(n, len(s))):
        patches, rows, cols, _, tin, tout = s.make([j], model.c.max_tokens)
        vis = model.encode(patches.to(p0.device, p0.dtype), rows, cols)
        pred = model.decode(tin.to(p0.device), vis)[0].float().argmax(-1).tolist()
        for p, t in zip(pred, tout[0].tolist()):
            if t in names:
                got = names.get(p, "coord" if C._is_coord(p) else str(p))
                row = out.setdefault(names[t], {})
                row[got] = row.get(got, 0) + 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--run")
    ap.add_argument("--model")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device (cuda where a GPU and a CUDA torch exist)")
    ap.add_argument("--qat", action="store_true", help="simulate int8 as in training")
    ap.add_argument("--tables", type=int, default=0, help="greedy structure accuracy on this many validation tables")
    ap.add_argument("--unconstrained", action="store_true",
                    help="tables: plain greedy (default: constrained to well-formed OTSL, as the C++ parser decodes)")
    ap.add_argument("--no-crops", action="store_true", help="skip the text and formula evaluation")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.run:
        cfg = Config.from_json(json.loads((Path(a.run) / "config.json").read_text()))
        model = DocVLM(cfg)
        state = torch.load(Path(a.run) / "last.pt", map_location="cpu")
        model.load_state_dict(state["model"])
        print(f"checkpoint step {state['step']}")
    else:
        from reference import load_model
        model = load_model(Path(a.model))
    model = model.bfloat16().to(a.device)
    QLinear.qat = a.qat
    if not a.no_crops:
        val = {t: Shards(glob.glob(f"{a.data}/{t}-val-*.npz"), t) for t in ("text", "formula")}
        print(json.dumps(evaluate(model, val, n=a.n), indent=1), flush=True)
    if a.tables:
        tables = TableShards(glob.glob(f"{a.data}/table-val-*.npz"))
        print(json.dumps({"table": evaluate_table_structure(model, tables, a.tables, not a.unconstrained)}, indent=1))
        print(json.dumps({"table_kinds_teacher_forced": kind_confusion(model, tables, a.tables)}))


if __name__ == "__main__":
    main()

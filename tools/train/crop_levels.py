#!/usr/bin/python3
"""Held-out check of a crop-level preprocessing step for the recogniser: greedy CER (QAT int8
simulated) on validation text crops as they are and with each crop's own levels stretched (its
2nd and 98th percentiles to black and white: pipeline::stretch_crop_levels), on a clean and a
scanned validation set (make_data.py --scan 0 / --scan 1, same seed). The parser stretches the
crops of pages it had to flatten because this lowered the scanned CER and raised the clean one.

    make_data.py --out VAL/clean --split val --shards 1 --workers 1 --seed 21 --scan 0 --mix 0.7,0.3,0
    make_data.py --out VAL/scan  --split val --shards 1 --workers 1 --seed 21 --scan 1 --mix 0.7,0.3,0
    tools/train/crop_levels.py --model models/docvlm-small --sets VAL/scan,VAL/clean --n 192
"""
from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
from reference import load_qat_model  # noqa: E402
from train import Shards, anchors_valid, greedy_scores, make_batch  # noqa: E402


def stretched(img: np.ndarray, w: int) -> np.ndarray:
    """img uint8 [H, MAX_W] (valid width w): its own 2nd/98th percentiles to 0/255 unless < 20 apart."""
    a = img[:, :w].astype(np.float32)
    lo, hi = np.percentile(a, 2), np.percentile(a, 98)
    if hi - lo < 20:
        return img
    out = img.copy()
    out[:, :w] = np.clip((a - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8)
    return out


@torch.no_grad()
def greedy_cer(model, s: Shards, idx, stretch: bool, batch: int = 32) -> tuple[float, float]:
    edits = chars = exact = 0
    for i in range(0, len(idx), batch):
        b = idx[i:i + batch]
        imgs = np.stack([stretched(s.images[j], int(s.widths[j])) if stretch else s.images[j] for j in b])
        seqs = [[C.TASKS["text"]] + list(s.labels[j]) + [C.EOS] for j in b]
        patches, rows, cols, valid, _, _ = make_batch(imgs, s.widths[b], seqs)
        out = model.greedy(patches.bfloat16(), rows, cols, C.TASKS["text"], 100, anchors_valid(valid, model.c.anchors))
        e, c, x = greedy_scores(out, [s.labels[j] for j in b])
        edits, chars, exact = edits + e, chars + c, exact + x
    return edits / chars, exact / len(idx)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--sets", required=True, help="comma-separated folders of text-val-*.npz shards")
    ap.add_argument("--n", type=int, default=192)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    model = load_qat_model(Path(a.model), a.threads)
    for folder in a.sets.split(","):
        s = Shards(glob.glob(f"{folder}/text-val-*.npz"), "text")
        idx = np.sort(np.random.default_rng(0).choice(len(s), min(a.n, len(s)), replace=False))
        for stretch in (False, True):
            c, e = greedy_cer(model, s, idx, stretch)
            print(f"{folder} {'stretched' if stretch else 'as is'}: CER {c:.4f}, exact {e:.3f}", flush=True)


if __name__ == "__main__":
    main()

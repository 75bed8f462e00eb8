#!/usr/bin/python3
"""Chooses the embedded parser's confidence threshold (EmbeddedParserOptions::min_confidence) on
held-out crops: the mean token log-probability of the model's own greedy reading (the end token
included, as the C++ parser computes it) for

  readable    validation text crops (documents held out of training; clean and scanned), with the
              character error rate of the reading against the label;
  not text    crops a segmenter can cut that hold no readable line, made here from the same
              validation crops: upside down, mirrored, the top or bottom 40 % of a line, and
              drawings (random strokes, hatching, blobs, noise).

The threshold is the highest value that rejects at most --keep-loss of the good readings (CER <=
0.1); the report gives, for a grid of thresholds, the share of good readings, bad readings (CER >
0.5) and non-text crops rejected.

    tools/train/confidence.py --data DATA --model models/docvlm-small [--n 1024] [--out report.json]
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
from model import QLinear  # noqa: E402
from reference import load_model  # noqa: E402
from train import Shards, anchors_valid, cer, make_batch  # noqa: E402


def padded(img: np.ndarray) -> tuple[np.ndarray, int]:
    """A crop (any size) as the model's input row: TEXT_H high, white padded to MAX_W."""
    x = C.to_model_input(img, C.TEXT_H)
    full = np.full((C.TEXT_H, C.MAX_W), 255, np.uint8)
    full[:, :x.shape[1]] = x
    return full, x.shape[1]


def drawing(rng: np.random.Generator) -> np.ndarray:
    """A crop of a figure: strokes, curves, hatching, blobs or noise, 20-60 px high."""
    h, w = int(rng.integers(20, 60)), int(rng.integers(60, 500))
    img = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(img)
    kind = rng.integers(0, 4)
    if kind == 0:  # strokes and curves
        for _ in range(int(rng.integers(2, 12))):
            pts = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(int(rng.integers(2, 6)))]
            d.line(pts, fill=int(rng.integers(0, 90)), width=int(rng.integers(1, 4)))
    elif kind == 1:  # hatching
        step = int(rng.integers(3, 9))
        for x in range(-h, w, step):
            d.line([(x, h), (x + h, 0)], fill=int(rng.integers(0, 90)), width=1)
    elif kind == 2:  # blobs
        for _ in range(int(rng.integers(1, 8))):
            x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, h)
            d.ellipse([x - r, y - r, x + r, y + r], fill=int(rng.integers(0, 150)))
    else:  # noise
        a = rng.normal(200, 60, (h, w))
        return np.clip(a, 0, 255).astype(np.uint8)
    return np.asarray(img)


def not_text(s: Shards, idx: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for k, j in enumerate(idx):
        img = s.images[j, :, :s.widths[j]]
        kind = k % 5
        if kind == 0:
            out.append(img[::-1, ::-1])  # upside down
        elif kind == 1:
            out.append(img[:, ::-1])  # mirrored
        elif kind in (2, 3):  # part of a line: its top or bottom 40 %
            h = img.shape[0]
            part = img[: int(0.4 * h)] if kind == 2 else img[int(0.6 * h):]
            out.append(np.pad(part, ((2, 2), (0, 0)), constant_values=255))
        else:
            out.append(drawing(rng))
    return out


@torch.no_grad()
def read(model, imgs: np.ndarray, widths: np.ndarray, max_new: int = 160):
    """Greedy readings and their mean token log-probability (end token included when reached)."""
    patches, rows, cols, valid, _, _ = make_batch(imgs, widths, [[C.TASKS["text"], C.EOS]] * len(imgs))
    v = anchors_valid(valid, model.c.anchors)
    out = model.greedy(patches, rows, cols, C.TASKS["text"], max_new, v)
    texts, scores = [], []
    seqs = []
    for r in range(len(imgs)):
        ids = out[r].tolist()
        ids = ids[:ids.index(C.EOS) + 1] if C.EOS in ids else ids
        seqs.append(ids)
    # teacher-forced log-probabilities of the model's own output
    n = max(len(s) for s in seqs)
    tin = torch.full((len(imgs), n), C.PAD, dtype=torch.long)
    for r, s in enumerate(seqs):
        tin[r, 0] = C.TASKS["text"]
        tin[r, 1:len(s)] = torch.tensor(s[:-1], dtype=torch.long) if len(s) > 1 else tin[r, 1:1]
    logits = model(patches, rows, cols, tin, v).float()
    logp = F.log_softmax(logits, -1)
    for r, s in enumerate(seqs):
        lp = [float(logp[r, i, t]) for i, t in enumerate(s)]
        scores.append(sum(lp) / len(lp) if lp else float("-inf"))
        texts.append(bytes(t for t in s if t < 256).decode("utf-8", "replace"))
    return texts, scores


def run(model, imgs, widths, batch=32):
    texts, scores = [], []
    order = np.argsort(widths)
    res = [None] * len(imgs)
    for i in range(0, len(order), batch):
        b = order[i:i + batch]
        w = int(widths[b].max())
        t, s = read(model, imgs[b, :, :w], widths[b])
        for k, j in enumerate(b):
            res[j] = (t[k], s[k])
    for t, s in res:
        texts.append(t)
        scores.append(s)
    return texts, scores


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a folder with text-val-*.npz shards")
    ap.add_argument("--model", required=True)
    ap.add_argument("--n", type=int, default=1024, help="validation crops (and as many non-text crops)")
    ap.add_argument("--keep-loss", type=float, default=0.01, help="largest share of good readings the threshold may reject")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load_model(Path(a.model))
    QLinear.qat = True  # int8 weights and activations, as the C++ parser runs the model
    s = Shards(glob.glob(f"{a.data}/text-val-*.npz"), "text")
    if len(s) == 0:
        raise SystemExit(f"no text-val shards in {a.data}")
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(s), min(a.n, len(s)), replace=False))
    texts, scores = run(model, s.images[idx], s.widths[idx])
    rates = [cer(t, s.labels[j].decode("utf-8", "replace")) / max(1, len(s.labels[j].decode("utf-8", "replace")))
             for t, j in zip(texts, idx)]
    neg = [padded(x) for x in not_text(s, idx, rng)]
    neg_texts, neg_scores = run(model, np.stack([x for x, _ in neg]), np.array([w for _, w in neg]))
    good = np.array([sc for sc, r in zip(scores, rates) if r <= 0.1])
    bad = np.array([sc for sc, r in zip(scores, rates) if r > 0.5])
    negs = np.array(neg_scores)
    threshold = float(np.quantile(good, a.keep_loss))
    grid = {}
    for t in sorted({-3.0, -2.0, -1.5, -1.0, -0.8, -0.6, -0.5, -0.4, -0.3, -0.2, round(threshold, 3)}):
        grid[str(t)] = {"good_rejected": float((good < t).mean()), "bad_rejected": float((bad < t).mean()) if len(bad) else None,
                        "not_text_rejected": float((negs < t).mean())}
    report = {"model": a.model, "crops": len(idx), "good (CER <= 0.1)": len(good), "bad (CER > 0.5)": len(bad),
              "mean CER": float(np.mean(rates)), "threshold": threshold, "keep_loss": a.keep_loss, "grid": grid,
              "not_text_examples": [{"score": round(sc, 3), "text": t[:60]} for t, sc in list(zip(neg_texts, neg_scores))[:10]]}
    print(json.dumps(report, indent=1, ensure_ascii=False))
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Chooses the embedded parser's second reading (EmbeddedParserOptions::reread_below and
reread_width) on held-out crops: validation text crops (documents held out of training), read
greedily as the C++ parser reads them (QAT int8 simulated; a trailing loop cut to its first turn, a
reading that reaches text_token_bound without a loop left out) once as they are and once narrowed
(the model input resized to --width of its width, as pipeline::narrowed_input does). For each
threshold of a grid it reports the character error rate when a crop whose first reading's
confidence (mean token log-probability, the end token included unless the reading was cut) is
below the threshold keeps the more confident of its two readings, and how many crops are read twice.

    make_data.py --out VAL/clean --split val --shards 1 --workers 2 --seed 21 --scan 0 --mix 0.7,0.3,0
    make_data.py --out VAL/scan  --split val --shards 1 --workers 2 --seed 21 --scan 1 --mix 0.7,0.3,0
    tools/train/reread.py --model models/docvlm-small --data VAL/scan --stretch --n 1000 --seed 1
    tools/train/reread.py --model models/docvlm-small --data VAL/clean --n 1000 --seed 1

--stretch: the crops' own levels stretched first, as the parser treats crops of scanned pages.
--lexicon FILE: every reading's words corrected by the word list first, as the parser does
(lexicon_eval.correct, margin --margin).
--third W: a third reading at W of the width for the crops read twice whose more confident
reading is still below each threshold of a grid (EmbeddedParserOptions::reread_again_below and
reread_again_width), with the second reading's threshold at -0.05.
"""
from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
from crop_levels import stretched  # noqa: E402
from reference import load_qat_model  # noqa: E402
from train import Shards, anchors_valid, cer, make_batch  # noqa: E402
from lexicon import correct, load_lexicon  # noqa: E402


def narrowed(img: np.ndarray, w: int, factor: float) -> tuple[np.ndarray, int]:
    """A model input row (valid width w) resized to factor · w (bicubic), padded to the patch."""
    nw = max(C.PATCH, int(round(w * factor)))
    out = np.full_like(img, 255)
    out[:, :nw] = np.asarray(Image.fromarray(img[:, :w]).resize((nw, img.shape[0]), Image.BICUBIC))
    return out, (nw + C.PATCH - 1) // C.PATCH * C.PATCH


def loop_period(ids: list[int], times: int = 4) -> int:
    """pipeline::loop_period: the period (1-32) of a loop at the end of ids, or 0."""
    for period in range(1, 33):
        reps = max(times, (16 + period - 1) // period)
        if len(ids) < period * reps:
            continue
        if all(ids[i] == ids[i - period] for i in range(len(ids) - period * (reps - 1), len(ids))):
            return period
    return 0


def judge(ids: list[int], bound: int) -> tuple[list[int], bool, bool]:
    """pipeline::judge_text_reading: (kept tokens, looped, overran)."""
    ids = ids[:bound]
    p = loop_period(ids)
    if p:
        s = len(ids) - p
        while s > 0 and ids[s - 1] == ids[s - 1 + p]:
            s -= 1
        return ids[:s + p], True, False
    return ([], False, True) if len(ids) >= bound else (ids, False, False)


@torch.no_grad()
def readings(model, imgs: np.ndarray, widths: np.ndarray, bounds: np.ndarray, batch: int = 32):
    """(kept tokens, confidence) of each crop, as the parser judges them."""
    out = [None] * len(imgs)
    order = np.argsort(widths)
    for i in range(0, len(order), batch):
        b = order[i:i + batch]
        w = int(widths[b].max())
        patches, rows, cols, valid, _, _ = make_batch(imgs[b, :, :w], widths[b], [[C.TASKS["text"], C.EOS]] * len(b))
        v = anchors_valid(valid, model.c.anchors)
        patches = patches.bfloat16()
        gen = model.greedy(patches, rows, cols, C.TASKS["text"], int(bounds[b].max()), v)
        seqs = []
        for r in range(len(b)):
            ids = gen[r].tolist()
            seqs.append(ids[:ids.index(C.EOS) + 1] if C.EOS in ids else ids)
        # teacher-forced log-probabilities of the model's own reading
        tin = torch.full((len(b), max(len(s) for s in seqs)), C.PAD, dtype=torch.long)
        for r, s in enumerate(seqs):
            tin[r, 0] = C.TASKS["text"]
            if len(s) > 1:
                tin[r, 1:len(s)] = torch.tensor(s[:-1], dtype=torch.long)
        logp = F.log_softmax(model(patches, rows, cols, tin, v).float(), -1)
        for r, j in enumerate(b):
            s = seqs[r]
            body = [t for t in s if t != C.EOS]
            kept, looped, overran = judge(body, int(bounds[j]))
            ended = C.EOS in s and not looped and not overran
            n = min(len(s), len(kept) + (1 if ended else 0))
            conf = float("-inf") if overran or n == 0 else sum(float(logp[r, k, s[k]]) for k in range(n)) / n
            out[j] = (kept, conf, logp[r, :len(kept)].numpy())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="a folder with text-val-*.npz shards")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--width", type=float, default=0.9, help="the second reading's width factor")
    ap.add_argument("--stretch", action="store_true", help="stretch each crop's levels first (scanned pages)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lexicon", default="", help="correct each reading's words by this word list")
    ap.add_argument("--margin", type=float, default=4.0)
    ap.add_argument("--third", type=float, default=0.0, help="width of a third reading (0: none)")
    a = ap.parse_args()
    model = load_qat_model(Path(a.model), a.threads)
    s = Shards(glob.glob(f"{a.data}/text-val-*.npz"), "text")
    idx = np.sort(np.random.default_rng(a.seed).choice(len(s), min(a.n, len(s)), replace=False))
    widths = np.array([int(s.widths[j]) for j in idx])
    first = np.stack([stretched(s.images[j], int(w)) if a.stretch else s.images[j] for j, w in zip(idx, widths)])
    pairs = [narrowed(x, int(w), a.width) for x, w in zip(first, widths)]
    second = np.stack([x for x, _ in pairs])
    bounds = widths * 2 // 7 + 8  # pipeline::text_token_bound of the first reading's width, for both
    labels = [s.labels[j].decode("utf-8", "replace") for j in idx]
    chars = sum(max(1, len(t)) for t in labels)
    trie = load_lexicon(a.lexicon) if a.lexicon else None

    def errors(rs):
        return [cer(C.decode(correct(k, rows, trie, a.margin) if trie else k), t) for (k, _, rows), t in zip(rs, labels)]

    r1 = readings(model, first, widths, bounds)
    r2 = readings(model, second, np.array([w for _, w in pairs]), bounds)
    e1, e2 = errors(r1), errors(r2)
    print(f"{a.data}: {len(idx)} crops; one reading CER {sum(e1) / chars:.4f}, narrowed only {sum(e2) / chars:.4f}")
    for tau in (-0.02, -0.05, -0.1, -0.2, -0.5, float("-inf")):
        again = [r[1] < tau for r in r1]
        e = sum(e2[i] if again[i] and r2[i][1] > r1[i][1] else e1[i] for i in range(len(idx)))
        print(f"  reread below {tau}: {sum(again)} crops read twice, CER {e / chars:.4f}", flush=True)
    if a.third:
        triples = [narrowed(x, int(w), a.third) for x, w in zip(first, widths)]
        r3 = readings(model, np.stack([x for x, _ in triples]), np.array([w for _, w in triples]), bounds)
        e3 = errors(r3)
        for tau in (-0.05, -0.1, -0.2):
            e, n = 0, 0
            for i in range(len(idx)):
                best, err = (r1[i][1], e1[i]) if not (r1[i][1] < -0.05 and r2[i][1] > r1[i][1]) else (r2[i][1], e2[i])
                if r1[i][1] < -0.05 and best < tau:
                    n += 1
                    if r3[i][1] > best:
                        err = e3[i]
                e += err
            print(f"  third reading at {a.third} below {tau}: {n} crops read three times, CER {e / chars:.4f}", flush=True)


if __name__ == "__main__":
    main()

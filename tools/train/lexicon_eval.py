#!/usr/bin/python3
"""Chooses the embedded parser's word correction (EmbeddedParserOptions::lexicon_margin) on held-out
crops: validation text crops (documents held out of training and of the lexicon), read greedily as
the C++ parser reads them (QAT int8 simulated, reread.py's readings). A word of the reading (a run
of 3 or more ASCII letters) that the lexicon lacks becomes the lexicon word reachable by swapping
some of its letters for the model's own alternatives at those steps, when the log-probability given
up (the sum, over the swapped letters, of the greedy letter's minus the alternative's) is at most
the margin; the cheapest such word wins (pipeline/lexicon.hpp). For each margin of a grid it
reports the CER and the share of the reading's words (4+ letters) that its label lacks.

    tools/train/lexicon_eval.py --model models/docvlm-small --lexicon models/docvlm-small/lexicon.txt \
        --data VAL/scan --stretch --n 1000 --seed 1
"""
from __future__ import annotations

import argparse
import glob
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
from crop_levels import stretched  # noqa: E402
from reference import load_qat_model  # noqa: E402
from reread import judge  # noqa: E402
from train import Shards, anchors_valid, cer, make_batch  # noqa: E402

WORD4 = re.compile(r"[^\W\d_]{4,}")


def load_lexicon(path: str) -> dict:
    """A trie of lower-case words: nested dicts, '$' marks a word's end."""
    root: dict = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        node = root
        for ch in line:
            node = node.setdefault(ch, {})
        node["$"] = True
    return root


def in_trie(trie: dict, w: str) -> bool:
    node = trie
    for ch in w:
        node = node.get(ch)
        if node is None:
            return False
    return "$" in node


def case_ok(w: str) -> bool:
    return w.islower() or w.isupper() or (w[0].isupper() and w[1:].islower())


def correct(ids: list[int], logp: np.ndarray, trie: dict, margin: float, topk: int = 8) -> list[int]:
    """ids with each unknown ASCII word replaced by its cheapest lexicon word within margin."""
    out = list(ids)
    n = len(ids)
    i = 0
    is_letter = lambda t: (65 <= t <= 90) or (97 <= t <= 122)  # noqa: E731
    while i < n:
        if not is_letter(ids[i]):
            i += 1
            continue
        j = i
        while j < n and is_letter(ids[j]):
            j += 1
        word = bytes(ids[i:j]).decode()
        if j - i >= 3 and not in_trie(trie, word.lower()):
            # letter alternatives per step within the margin: (byte, cost)
            alts = []
            for k in range(i, j):
                g = ids[k]
                row = logp[k]
                opts = [(g, 0.0)]
                top = [int(t) for t in np.argsort(-row)[:topk + 1] if int(t) != g][:topk]
                for c in top:
                    if is_letter(c) and row[g] - row[c] <= margin:
                        opts.append((c, float(row[g] - row[c])))
                alts.append(opts)
            best = [margin + 1e-9, None]

            def dfs(p, node, cost, chosen):
                if cost > best[0]:
                    return
                if p == len(alts):
                    if "$" in node and cost > 0:
                        w = bytes(chosen).decode()
                        if case_ok(w) or w.lower() == word.lower():
                            if cost < best[0]:
                                best[0], best[1] = cost, list(chosen)
                    return
                for c, cc in alts[p]:
                    nxt = node.get(chr(c).lower())
                    if nxt is not None:
                        chosen.append(c)
                        dfs(p + 1, nxt, cost + cc, chosen)
                        chosen.pop()

            dfs(0, trie, 0.0, [])
            if best[1] is not None:
                out[i:j] = best[1]
        i = j
    return out


@torch.no_grad()
def readings_with_logp(model, imgs, widths, bounds, batch=32):
    """(kept tokens, their log-probability rows [len, vocab]) of each crop."""
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
        tin = torch.full((len(b), max(len(s) for s in seqs)), C.PAD, dtype=torch.long)
        for r, s in enumerate(seqs):
            tin[r, 0] = C.TASKS["text"]
            if len(s) > 1:
                tin[r, 1:len(s)] = torch.tensor(s[:-1], dtype=torch.long)
        logp = F.log_softmax(model(patches, rows, cols, tin, v).float(), -1).numpy()
        for r, j in enumerate(b):
            body = [t for t in seqs[r] if t != C.EOS]
            kept, _, _ = judge(body, int(bounds[j]))
            out[j] = (kept, logp[r, :len(kept)])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--lexicon", required=True)
    ap.add_argument("--data", required=True, help="a folder with text-val-*.npz shards")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stretch", action="store_true", help="stretch each crop's levels first (scanned pages)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--margins", default="0.5,1,1.5,2,3,4,6")
    ap.add_argument("--cache", default="", help="keep the readings in this file (.npz-free pickle) for further runs")
    ap.add_argument("--topk", type=int, default=8, help="alternatives per step (the parser's)")
    ap.add_argument("--show", type=int, default=0, help="print this many corrections at the largest margin")
    a = ap.parse_args()
    model = load_qat_model(Path(a.model), a.threads)
    trie = load_lexicon(a.lexicon)
    s = Shards(glob.glob(f"{a.data}/text-val-*.npz"), "text")
    idx = np.sort(np.random.default_rng(a.seed).choice(len(s), min(a.n, len(s)), replace=False))
    widths = np.array([int(s.widths[j]) for j in idx])
    imgs = np.stack([stretched(s.images[j], int(w)) if a.stretch else s.images[j] for j, w in zip(idx, widths)])
    bounds = widths * 2 // 7 + 8
    labels = [s.labels[j].decode("utf-8", "replace") for j in idx]
    chars = sum(max(1, len(t)) for t in labels)
    if a.cache and Path(a.cache).is_file():
        reads = pickle.loads(Path(a.cache).read_bytes())
    else:
        reads = readings_with_logp(model, imgs, widths, bounds)
        if a.cache:
            Path(a.cache).write_bytes(pickle.dumps(reads))

    def report(name, texts):
        e = sum(cer(t, l) for t, l in zip(texts, labels))
        said = absent = 0
        for t, l in zip(texts, labels):
            have = {w.lower() for w in WORD4.findall(l)}
            ws = [w.lower() for w in WORD4.findall(t)]
            said += len(ws)
            absent += sum(w not in have for w in ws)
        print(f"  {name}: CER {e / chars:.4f}, words the label lacks {absent}/{said} = {absent / max(1, said):.2%}", flush=True)

    base = [C.decode(k) for k, _ in reads]
    print(f"{a.data}: {len(idx)} crops")
    report("greedy", base)
    margins = [float(x) for x in a.margins.split(",")]
    for m in margins:
        texts = [C.decode(correct(k, lp, trie, m, a.topk)) for k, lp in reads]
        report(f"margin {m}", texts)
        if m == margins[-1] and a.show:
            shown = 0
            for t0, t1, l in zip(base, texts, labels):
                if t0 != t1 and shown < a.show:
                    print(f"    {t0!r}\n -> {t1!r}\n    label {l!r}")
                    shown += 1


if __name__ == "__main__":
    main()

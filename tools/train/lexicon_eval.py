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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
from crop_levels import stretched  # noqa: E402
from reference import load_qat_model  # noqa: E402
from lexicon import correct, load_lexicon  # noqa: E402
from reread import readings  # noqa: E402
from train import Shards, cer  # noqa: E402

WORD4 = re.compile(r"[^\W\d_]{4,}")


def report_readings(name: str, texts: list[str], labels: list[str]) -> None:
    """Prints the readings' CER and the share of their words (4+ letters) that the labels lack."""
    chars = sum(max(1, len(t)) for t in labels)
    e = sum(cer(t, lab) for t, lab in zip(texts, labels))
    said = absent = 0
    for t, lab in zip(texts, labels):
        have = {w.lower() for w in WORD4.findall(lab)}
        ws = [w.lower() for w in WORD4.findall(t)]
        said += len(ws)
        absent += sum(w not in have for w in ws)
    print(f"  {name}: CER {e / chars:.4f}, words the label lacks {absent}/{said} = {absent / max(1, said):.2%}", flush=True)


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
    ap.add_argument("--cache", default="", help="keep the readings in this file (a pickle) for further runs")
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
    if a.cache and Path(a.cache).is_file():
        reads = pickle.loads(Path(a.cache).read_bytes())
    else:
        reads = [(k, rows) for k, _, rows in readings(model, imgs, widths, bounds)]
        if a.cache:
            Path(a.cache).write_bytes(pickle.dumps(reads))

    def report(name, texts):
        report_readings(name, texts, labels)

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

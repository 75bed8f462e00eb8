#!/usr/bin/python3
"""Held-out choice of the parser's respelling of unknown words (EmbeddedParserOptions::respell_margin;
pipeline/word_correction.hpp respell_words): a word of the reading that the word list lacks, after
the same-length correction (lexicon.correct), is compared with the listed words one edit away (a
letter dropped, added, changed or two neighbours swapped; its capitals kept), each scored by the
model itself: the log-probability of the whole reading with that word in its place, end token
included (teacher-forced, the same crop). The best one replaces the word when it scores at most
`margin` below the reading as read. Every unknown word is scored against the reading as read, and
the replacements are made together.

Reports, per margin, the CER of validation crops (documents held out of training and of the word
list) and the share of the reading's words (4+ letters) that its label lacks:

    make_data.py --out VAL/scan --split val --shards 1 --workers 2 --seed 21 --scan 1 --mix 0.7,0.3,0
    tools/train/respell.py --model models/docvlm-small --data VAL/scan --stretch --n 1000 --seed 1
    tools/train/respell.py --model models/docvlm-small --data VAL/clean --n 1000 --seed 1

--doubt T1,T2,...: also the rows where only words with a letter read below each log-probability
are respelt (at --doubt-margin), with the number of words scored: a cheaper variant, not taken.
--two N: then the words of N letters or more with no listed word one edit away (or more than 16) are
compared with the listed words two edits away (pipeline::lexicon_two_edit_neighbours), at each of --margins2.
"""
from __future__ import annotations

import argparse
import glob
import pickle
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
from crop_levels import stretched  # noqa: E402
from lexicon import case_ok, correct, in_trie, load_lexicon  # noqa: E402
from lexicon_eval import report_readings  # noqa: E402
from reference import load_qat_model  # noqa: E402
from reread import readings  # noqa: E402
from train import Shards, anchors_valid, make_batch  # noqa: E402

LETTERS = "abcdefghijklmnopqrstuvwxyz"
MAX_CANDIDATES = 16  # a word with more listed neighbours stays as read (word_correction.hpp)
OPS = ("drop", "add", "change", "swap")


def is_letter(t: int) -> bool:
    return 65 <= t <= 90 or 97 <= t <= 122


def words_of(ids: list[int]) -> list[tuple[int, int]]:
    """[start, end) of every run of ASCII letters."""
    out, i = [], 0
    while i < len(ids):
        if not is_letter(ids[i]):
            i += 1
            continue
        j = i
        while j < len(ids) and is_letter(ids[j]):
            j += 1
        out.append((i, j))
        i = j
    return out


def with_capitals(w: str, like: str) -> str:
    if like.isupper():
        return w.upper()
    if like[0].isupper():
        return w[0].upper() + w[1:]
    return w


def one_edit(w: str, ops=OPS) -> set[str]:
    """Every string one edit (of `ops`) from the lower-case w."""
    cands = set()
    for i in range(len(w) + 1):
        if "drop" in ops and i < len(w):
            cands.add(w[:i] + w[i + 1:])
        if "add" in ops:
            cands.update(w[:i] + c + w[i:] for c in LETTERS)
        if "change" in ops and i < len(w):
            cands.update(w[:i] + c + w[i + 1:] for c in LETTERS if c != w[i])
        if "swap" in ops and i + 1 < len(w) and w[i] != w[i + 1]:
            cands.add(w[:i] + w[i + 1] + w[i] + w[i + 2:])
    return cands


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (letters dropped, added, changed or two neighbours swapped,
    none edited twice), limit + 1 when larger: pipeline::edit_distance."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], before[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        before, prev = prev, cur
    return min(prev[-1], limit + 1)


def words_by_length(path: str) -> dict[int, list[str]]:
    out: dict[int, set[str]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            out.setdefault(len(line), set()).add(line)
    return {n: sorted(words) for n, words in out.items()}


def two_edit_neighbours(word: str, by_length: dict, min_len: int) -> list[str]:
    """Listed words exactly two edits from `word` (edit_distance; word of min_len letters or more),
    spelt with its capitals; none when its capitals are not a word's or more than MAX_CANDIDATES
    are listed: pipeline::lexicon_two_edit_neighbours."""
    if len(word) < min_len or not case_ok(word):
        return []
    w = word.lower()
    out = sorted(with_capitals(c, word) for n in range(len(w) - 2, len(w) + 3) for c in by_length.get(n, [])
                 if edit_distance(w, c, 2) == 2)
    return out if len(out) <= MAX_CANDIDATES else []


def neighbours(word: str, trie: dict, ops=OPS) -> list[str]:
    """Listed words one edit from `word` (3-32 letters), spelt with word's capitals; none when its
    capitals are not a word's or more than MAX_CANDIDATES are listed."""
    if not case_ok(word):
        return []
    listed = sorted(with_capitals(c, word) for c in one_edit(word.lower(), ops) if 3 <= len(c) <= 32 and in_trie(trie, c))
    return listed if len(listed) <= MAX_CANDIDATES else []


@torch.no_grad()
def sequence_logprobs(model, img: np.ndarray, width: int, seqs: list[list[int]]) -> list[float]:
    """log P(seq, EOS | crop, text task) of each token sequence, teacher-forced on one crop."""
    full = [[C.TASKS["text"]] + s + [C.EOS] for s in seqs]
    n = len(full)
    imgs = np.repeat(img[None, :, :width], n, axis=0)
    patches, rows, cols, valid, tin, tout = make_batch(imgs, np.full(n, width), full)
    v = anchors_valid(valid, model.c.anchors)
    logp = F.log_softmax(model(patches.bfloat16(), rows, cols, tin, v).float(), -1)
    out = []
    for r, s in enumerate(full):
        t = tout[r, :len(s) - 1]
        out.append(float(logp[r, torch.arange(len(s) - 1), t].sum()))
    return out


def scored_spellings(model, img, width, ids: list[int], trie: dict, candidates, doubt=None):
    """For each unknown word with candidates (`candidates(word)`, a list): (start, end, best
    spelling, score given up, the lowest log-probability of its letters as read, when `doubt` (the
    reading's per-token log-probabilities) is given)."""
    out = []
    for i, j in words_of(ids):
        word = bytes(ids[i:j]).decode()
        if j - i < 3 or j - i > 32 or in_trie(trie, word.lower()):
            continue
        cands = candidates(word)
        if not cands:
            continue
        seqs = [ids] + [ids[:i] + list(c.encode()) + ids[j:] for c in cands]
        lp = sequence_logprobs(model, img, width, seqs)
        b = int(np.argmax(lp[1:]))
        out.append((i, j, cands[b], lp[0] - lp[1 + b], min(doubt[i:j]) if doubt is not None else float("-inf")))
    return out


def respell_gains(model, img, width, ids: list[int], trie: dict, ops=OPS, doubt=None):
    """scored_spellings of the listed words one edit away."""
    return scored_spellings(model, img, width, ids, trie, lambda w: neighbours(w, trie, ops), doubt)


def respell_two_gains(model, img, width, ids: list[int], trie: dict, by_length: dict, min_len: int):
    """scored_spellings of the listed words two edits away, for words with none one edit away."""
    return scored_spellings(model, img, width, ids, trie,
                            lambda w: [] if neighbours(w, trie) else two_edit_neighbours(w, by_length, min_len))


def apply(ids: list[int], gains, margin: float, doubt_below: float = 0.0) -> list[int]:
    """ids with each word whose best spelling gives up at most `margin` replaced, among the words
    with a letter read at a log-probability below `doubt_below` (0: every word)."""
    out = list(ids)
    for i, j, c, cost, least in sorted(gains, reverse=True):  # right to left: earlier positions stay valid
        if cost <= margin and (doubt_below >= 0 or least < doubt_below):
            out[i:j] = list(c.encode())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--lexicon", default="", help="the word list (default: the model folder's lexicon.txt)")
    ap.add_argument("--data", required=True, help="a folder with text-val-*.npz shards")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stretch", action="store_true", help="stretch each crop's levels first (scanned pages)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lexicon-margin", type=float, default=4.0, help="the same-length correction's margin (the parser's)")
    ap.add_argument("--margins", default="0.5,1,2,3,4,6,8")
    ap.add_argument("--ops", default=",".join(OPS), help="edits tried, of " + ",".join(OPS))
    ap.add_argument("--cache", default="", help="keep the readings in this file (a pickle) for further runs")
    ap.add_argument("--show", type=int, default=0, help="print this many respellings at the largest margin")
    ap.add_argument("--doubt", default="", help="log-probabilities: also respell only the words with a letter read below each")
    ap.add_argument("--doubt-margin", type=float, default=6.0, help="the margin of the --doubt rows")
    ap.add_argument("--two", type=int, default=0,
                    help="also respell words of this many letters or more with no listed word one edit away (or more than 16) "
                         "by those two edits away")
    ap.add_argument("--margins2", default="0,1,2,4,6", help="margins of the two-edit rows (one-edit words at --doubt-margin)")
    a = ap.parse_args()
    model = load_qat_model(Path(a.model), a.threads)
    trie = load_lexicon(a.lexicon or f"{a.model}/lexicon.txt")
    ops = tuple(a.ops.split(","))
    s = Shards(glob.glob(f"{a.data}/text-val-*.npz"), "text")
    idx = np.sort(np.random.default_rng(a.seed).choice(len(s), min(a.n, len(s)), replace=False))
    widths = np.array([int(s.widths[j]) for j in idx])
    imgs = np.stack([stretched(s.images[j], int(w)) if a.stretch else s.images[j] for j, w in zip(idx, widths)])
    labels = [s.labels[j].decode("utf-8", "replace") for j in idx]
    if a.cache and Path(a.cache).is_file():
        reads = pickle.loads(Path(a.cache).read_bytes())
    else:
        reads = [(k, rows) for k, _, rows in readings(model, imgs, widths, widths * 2 // 7 + 8)]
        if a.cache:
            Path(a.cache).write_bytes(pickle.dumps(reads))
    first = [correct(k, lp, trie, a.lexicon_margin) for k, lp in reads]
    # each token's log-probability as read (the same-length correction keeps the reading's length)
    doubts = [[float(rows[t, tok]) for t, tok in enumerate(k)] for k, rows in reads]
    gains = [respell_gains(model, imgs[r], int(widths[r]), ids, trie, ops, doubts[r]) for r, ids in enumerate(first)]

    def report(name, texts):
        report_readings(name, texts, labels)

    print(f"{a.data}: {len(idx)} crops, {sum(len(g) for g in gains)} unknown words with listed neighbours ({a.ops})")
    report("greedy", [C.decode(k) for k, _ in reads])
    report(f"same-length correction (margin {a.lexicon_margin})", [C.decode(k) for k in first])
    margins = [float(x) for x in a.margins.split(",")]
    for m in margins:
        texts = [C.decode(apply(ids, g, m)) for ids, g in zip(first, gains)]
        report(f"respelt, margin {m}", texts)
    for d in [float(x) for x in a.doubt.split(",")] if a.doubt else []:
        texts = [C.decode(apply(ids, g, a.doubt_margin, d)) for ids, g in zip(first, gains)]
        scored = sum(1 for g in gains for w in g if w[4] < d)
        report(f"respelt, margin {a.doubt_margin}, only words with a letter below {d} ({scored} words scored)", texts)
    if a.two:
        by_length = words_by_length(a.lexicon or f"{a.model}/lexicon.txt")
        two = [respell_two_gains(model, imgs[r], int(widths[r]), ids, trie, by_length, a.two) for r, ids in enumerate(first)]
        print(f"  two edits, words of {a.two}+ letters with no listed word one edit away: {sum(len(g) for g in two)} words")
        for m in [float(x) for x in a.margins2.split(",")]:
            # both lists hold positions in the reading as read: applied in one pass, right to left
            texts = [C.decode(apply(ids, [w for w in g if w[3] <= a.doubt_margin] + [w for w in t if w[3] <= m], float("inf")))
                     for ids, g, t in zip(first, gains, two)]
            report(f"respelt at {a.doubt_margin}, two edits at margin {m}", texts)
        for ids, t, lab in zip(first, two, labels):
            for i, j, c, cost, _ in t:
                if a.show:
                    print(f"    2: {bytes(ids[i:j]).decode()!r} -> {c!r} (gives up {cost:.2f}); label {lab!r}")
    shown = 0
    for ids, g, lab in zip(first, gains, labels):
        for i, j, c, cost, _ in g:
            if shown < a.show:
                print(f"    {bytes(ids[i:j]).decode()!r} -> {c!r} (gives up {cost:.2f}); label {lab!r}")
                shown += 1


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Builds the embedded parser's word list (models/docvlm-small/lexicon.txt) from the text layers of
the training documents: make_data.list_pdfs() (no evaluation document, nothing in
shared/eval/EXCLUDED.txt) whose make_data.split_of() is "train" — the validation documents, from
which the validation crops and the held-out pages come, are left out, so that measurements there
see the list as a user's unseen page would.

    tools/train/lexicon.py --out models/docvlm-small/lexicon.txt [--min-docs 3] [--pages 40]

A word is a run of 3 or more ASCII letters, lower-cased (the parser corrects ASCII words only, see
pipeline/word_correction.hpp). Kept: words found in at least --min-docs documents (a document's typos,
identifiers and hyphenation fragments rarely recur across documents); left out: "h…i" words whose
inside is a kept word, TeX's ⟨…⟩ read from a text layer without ToUnicode (make_data.tex_angles).
Each document contributes its first --pages pages (`pdftotext -l`), so long manuals do not
outweigh the rest. The file: one word per line, sorted, preceded by a comment line that names the
source.

Also the word correction itself for the Python tools (load_lexicon, correct: the rules of
pipeline/word_correction.hpp), used by lexicon_eval.py and reread.py.
"""
from __future__ import annotations

import argparse
import collections
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_data as D  # noqa: E402

WORD = re.compile(r"[A-Za-z]{3,}")


def doc_words(job: tuple[str, int]) -> set[str]:
    pdf, pages = job
    out = D.run(["pdftotext", "-l", str(pages), pdf, "-"], 120)
    if not out:
        return set()
    text = out.decode("utf-8", "replace")
    text = re.sub(r"([A-Za-z])-\n\s*([a-z])", r"\1\2", text)  # words broken at a line end
    return {w.lower() for w in WORD.findall(text) if len(w) <= 32}


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
    """ids with each unknown ASCII word replaced by its cheapest listed word within margin: the
    rules of pipeline/word_correction.hpp, logp the reading's log-probability rows [len, vocab]."""
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--min-docs", type=int, default=3)
    ap.add_argument("--pages", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    pdfs = [p for p in D.list_pdfs() if D.split_of(p) == "train"]
    counts: collections.Counter[str] = collections.Counter()
    with ProcessPoolExecutor(a.workers) as ex:
        for i, ws in enumerate(ex.map(doc_words, [(p, a.pages) for p in pdfs], chunksize=8)):
            counts.update(ws)
            if i % 200 == 0:
                print(f"{i}/{len(pdfs)} documents, {len(counts)} distinct words", file=sys.stderr, flush=True)
    kept = {w for w, n in counts.items() if n >= a.min_docs}
    kept = sorted(w for w in kept if D.tex_angle_word(w, kept) is None)  # "hnamei" is ⟨name⟩
    Path(a.out).write_text(
        f"# docvlm lexicon: ASCII words in >= {a.min_docs} of {len(pdfs)} training PDFs "
        f"(Debian documentation, tools/train/lexicon.py)\n" + "\n".join(kept) + "\n", encoding="utf-8")
    print(f"{len(kept)} words -> {a.out}")


if __name__ == "__main__":
    main()

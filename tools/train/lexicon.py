#!/usr/bin/python3
"""Builds the embedded parser's word list (models/docvlm-small/lexicon.txt) from the text layers of
the training documents: make_data.list_pdfs() (no evaluation document, nothing in
shared/eval/EXCLUDED.txt) whose make_data.split_of() is "train" — the validation documents, from
which the validation crops and the held-out pages come, are left out, so that measurements there
see the list as a user's unseen page would.

    tools/train/lexicon.py --out models/docvlm-small/lexicon.txt [--min-docs 3] [--pages 40]

A word is a run of 3 or more ASCII letters, lower-cased (the parser corrects ASCII words only, see
pipeline/lexicon.hpp). Kept: words found in at least --min-docs documents (a document's typos,
identifiers and hyphenation fragments rarely recur across documents). Each document contributes its
first --pages pages (`pdftotext -l`), so long manuals do not outweigh the rest. The file: one word
per line, sorted, preceded by a comment line that names the source.
"""
from __future__ import annotations

import argparse
import collections
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

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
    kept = sorted(w for w, n in counts.items() if n >= a.min_docs)
    Path(a.out).write_text(
        f"# docvlm lexicon: ASCII words in >= {a.min_docs} of {len(pdfs)} training PDFs "
        f"(Debian documentation, tools/train/lexicon.py)\n" + "\n".join(kept) + "\n", encoding="utf-8")
    print(f"{len(kept)} words -> {a.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Invented text on a page split: the share of a system's words that the page does not have.

    tools/eval/invented_words.py --split SPLIT_DIR --pred PRED_DIR [--pred PRED_DIR ...]

A word is a run of 4 or more letters (no digits), compared lower-cased after NFKC; LaTeX commands
(\\alpha), HTML tags and image placeholders in a prediction are dropped first, and words broken by a line-end hyphen
in the truth count whole as well as in their parts. CER rewards writing something of the right
length, so a reader that invents fluent words where it cannot read scores almost as well as one
that leaves the place empty; this count tells them apart. Prints, per kind and overall, the
predicted words, how many of them are absent from the page's truth, and that share.
"""
from __future__ import annotations

import argparse
import json
import re
import unicodedata
from pathlib import Path

WORD = re.compile(r"[^\W\d_]{4,}")
LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
HTML_TAG = re.compile(r"<[^>]*>")
MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")  # docvlm's image placeholders
HYPHEN_BREAK = re.compile(r"([^\W\d_]+)-\s*\n\s*([^\W\d_]+)")


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(unicodedata.normalize("NFKC", text))]


def truth_words(text: str) -> set[str]:
    joined = HYPHEN_BREAK.sub(lambda m: m.group(1) + m.group(2), text)
    return set(words(text)) | set(words(joined))


def predicted_text(folder: Path, page_id: str) -> str:
    for ext in (".md", ".txt"):
        f = folder / (page_id + ext)
        if f.is_file():
            text = f.read_text(encoding="utf-8", errors="replace")
            if ext == ".md":
                text = HTML_TAG.sub(" ", LATEX_COMMAND.sub(" ", MARKDOWN_IMAGE.sub(" ", text)))
            return text
    return ""


def score(split: Path, pred: Path) -> dict[str, list[int]]:
    manifest = json.loads((split / "manifest.json").read_text(encoding="utf-8"))
    totals: dict[str, list[int]] = {}
    for page in manifest["pages"]:
        have = truth_words((split / page["truth"]).read_text(encoding="utf-8", errors="replace"))
        said = words(predicted_text(pred, page["id"]))
        absent = sum(1 for w in said if w not in have)
        for key in (page["kind"], "all"):
            t = totals.setdefault(key, [0, 0])
            t[0] += len(said)
            t[1] += absent
    return totals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", required=True, type=Path)
    ap.add_argument("--pred", required=True, type=Path, action="append")
    args = ap.parse_args()
    print(f"{'predictions':40s} {'kind':6s} {'words':>6s} {'absent':>6s} {'share':>6s}")
    for pred in args.pred:
        for kind, (n, absent) in sorted(score(args.split, pred).items()):
            print(f"{str(pred)[-40:]:40s} {kind:6s} {n:6d} {absent:6d} {absent / max(n, 1):6.3f}")


if __name__ == "__main__":
    main()

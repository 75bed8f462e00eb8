#!/usr/bin/python3
"""Builds a page split from the training data's *validation documents* (make_data.split_of: 1 in 25
PDFs, whole documents, never trained on), in the layout of the evaluation splits (manifest.json,
images/, truth/), so that rules and thresholds can be chosen on pages nobody tuned on without
touching the evaluation pages.

    tools/eval/make_heldout_pages.py --out build/heldout [--per-kind 10] [--seed 1]
    tools/eval/real_pages.sh build/heldout/clean      # score_pages.py is linked beside the splits
    tools/eval/real_pages.sh build/heldout/scanned
    tools/eval/make_heldout_pages.py --out build/heldout300 --dpi 300   # the same pages as a 300 dpi scanner gives them

Writes OUT/clean (150 dpi grey PNG, as the evaluation pages are rendered, or --dpi) and OUT/scanned (the same
pages turned by a random angle within ±1.5° and through tools/train/scan.py's print-and-scan
simulation, its JPEG included; stored as PNG). Truth is `pdftotext -layout` of the page, like the evaluation splits'.

Kinds, by rules on the page's own text (no page is looked at by hand):
  math   at least MATH_MIN mathematical characters (Unicode Sm, Greek, math alphanumerics);
  table  at least TABLE_MIN lines of `pdftotext -layout` with two or more gaps of 3+ spaces;
  prose  otherwise, with at least PROSE_MIN characters.
Two-column pages (most long lines split by one wide gap near the middle) are left out: their
`-layout` truth interleaves the columns, which would score reading order instead of reading.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
import make_data as D  # noqa: E402
import scan as S  # noqa: E402

DPI = 150
MATH_MIN = 25
TABLE_MIN = 5
PROSE_MIN = 800
MAX_PAGES_PER_DOC = 60
GAP = re.compile(r"\S( {3,})\S")


def page_text(pdf: str, page: int) -> str:
    out = D.run(["pdftotext", "-layout", "-f", str(page), "-l", str(page), pdf, "-"], 30)
    return out.decode("utf-8", "replace") if out else ""


def two_column(lines: list[str]) -> bool:
    long = [ln.rstrip() for ln in lines if len(ln.strip()) > 50]
    if len(long) < 10:
        return False
    split = 0
    for ln in long:
        w = len(ln)
        if any(0.35 * w < m.start(1) < 0.65 * w and len(m.group(1)) >= 4 for m in GAP.finditer(ln)):
            split += 1
    return split >= 0.5 * len(long)


def kind_of(text: str) -> str | None:
    """The page's kind by the rules in the header, or None when it is left out."""
    if "\ufffd" in text or any(0xE000 <= ord(c) <= 0xF8FF for c in text):
        return None  # glyphs without Unicode: the truth would be wrong
    lines = text.splitlines()
    chars = sum(len(ln.strip()) for ln in lines)
    if chars < PROSE_MIN or two_column(lines):
        return None
    if D.math_chars(text) >= MATH_MIN:
        return "math"
    if sum(1 for ln in lines if len(GAP.findall(ln)) >= 2) >= TABLE_MIN:
        return "table"
    return "prose"


def render(pdf: str, page: int, dpi: int = DPI) -> np.ndarray | None:
    pgm = D.run(["pdftoppm", "-r", str(dpi), "-gray", "-f", str(page), "-l", str(page), "-singlefile", pdf], 60)
    if not pgm:
        return None
    import io
    return np.asarray(Image.open(io.BytesIO(pgm)).convert("L"))


def scanned(gray: np.ndarray, rng: random.Random) -> tuple[np.ndarray, float]:
    """The page turned by a random angle within ±1.5°, then printed and scanned (scan.py)."""
    angle = rng.uniform(-1.5, 1.5)
    turned = Image.fromarray(gray).rotate(angle, resample=Image.BILINEAR, fillcolor=255)
    return S.scan(np.asarray(turned), rng), angle


def candidates(pdfs: list[str]) -> dict[str, list[tuple[str, int]]]:
    found: dict[str, list[tuple[str, int]]] = {"prose": [], "table": [], "math": []}
    for pdf in pdfs:
        per_doc: dict[str, list[int]] = {k: [] for k in found}
        for page in range(1, min(D.page_count(pdf), MAX_PAGES_PER_DOC) + 1):
            kind = kind_of(page_text(pdf, page))
            if kind:
                per_doc[kind].append(page)
        for kind, pages in per_doc.items():
            # at most two pages of a kind per document, picked by a hash (not by looking)
            pages.sort(key=lambda p: hashlib.md5(f"{pdf}:{p}".encode()).hexdigest())
            found[kind] += [(pdf, p) for p in pages[:2]]
    return found


def write_split(out: Path, name: str, pages: list[dict], images: dict[str, np.ndarray], ext: str, dpi: int):
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    for p in pages:
        img = Image.fromarray(images[p["id"]])
        img.save(out / "images" / f"{p['id']}.{ext}")
        (out / "truth" / f"{p['id']}.txt").write_text(p.pop("_truth"), encoding="utf-8")
        p["image"] = f"images/{p['id']}.{ext}"
        p["truth"] = f"truth/{p['id']}.txt"
    kinds = {k: sum(1 for p in pages if p["kind"] == k) for k in ("prose", "table", "math")}
    manifest = {"name": name, "dpi": dpi, "page_count": len(pages), "kinds": kinds,
                "description": "pages of the training data's validation documents (tools/eval/make_heldout_pages.py)",
                "pages": pages}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--per-kind", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dpi", type=int, default=DPI,
                    help="rendering resolution; the scan simulation's blur and noise are in pixels, so at 300 dpi "
                         "they are half as wide relative to the text (a finer scanner)")
    ap.add_argument("--scorer", type=Path, default=D.EVAL_DIR / "score_pages.py",
                    help="score_pages.py, linked beside the splits for real_pages.sh")
    args = ap.parse_args()
    if args.dpi <= 0:
        ap.error(f"--dpi must be positive, not {args.dpi}")

    pdfs = [p for p in D.list_pdfs() if D.split_of(p) == "val"]
    found = candidates(pdfs)
    rng = random.Random(args.seed)
    clean, scans, clean_img, scan_img = [], [], {}, {}
    for kind, pages in found.items():
        pages.sort(key=lambda dp: hashlib.md5(f"{args.seed}:{dp[0]}:{dp[1]}".encode()).hexdigest())
        for pdf, page in pages[:args.per_kind]:
            gray = render(pdf, page, args.dpi)
            if gray is None:
                continue
            pid = f"v{len(clean) + 1:02d}_{Path(pdf).stem[:24]}_p{page:02d}"
            truth = page_text(pdf, page)
            entry = {"id": pid, "kind": kind, "layout": "single", "dpi": args.dpi,
                     "image_size": [gray.shape[1], gray.shape[0]],
                     "source": {"path": pdf, "page": page}, "truth_mode": "pdftotext -layout"}
            clean.append(dict(entry, _truth=truth))
            clean_img[pid] = gray
            img, angle = scanned(gray, rng)
            scans.append(dict(entry, _truth=truth, degradation={"angle": round(angle, 3)}))
            scan_img[pid] = img
        print(f"{kind}: {min(len(pages), args.per_kind)} of {len(pages)} candidate pages", file=sys.stderr)
    write_split(args.out / "clean", "heldout-clean", clean, clean_img, "png", args.dpi)
    write_split(args.out / "scanned", "heldout-scanned", scans, scan_img, "png", args.dpi)  # JPEG inside scan()
    link = args.out / "score_pages.py"
    if args.scorer.is_file() and not link.exists():
        os.symlink(args.scorer.resolve(), link)
    elif not args.scorer.is_file():
        print(f"no scorer at {args.scorer}: put score_pages.py in {args.out} to run real_pages.sh", file=sys.stderr)


if __name__ == "__main__":
    main()

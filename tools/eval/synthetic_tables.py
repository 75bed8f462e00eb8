#!/usr/bin/env python3
"""Table-structure benchmark for `docvlm table` on synthetic tables (never on shared/eval pages).

The tables come from tools/train/tables.py (random grids, spans, rules, alignments, wrapped
paragraph cells, in the Debian fonts, blurred and noised) with cell text from the *validation*
PDFs of make_data.py's split, so the truth — every cell's place, span and text — is exact.

    synthetic_tables.py make  --out DIR [--n 200] [--seed 1]    DIR/NNNN.png + DIR/NNNN.json
    synthetic_tables.py run   --dir DIR [--docvlm BIN] [--model MODEL_DIR] [--command table|parse] [--grid-tables]
                                                                         DIR/pred[-parse]/NNNN.html
    synthetic_tables.py score --dir DIR [--command table|parse] [--json OUT]

Each NNNN.json holds the truth grid ("rows") and the generator's line height ("line_height": the
scale the training code gives such a table; sets made before session 18 lack it).

`--command table` (the default) reads each image as a table crop (`docvlm table`); `--command
parse` parses it as a page (`docvlm parse`: the segmenter has to find the table itself) and
scores the first <table> of its Markdown.

Scores (per table, then means): `shape` — the HTML has the truth's number of rows and columns
(spans expanded); `structure` — and every cell covers the same grid positions (spans equal);
`cell CER` — on tables with the right shape, the character error rate of each truth cell's text
against the predicted cell at its top-left position (spaces left out on both sides); `text CER` — all cell texts in reading order
(rows top to bottom, cells left to right) against the prediction's, whatever its structure, also
without spaces (mean and median over the tables).
`make` needs what tools/train/make_data.py needs for its text and fonts (Debian python3-numpy,
python3-pil, poppler-utils, the fonts and documentation packages listed in tools/train/README.md);
`run` a built `docvlm` (tools/dev demo builds build/bin/docvlm); `score` only the standard library.
"""
from __future__ import annotations

import argparse
import html.parser
import json
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "train"))


def make(out: Path, n: int, seed: int) -> None:
    import make_data
    import tables
    import common as C
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pdfs = [p for p in make_data.list_pdfs() if make_data.split_of(p) == "val"]
    corpus = make_data.corpus_lines(rng, pdfs, 40)
    fonts = make_data.list_fonts()
    kinds = {C.FCEL: "fcel", C.ECEL: "ecel", C.LCEL: "lcel", C.UCEL: "ucel", C.XCEL: "xcel"}
    made = 0
    while made < n:
        texts: dict = {}
        t = tables.make_table(rng, fonts, corpus, texts)
        if t is None:
            continue
        crop, rows, line_h = t
        grid = [[{"kind": kinds[k], "text": texts.get((r, c), "")} for c, (k, _) in enumerate(row)] for r, row in enumerate(rows)]
        Image.fromarray(crop).save(out / f"{made:04d}.png")
        # line_height: the generator's (the scale training gives a table of this crop), for diagnosis
        (out / f"{made:04d}.json").write_text(json.dumps({"rows": grid, "line_height": round(float(line_h), 3)}, ensure_ascii=False))
        made += 1
    print(f"{made} tables in {out} ({len(pdfs)} validation PDFs for the text, {len(fonts)} fonts)")


def pred_dir(d: Path, command: str) -> Path:
    return d / ("pred" if command == "table" else "pred-" + command)


def run(d: Path, docvlm: str, model: str | None, command: str, flags: list[str]) -> None:
    pred = pred_dir(d, command)
    pred.mkdir(exist_ok=True)
    images = sorted(d.glob("*.png"))
    t0 = time.time()
    if command == "parse":  # one process for all pages: DIR/pred-parse/NNNN.md
        cmd = [docvlm, "parse", *map(str, images), "-o", str(pred), "--format", "md", "--force"]
        r = subprocess.run(cmd + (["--model", model] if model else []) + flags)
        if r.returncode != 0:
            print(f"docvlm parse exited {r.returncode}", file=sys.stderr)
        print(f"{len(images)} pages in {time.time() - t0:.1f} s (one model load)", file=sys.stderr)
        return
    for i, img in enumerate(images):
        cmd = [docvlm, command, str(img)] + (["--model", model] if model else []) + flags
        r = subprocess.run(cmd, capture_output=True, text=True)
        (pred / (img.stem + ".html")).write_text(r.stdout if r.returncode == 0 else "")
        if r.returncode != 0:
            print(f"{img.name}: docvlm exited {r.returncode}: {r.stderr.strip()[:200]}", file=sys.stderr)
        print(f"\r{i + 1}/{len(images)}", end="", file=sys.stderr, flush=True)
    print(f"\n{len(images)} tables in {time.time() - t0:.1f} s (model load included per table)", file=sys.stderr)


class TableParser(html.parser.HTMLParser):
    """The first <table>: rows of (text, rowspan, colspan)."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[list]] = []
        self.cell: list | None = None
        self.depth = 0
        self.done = False

    def handle_starttag(self, tag, attrs):
        if self.done:
            return
        a = dict(attrs)
        if tag == "table":
            self.depth += 1
        elif tag == "tr" and self.depth == 1:
            self.rows.append([])
        elif tag in ("td", "th") and self.depth == 1 and self.rows:
            self.cell = ["", int(a.get("rowspan") or 1), int(a.get("colspan") or 1)]
            self.rows[-1].append(self.cell)

    def handle_endtag(self, tag):
        if tag == "table" and not self.done:
            self.depth -= 1
            self.done = self.depth == 0
        elif tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[0] += data


def html_grid(text: str):
    """owner[r][c] = (r0, c0) of the cell covering (r, c), and texts[(r0, c0)]; None if no table."""
    p = TableParser()
    p.feed(text)
    if not p.rows:
        return None
    occ: dict = {}
    texts = {}
    for r, row in enumerate(p.rows):
        c = 0
        for t, rs, cs in row:
            while (r, c) in occ:
                c += 1
            for dr in range(rs):
                for dc in range(cs):
                    occ[(r + dr, c + dc)] = (r, c)
            texts[(r, c)] = " ".join(t.split())
            c += cs
    R = max(r for r, _ in occ) + 1
    Cn = max(c for _, c in occ) + 1
    owner = [[occ.get((r, c)) for c in range(Cn)] for r in range(R)]
    return owner, texts


def truth_grid(rows):
    owner, texts = [], {}
    for r, row in enumerate(rows):
        o = []
        for c, cell in enumerate(row):
            k = cell["kind"]
            if k in ("fcel", "ecel"):
                o.append((r, c))
                texts[(r, c)] = cell["text"]
            elif k == "lcel":
                o.append(o[c - 1])
            else:  # ucel, xcel: the owner of the cell above
                o.append(owner[r - 1][c])
        owner.append(o)
    return owner, texts


def lev(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def reading(owner, texts) -> str:
    seen, out = set(), []
    for row in owner:
        for o in row:
            if o is not None and o not in seen:
                seen.add(o)
                if texts.get(o):
                    out.append(texts[o])
    return " ".join(out)


def score(d: Path, out_json: str | None, command: str) -> None:
    per = []
    for tj in sorted(d.glob("[0-9]*.json")):
        truth = json.loads(tj.read_text())["rows"]
        towner, ttexts = truth_grid(truth)
        pf = pred_dir(d, command) / (tj.stem + (".html" if command == "table" else ".md"))
        g = html_grid(pf.read_text()) if pf.exists() else None
        pred_owner, ptexts = g if g else ([], {})
        shape = bool(g) and len(pred_owner) == len(towner) and len(pred_owner[0]) == len(towner[0])
        norm = lambda o: [[(None if x is None else (x[0], x[1])) for x in row] for row in o]
        structure = shape and norm(pred_owner) == norm(towner)
        cell_err = cell_len = 0
        if shape:
            for o, t in ttexts.items():  # spaces left out: leader dots read as ". . ." are not misread
                t, p = "".join(t.split()), "".join(ptexts.get(o, "").split())
                cell_err += lev(t, p)
                cell_len += len(t)
        tr, pr = reading(towner, ttexts), reading(pred_owner, ptexts) if g else ""
        tr, pr = "".join(tr.split()), "".join(pr.split())
        per.append({"id": tj.stem, "rows": len(towner), "cols": len(towner[0]), "table": bool(g), "shape": shape,
                    "structure": structure, "cell_errors": cell_err, "cell_chars": cell_len,
                    "text_cer": lev(tr, pr) / max(1, len(tr))})
    n = len(per)
    if n == 0:
        sys.exit(f"no NNNN.json tables in {d}")
    shaped = [p for p in per if p["shape"]]
    summary = {
        "tables": n,
        "html_table": sum(p["table"] for p in per) / n,
        "shape": len(shaped) / n,
        "structure": sum(p["structure"] for p in per) / n,
        "cell_cer_on_right_shape": sum(p["cell_errors"] for p in shaped) / max(1, sum(p["cell_chars"] for p in shaped)),
        "text_cer": sum(p["text_cer"] for p in per) / n,
        "text_cer_median": sorted(p["text_cer"] for p in per)[n // 2],
    }
    for k, v in summary.items():
        print(f"{k:24s} {v:.3f}" if isinstance(v, float) else f"{k:24s} {v}")
    if out_json:
        Path(out_json).write_text(json.dumps({"summary": summary, "tables": per}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--out", required=True)
    m.add_argument("--n", type=int, default=200)
    m.add_argument("--seed", type=int, default=1)
    r = sub.add_parser("run")
    r.add_argument("--dir", required=True)
    r.add_argument("--docvlm", default=str(HERE.parent.parent / "build" / "bin" / "docvlm"))
    r.add_argument("--model")
    r.add_argument("--command", choices=("table", "parse"), default="table")
    r.add_argument("--grid-tables", action="store_true", help="docvlm's grid reader instead of the model's table splitter")
    s = sub.add_parser("score")
    s.add_argument("--dir", required=True)
    s.add_argument("--command", choices=("table", "parse"), default="table")
    s.add_argument("--json")
    a = ap.parse_args()
    if a.cmd == "make":
        make(Path(a.out), a.n, a.seed)
    elif a.cmd == "run":
        run(Path(a.dir), a.docvlm, a.model, a.command, ["--grid-tables"] if a.grid_tables else [])
    else:
        score(Path(a.dir), a.json, a.command)


if __name__ == "__main__":
    main()

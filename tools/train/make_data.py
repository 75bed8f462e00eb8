#!/usr/bin/python3
"""Makes training data for docvlm's embedded model (see tools/train/README.md).

Sources, all on this machine, none from shared/eval or shared/eval/EXCLUDED.txt:
  pdf      real born-digital PDFs from Debian documentation packages: pages rendered with pdftoppm
           (gray, 100-300 dpi), lines and words located with `pdftotext -bbox-layout`, cut into
           segments of at most MAX_W pixels after scaling (labels: the PDF's own text layer, NFKC);
  font     synthetic lines rendered with Pillow in the Debian fonts (DejaVu, Liberation, FreeFont,
           Latin Modern, TeX Gyre, URW base35, Noto), with blur, noise, contrast and resolution changes;
  formula  random LaTeX formulas rendered with matplotlib mathtext (cm, stix, dejavu fonts) -> LaTeX;
  table    synthetic tables (tables.py: spans, rules, alignments, paragraph cells) in the same fonts
           -> OTSL with the ink box of every filled cell (--table-only).

Output: OUT/{text,formula}-<split>-<worker>-<n>.npz shards: images uint8 [N, H, MAX_W] (white
padded), widths [N], label bytes concatenated with offsets; OUT/table-<split>-...npz: images
[N, TABLE_MAX_H, TABLE_MAX_W], heights and widths [N], label tokens (int16) with offsets. Deterministic
for a given seed.

    tools/train/make_data.py --out /work/data --shards 8 --workers 2
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import subprocess
import sys
import time
import unicodedata
from collections.abc import Set
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
import scan as S  # noqa: E402

SHARD = 4000
EVAL_DIR = Path(__file__).resolve().parents[3] / "shared" / "eval"
PDF_ROOTS = ["/usr/share/doc", "/usr/share/R/doc"]


# ------------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------------

def excluded() -> tuple[set[str], set[str], set[str]]:
    paths, shas, names = set(), set(), set()
    f = EVAL_DIR / "EXCLUDED.txt"
    for line in f.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        _, path, sha = line.split("\t")
        paths.add(path)
        shas.add(sha)
        names.add(Path(path).stem.lower())
    return paths, shas, names


def list_pdfs() -> list[str]:
    ex_paths, ex_shas, ex_names = excluded()
    found = []
    for root in PDF_ROOTS:
        for dirpath, _, files in os.walk(root, followlinks=True):
            for fn in files:
                if fn.lower().endswith(".pdf"):
                    found.append(os.path.realpath(os.path.join(dirpath, fn)))
    # Conservative: every folder holding an excluded document is left out whole, so that no variant
    # of an evaluation document (other samples of the same class, other builds) is trained on.
    ex_dirs = {os.path.dirname(os.path.realpath(p)) for p in ex_paths} | {os.path.dirname(p) for p in ex_paths}
    keep = []
    for p in sorted(set(found)):
        if os.path.dirname(p) in ex_dirs or Path(p).stem.lower() in ex_names:
            continue
        if os.path.getsize(p) > 60_000_000:
            continue
        with open(p, "rb") as fh:
            if hashlib.sha256(fh.read()).hexdigest() in ex_shas:
                continue
        keep.append(p)
    return keep


def split_of(path: str) -> str:
    """Whole documents go to one split: 1 in 25 is held out for validation."""
    return "val" if int(hashlib.md5(path.encode()).hexdigest(), 16) % 25 == 0 else "train"


def run(cmd: list[str], timeout: int = 60) -> bytes | None:
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return r.stdout if r.returncode == 0 else None


def page_count(pdf: str) -> int:
    out = run(["pdfinfo", pdf], 20)
    if not out:
        return 0
    m = re.search(rb"Pages:\s+(\d+)", out)
    return int(m.group(1)) if m else 0


WORD_RE = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>')
LINE_RE = re.compile(r"<line[^>]*>(.*?)</line>", re.S)


def unescape(s: str) -> str:
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'").replace("&amp;", "&")


def math_chars(text: str) -> int:
    """Mathematical characters in a text: Unicode Sm beyond ASCII, Greek, math alphanumerics."""
    n = 0
    for ch in text:
        o = ord(ch)
        if unicodedata.category(ch) == "Sm" and o > 0x7F or 0x370 <= o <= 0x3FF or 0x1D400 <= o <= 0x1D7FF:
            n += 1
    return n


def math_pages(pdf: str) -> list[tuple[int, int]]:
    """(page, lines with 2 or more mathematical characters) for each page of `pdf` that has 3 or more."""
    out = run(["pdftotext", pdf, "-"], 120)
    if not out:
        return []
    found = []
    for page, text in enumerate(out.decode("utf-8", "replace").split("\f"), start=1):
        n = sum(1 for line in text.splitlines() if math_chars(line) >= 2)
        if n >= 3:
            found.append((page, n))
    return found


# TeX's angle brackets are the cmsy font's code points of "h" and "i": in a PDF whose font carries
# no ToUnicode map, "\foo{⟨name⟩}" reaches the text layer as "\foo{hnamei}".
TEX_ANGLE = re.compile(r"(?<![A-Za-z])h([a-z][a-z-]*[a-z])i(?![A-Za-z])")
LEXICON = Path(__file__).resolve().parents[2] / "models" / "docvlm-small" / "lexicon.txt"


def tex_angle_word(word: str, known: Set[str]) -> str | None:
    """The inside of an "h…i" word whose inside is words of `known` (lower-case words of the
    training documents), else None. A real word of that shape whose inside is a word too ("hindi")
    is taken for brackets as well: the price of a rule without a dictionary of English."""
    m = TEX_ANGLE.fullmatch(word)
    if m and all(part in known for part in m.group(1).split("-")):
        return m.group(1)
    return None


def tex_angles(text: str, known: Set[str]) -> str:
    """`text` with each "h…i" word of known inside written as TeX set it: "⟨name⟩"."""
    def fix(m: re.Match) -> str:
        inside = tex_angle_word(m.group(0), known)
        return f"⟨{inside}⟩" if inside else m.group(0)
    return TEX_ANGLE.sub(fix, text)


@functools.cache
def known_words() -> frozenset[str]:
    """The word list the parser ships (tools/train/lexicon.py: words of the training documents)."""
    lines = LEXICON.read_text(encoding="utf-8").splitlines() if LEXICON.exists() else []
    return frozenset(w for w in lines if w and not w.startswith("#"))


def segment_label(seg) -> str:
    """The words of a line segment as its label. pdftotext cuts a word where the font or the
    baseline changes; such pieces overlap (the LaTeX logo: "L", a raised "A", "TEX") and its plain
    text, which the evaluation's truth is, joins them. So: a space between two words unless the
    second starts inside the first (right of its start, left of its end; words of rotated text
    share one start). Then TeX's angle brackets (tex_angles)."""
    text = seg[0][4]
    for a, b in zip(seg, seg[1:]):
        text += ("" if a[0] < b[0] < a[2] else " ") + b[4]
    return tex_angles(text, known_words())


def bad_label(s: str) -> bool:
    return any(0xE000 <= ord(ch) <= 0xF8FF or ch == "\ufffd" for ch in s) or not s.strip()


def pdf_segments(rng: random.Random, pdf: str, page: int, dpi: int, scan_p: float = 0.0):
    """Yields (crop uint8, label) for the line segments of one page; with probability scan_p the
    page is printed and scanned in simulation, then normalised as the C++ parser does (scan.py)."""
    pgm = run(["pdftoppm", "-r", str(dpi), "-gray", "-f", str(page), "-l", str(page), "-singlefile", pdf], 60)
    xml = run(["pdftotext", "-bbox-layout", "-f", str(page), "-l", str(page), pdf, "-"], 60)
    if not pgm or not xml:
        return
    try:
        gray = np.asarray(Image.open(io.BytesIO(pgm)).convert("L"))
    except Exception:
        return
    if rng.random() < scan_p:
        gray = S.normalise(S.scan(gray, rng))
    k = dpi / 72.0
    for lm in LINE_RE.finditer(xml.decode("utf-8", "replace")):
        words = [(float(a) * k, float(b) * k, float(c) * k, float(d) * k, C.normalize_text(unescape(t)))
                 for a, b, c, d, t in WORD_RE.findall(lm.group(1))]
        words = [w for w in words if w[4]]
        if not words:
            continue
        i = 0
        while i < len(words):
            limit = C.MAX_W if rng.random() < 0.6 else rng.randint(96, C.MAX_W)
            j = i + 1
            while j < len(words):
                box = seg_box(words[i:j + 1])
                if C.scaled_width(box[2] - box[0], box[3] - box[1], C.TEXT_H) >= limit:
                    break
                j += 1
            seg = words[i:j]
            i = j
            label = segment_label(seg)
            if bad_label(label) or len(label.encode()) > 120:
                continue
            box = seg_box(seg)
            tight = C.ink_box(gray, (box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1))
            if tight is None or tight[3] - tight[1] < 4 or tight[3] - tight[1] > 1.6 * (box[3] - box[1]) + 2:
                continue  # no ink, or ink of other lines inside the box (rotated or overlapping text)
            w, h = tight[2] - tight[0], tight[3] - tight[1]
            if w * C.TEXT_H / h > C.MAX_W * 1.15:  # would be squeezed too much
                continue
            yield C.crop_with_margin(gray, tight, rng.randint(0, max(1, int(round(dpi / 75))))), label


def seg_box(ws):
    return (min(w[0] for w in ws), min(w[1] for w in ws), max(w[2] for w in ws), max(w[3] for w in ws))


def list_fonts() -> list[str]:
    out = run(["fc-list", ":", "file"], 30) or b""
    fonts = sorted({l.split(":")[0].strip() for l in out.decode().splitlines()})
    fonts = [f for f in fonts if f.endswith((".ttf", ".otf"))]
    # Noto has hundreds of scripts; keep its Latin/Greek text faces only.
    fonts = [f for f in fonts if "/noto/" not in f or re.search(r"Noto(Sans|Serif|SansMono)-(Regular|Bold|Italic|BoldItalic)\.ttf$", f)]
    fonts = [f for f in fonts if not re.search(r"(math|Math|Symbol|Dingbat|D050000L|Z003|cmex|lmmono.*caps)", f)]
    return fonts


ALPHABET = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            ".,;:!?'\"()[]{}<>-+=*/\\|_@#$%&^~`")


def random_text(rng: random.Random, corpus: list[str]) -> str:
    r = rng.random()
    if corpus and r < 0.6:
        line = rng.choice(corpus)
        words = line.split()
        a = rng.randint(0, max(0, len(words) - 1))
        return " ".join(words[a:a + rng.randint(1, 12)])
    if r < 0.75:  # numbers, as in tables
        parts = []
        for _ in range(rng.randint(1, 8)):
            v = rng.choice([f"{rng.uniform(-1000, 1000):.{rng.randint(0, 4)}f}", str(rng.randint(0, 99999)), f"{rng.randint(1, 99)}%",
                            f"${rng.randint(1, 999)}.{rng.randint(0, 99):02d}", f"{rng.randint(1900, 2030)}"])
            parts.append(v)
        return (" " * rng.randint(1, 3)).join(parts)
    if r < 0.9:  # code-like
        ident = lambda: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(1, 9)))
        forms = [f"{ident()}({ident()}, {rng.randint(0, 99)});", f"\\{ident()}{{{ident()}}}", f"{ident()} <- c({rng.randint(1, 9)}, {rng.randint(1, 9)})",
                 f"{ident()}.{ident()}[{rng.randint(0, 9)}] = {ident()}", f"#include <{ident()}.h>", f"{ident()} = {rng.uniform(0, 9):.3f} * {ident()}"]
        return rng.choice(forms)
    n = rng.randint(1, 30)
    return "".join(rng.choice(ALPHABET + "     ") for _ in range(n)).strip() or "x"


def font_segment(rng: random.Random, fonts: list[str], corpus: list[str], scan_p: float = 0.0):
    text = C.normalize_text(random_text(rng, corpus))
    if not text or len(text.encode()) > 120:
        return None
    font_path = rng.choice(fonts)
    size = rng.randint(14, 44)
    try:
        font = ImageFont.truetype(font_path, size)
        x0, y0, x1, y1 = font.getbbox(text)
    except Exception:
        return None
    if x1 - x0 < 2:
        return None
    # glyph coverage check: a font lacking a glyph draws .notdef boxes; skip those texts
    pad = size
    img = Image.new("L", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), rng.randint(225, 255))
    ImageDraw.Draw(img).text((pad - x0, pad - y0), text, font=font, fill=rng.randint(0, 70))
    if rng.random() < scan_p:
        a = S.normalise(S.scan(np.asarray(img), rng))
    else:
        a = C.degrade(img, rng, 0.3, blur=(0.3, 1.0), shrink=(0.4, 0.8), noise=(2, 12))
    box = C.ink_box(a)
    if box is None:
        return None
    w, h = box[2] - box[0], box[3] - box[1]
    if w * C.TEXT_H / max(1, h) > C.MAX_W:
        return None
    return C.crop_with_margin(a, box, rng.randint(0, 4)), text


GREEK = ["\\alpha", "\\beta", "\\gamma", "\\delta", "\\epsilon", "\\theta", "\\lambda", "\\mu", "\\nu", "\\pi", "\\rho", "\\sigma",
         "\\tau", "\\phi", "\\chi", "\\psi", "\\omega", "\\Gamma", "\\Delta", "\\Theta", "\\Lambda", "\\Sigma", "\\Phi", "\\Psi", "\\Omega"]
OPS = ["+", "-", "=", "<", ">", "\\leq", "\\geq", "\\neq", "\\approx", "\\times", "\\cdot", "\\pm", "\\in", "\\to", "\\equiv", "\\sim"]
FUNCS = ["\\sin", "\\cos", "\\log", "\\exp", "\\ln", "\\tan", "\\max", "\\min"]


def rand_atom(rng, depth):
    r = rng.random()
    if depth > 2 or r < 0.35:
        return rng.choice([rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), rng.choice(GREEK), str(rng.randint(0, 99))])
    if r < 0.5:
        return f"\\frac{{{rand_expr(rng, depth + 1)}}}{{{rand_expr(rng, depth + 1)}}}"
    if r < 0.62:
        return f"{rand_atom(rng, depth + 1)}^{{{rand_expr(rng, depth + 2)}}}"
    if r < 0.72:
        return f"{rand_atom(rng, depth + 1)}_{{{rand_expr(rng, depth + 2)}}}"
    if r < 0.78:
        return f"\\sqrt{{{rand_expr(rng, depth + 1)}}}"
    if r < 0.86:
        return f"{rng.choice(FUNCS)}({rand_expr(rng, depth + 1)})"
    if r < 0.93:
        big = rng.choice(["\\sum", "\\prod", "\\int"])
        v = rng.choice("ijkn")
        top = rng.choice(["n", "N", "\\infty"])
        return f"{big}_{{{v}=1}}^{{{top}}} {rand_expr(rng, depth + 1)}"
    return f"\\left({rand_expr(rng, depth + 1)}\\right)"


def rand_expr(rng, depth=0):
    n = rng.randint(1, 3 if depth else 4)
    parts = [rand_atom(rng, depth)]
    for _ in range(n - 1):
        parts += [rng.choice(OPS), rand_atom(rng, depth)]
    return " ".join(parts)


def formula_segment(rng: random.Random, scan_p: float = 0.0):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties
    latex = rand_expr(rng)
    if len(latex.encode()) > 160:
        return None
    matplotlib.rcParams["mathtext.fontset"] = rng.choice(["cm", "cm", "stix", "dejavuserif", "stixsans"])
    buf = io.BytesIO()
    try:
        mathtext.math_to_image(f"${latex}$", buf, prop=FontProperties(size=rng.randint(10, 16)), dpi=rng.choice([100, 150, 150, 200, 300]),
                               format="png")
    except Exception:
        return None
    img = Image.open(buf).convert("L")
    a = np.asarray(img)
    if rng.random() < scan_p:  # with white around the formula, as on a page
        a = S.normalise(S.scan(np.pad(a, 12, constant_values=255), rng))
    box = C.ink_box(a)
    if box is None:
        return None
    w, h = box[2] - box[0], box[3] - box[1]
    if w * C.FORMULA_H / max(1, h) > C.MAX_W * 1.1:
        return None
    return C.crop_with_margin(a, box, rng.randint(0, 4)), latex


# ------------------------------------------------------------------------------------------------
# Shards
# ------------------------------------------------------------------------------------------------

class ShardWriter:
    def __init__(self, out: Path, prefix: str, height: int):
        self.out, self.prefix, self.height = out, prefix, height
        self.images, self.widths, self.labels = [], [], []

    def add(self, crop: np.ndarray, label: str):
        x = C.to_model_input(crop, self.height)
        full = np.full((self.height, C.MAX_W), 255, np.uint8)
        full[:, :x.shape[1]] = x
        self.images.append(full)
        self.widths.append(x.shape[1])
        self.labels.append(label.encode("utf-8"))

    def __len__(self):
        return len(self.images)

    def save(self, index: int):
        lab = np.frombuffer(b"".join(self.labels), np.uint8)
        off = np.cumsum([0] + [len(l) for l in self.labels]).astype(np.int64)
        tmp = self.out / f".{self.prefix}-{index:04d}.npz"
        with open(tmp, "wb") as fh:
            np.savez(fh, images=np.stack(self.images), widths=np.array(self.widths, np.int32), labels=lab, offsets=off)
        os.replace(tmp, self.out / f"{self.prefix}-{index:04d}.npz")
        self.images, self.widths, self.labels = [], [], []


def corpus_lines(rng: random.Random, pdfs: list[str], n: int, kit_file: str = "") -> list[str]:
    """Lines of text from the first pages of n of the PDFs, or all lines of a kit's corpus file."""
    if kit_file:  # no PDFs on that machine
        return Path(kit_file).read_text(encoding="utf-8").splitlines()
    lines = []
    for pdf in rng.sample(pdfs, min(n, len(pdfs))):
        txt = run(["pdftotext", "-l", "3", pdf, "-"], 30)
        if txt:
            lines += [C.normalize_text(l) for l in txt.decode("utf-8", "replace").splitlines() if len(l.split()) >= 2]
    return [l for l in lines if not bad_label(l)]


def formula_worker(args):
    """--formula-only: `shards` formula shards per worker and nothing else."""
    out, split, wid, shards, seed, scan_p = args[:6]
    rng = random.Random(seed * 1000 + wid)
    fill_shards(ShardWriter(out, f"formula-{split}-s{seed}w{wid}", C.FORMULA_H), lambda: formula_segment(rng, scan_p), shards, SHARD,
                f"[{split} {wid}] formula")


def fill_shards(writer, make_one, shards: int, size: int, what: str):
    """Adds make_one()'s samples (None: none) to writer, saving a shard every `size` samples."""
    done, t0 = 0, time.time()
    while done < shards:
        s = make_one()
        if s is not None:
            writer.add(*s)
        if len(writer) >= size:
            writer.save(done)
            done += 1
            print(f"{what} shard {done}/{shards} ({time.time() - t0:.0f} s)", flush=True)


class TableShardWriter:
    def __init__(self, out: Path, prefix: str):
        self.out, self.prefix = out, prefix
        self.images, self.sizes, self.tokens = [], [], []

    def add(self, crop: np.ndarray, rows, line_h: float) -> bool:
        x, s = C.to_table_input(crop, line_h)
        toks = C.table_tokens(rows, s)
        if len(toks) + 2 > C.TABLE_MAX_TOKENS:
            return False
        full = np.full((C.TABLE_MAX_H, C.TABLE_MAX_W), 255, np.uint8)
        full[:x.shape[0], :x.shape[1]] = x
        self.images.append(full)
        self.sizes.append(x.shape)
        self.tokens.append(np.array(toks, np.int16))
        return True

    def __len__(self):
        return len(self.images)

    def save(self, index: int):
        off = np.cumsum([0] + [len(t) for t in self.tokens]).astype(np.int64)
        tmp = self.out / f".{self.prefix}-{index:04d}.npz"
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, images=np.stack(self.images), heights=np.array([h for h, _ in self.sizes], np.int32),
                                widths=np.array([w for _, w in self.sizes], np.int32), tokens=np.concatenate(self.tokens), offsets=off)
        os.replace(tmp, self.out / f"{self.prefix}-{index:04d}.npz")
        self.images, self.sizes, self.tokens = [], [], []


class FullTableShardWriter:
    """--table-only --full-scale: table inputs scaled to the text-line height alone (up to
    FULL_MAX_H x FULL_MAX_W), for the table splitter's training on windows (train_table.py --full):
    the images one after another, and each table's grid as JSON — column and row extents in input
    pixels (ends exclusive) and the OTSL kinds of every row."""

    def __init__(self, out: Path, prefix: str):
        self.out, self.prefix = out, prefix
        self.images, self.labels = [], []

    def add(self, crop: np.ndarray, rows, line_h: float) -> bool:
        x, s = C.to_table_input(crop, line_h, C.FULL_MAX_H, C.FULL_MAX_W)
        cols, rws = C.grid_extents(rows)
        ext = lambda e: [[max(0, int(np.floor(lo * s))), int(np.ceil(hi * s))] for lo, hi in e]
        self.images.append(x)
        self.labels.append(json.dumps({"cols": ext(cols), "rows": ext(rws), "kinds": [[int(k) for k, _ in row] for row in rows]}))
        return True

    def __len__(self):
        return len(self.images)

    def save(self, index: int):
        off = np.cumsum([0] + [x.size for x in self.images]).astype(np.int64)
        tmp = self.out / f".{self.prefix}-{index:04d}.npz"
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, pixels=np.concatenate([x.reshape(-1) for x in self.images]), offsets=off,
                                heights=np.array([x.shape[0] for x in self.images], np.int32),
                                widths=np.array([x.shape[1] for x in self.images], np.int32), labels=np.array(self.labels))
        os.replace(tmp, self.out / f"{self.prefix}-{index:04d}.npz")
        self.images, self.labels = [], []


def table_worker(args):
    """--table-only: `shards` table shards (of --shard-size) per worker."""
    import tables
    out, split, wid, shards, seed, pdfs, fonts, size, corpus_file, full = args
    rng = random.Random(seed * 1000 + wid * 7 + 3 + (split == "val"))
    corpus = corpus_lines(rng, [p for p, _ in pdfs], 40, corpus_file)
    writer = FullTableShardWriter(out, f"tablefull-{split}-s{seed}w{wid}") if full else TableShardWriter(out, f"table-{split}-s{seed}w{wid}")
    fill_shards(writer, lambda: tables.make_table(rng, fonts, corpus), shards, size, f"[{split} {wid}] table")


def worker(args):
    out, split, wid, shards, seed, pdfs, fonts, mix, corpus_file = args
    rng = random.Random(seed * 1000 + wid * 7 + (split == "val"))
    np.random.seed(seed + wid)
    corpus = corpus_lines(rng, [p for p, _ in pdfs], 40, corpus_file)
    text = ShardWriter(out, f"text-{split}-s{seed}w{wid}", C.TEXT_H)
    formula = ShardWriter(out, f"formula-{split}-s{seed}w{wid}", C.FORMULA_H)
    done_text = done_formula = 0
    n_formula_shards = max(1, int(round(shards * mix["formula"] / (mix["pdf"] + mix["font"]))))
    t0 = time.time()
    while done_text < shards:
        r = rng.random() * (mix["pdf"] + mix["font"] + mix["formula"])
        if r < mix["pdf"]:
            if mix.get("math_lines"):  # a page with mathematics, and only its lines with some (--math-lines)
                pdf, page, _ = rng.choices(mix["math_lines"], weights=[n for _, _, n in mix["math_lines"]])[0]
            else:
                pdf, n = rng.choices(pdfs, weights=[min(n, 200) for _, n in pdfs])[0]
                page = rng.randint(1, n)
            dpi = 150 if rng.random() < 0.4 else rng.randint(100, 300)
            segs = list(pdf_segments(rng, pdf, page, dpi, mix.get("scan", 0.0)))
            if mix.get("math_lines"):
                segs = [(crop, label) for crop, label in segs if math_chars(label) >= 2]
            for crop, label in segs[: rng.randint(20, 80)]:
                text.add(crop, label)
        elif r < mix["pdf"] + mix["font"]:
            for _ in range(20):
                s = font_segment(rng, fonts, corpus, mix.get("scan", 0.0))
                if s:
                    text.add(*s)
        elif done_formula < n_formula_shards:
            for _ in range(10):
                s = formula_segment(rng, mix.get("scan", 0.0))
                if s:
                    formula.add(*s)
        if len(text) >= SHARD:
            text.save(done_text)
            done_text += 1
            print(f"[{split} {wid}] text shard {done_text}/{shards} ({time.time() - t0:.0f} s)", flush=True)
        if len(formula) >= SHARD:
            formula.save(done_formula)
            done_formula += 1
            print(f"[{split} {wid}] formula shard {done_formula} ({time.time() - t0:.0f} s)", flush=True)
    if len(formula) > 0 and done_formula < n_formula_shards:
        formula.save(done_formula)


def make_kit(kit: Path, n_fonts: int, n_pdfs: int, seed: int):
    """A folder from which --kit makes font, formula and table data on a machine without the
    Debian fonts, poppler and documentation PDFs: n_fonts font files (an even spread over the
    sorted list) and, per split, the corpus lines of n_pdfs of that split's PDFs."""
    (kit / "fonts").mkdir(parents=True, exist_ok=True)
    fonts = list_fonts()
    step = max(1, len(fonts) // n_fonts)
    for f in fonts[::step][:n_fonts]:
        shutil.copy(f, kit / "fonts" / Path(f).name)
    rng = random.Random(seed)
    for split in ("train", "val"):
        pdfs = [p for p in list_pdfs() if split_of(p) == split]
        lines = corpus_lines(rng, pdfs, n_pdfs)
        (kit / f"corpus-{split}.txt").write_text("\n".join(lines), encoding="utf-8")
        print(f"{split}: {len(lines)} corpus lines from {min(n_pdfs, len(pdfs))} PDFs", flush=True)
    size = sum(f.stat().st_size for f in kit.rglob("*") if f.is_file())
    print(f"kit {kit}: {len(list((kit / 'fonts').iterdir()))} fonts, {size / 1e6:.1f} MB", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--shards", type=int, default=8, help="text shards per worker (4000 crops each)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--split", choices=["train", "val"], default="train")
    ap.add_argument("--mix", default="0.62,0.28,0.10", help="shares of pdf, font and formula crops")
    ap.add_argument("--scan", type=float, default=0.0,
                    help="share of pages and crops printed and scanned in simulation, then normalised (scan.py)")
    ap.add_argument("--math-lines", action="store_true",
                    help="keep only the PDF lines with 2 or more mathematical characters (inline maths, equations)")
    ap.add_argument("--list", action="store_true", help="print the PDFs used and exit")
    ap.add_argument("--formula-only", action="store_true", help="make --shards formula shards per worker, nothing else")
    ap.add_argument("--table-only", action="store_true", help="make --shards table shards per worker, nothing else")
    ap.add_argument("--shard-size", type=int, default=SHARD, help="crops per table shard")
    ap.add_argument("--full-scale", action="store_true",
                    help="with --table-only: tables at the text-line scale (FullTableShardWriter), for train_table.py --full")
    ap.add_argument("--kit", default="",
                    help="read fonts and corpus lines from a kit folder (--make-kit) instead of fc-list and the PDFs: "
                         "for a machine without the Debian packages (the GPU machine); the pdf share of --mix must be 0")
    ap.add_argument("--make-kit", default="",
                    help="write a kit to this folder: up to --kit-fonts font files and the corpus lines of --kit-pdfs PDFs per split")
    ap.add_argument("--kit-fonts", type=int, default=60)
    ap.add_argument("--kit-pdfs", type=int, default=120)
    a = ap.parse_args()
    if a.make_kit:
        make_kit(Path(a.make_kit), a.kit_fonts, a.kit_pdfs, a.seed)
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.formula_only:
        with mp.Pool(a.workers) as pool:
            pool.map(formula_worker, [(out, a.split, w, a.shards, a.seed, a.scan) for w in range(a.workers)])
        return
    corpus_file = ""  # a kit's corpus lines for this split, instead of pdftotext on the PDFs
    if a.kit:
        kit = Path(a.kit)
        if float(a.mix.split(",")[0]) > 0 and not a.table_only:
            sys.exit("--kit: a kit holds no PDFs, so the pdf share of --mix must be 0")
        corpus_file = str(kit / f"corpus-{a.split}.txt")
        pdfs, fonts = [], sorted(str(f) for f in (kit / "fonts").iterdir())
        print(f"kit {kit}: {len(fonts)} fonts", flush=True)
    else:
        pdfs = [p for p in list_pdfs() if split_of(p) == a.split]
        if a.list:
            print("\n".join(pdfs))
            return
        counts = out / f"pdf-pages-{a.split}.json"
        if counts.exists():
            pages = json.loads(counts.read_text())
        else:
            with mp.Pool(a.workers) as pool:
                pages = dict(zip(pdfs, pool.map(page_count, pdfs)))
            counts.write_text(json.dumps(pages, indent=0))
        pdfs = [(p, pages[p]) for p in pdfs if pages.get(p, 0) >= 2]
        fonts = list_fonts()
        print(f"{len(pdfs)} PDFs ({a.split}), {len(fonts)} fonts", flush=True)
    if a.table_only:
        with mp.Pool(a.workers) as pool:
            pool.map(table_worker, [(out, a.split, w, a.shards, a.seed, pdfs, fonts, a.shard_size, corpus_file, a.full_scale)
                                      for w in range(a.workers)])
        return
    pdf, font, formula = (float(v) for v in a.mix.split(","))
    mix = {"pdf": pdf, "font": font, "formula": formula, "scan": a.scan}
    if a.math_lines:
        index = out / f"math-pages-{a.split}.json"
        if not index.exists():
            with mp.Pool(a.workers) as pool:
                found = pool.map(math_pages, [p for p, _ in pdfs])
            index.write_text(json.dumps([[p, page, n] for (p, _), f in zip(pdfs, found) for page, n in f]))
        mix["math_lines"] = [tuple(e) for e in json.loads(index.read_text())]
        print(f"{len(mix['math_lines'])} pages with mathematics", flush=True)
    jobs = [(out, a.split, w, a.shards, a.seed, pdfs, fonts, mix, corpus_file) for w in range(a.workers)]
    with mp.Pool(a.workers) as pool:
        pool.map(worker, jobs)


if __name__ == "__main__":
    main()

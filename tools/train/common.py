"""Shared definitions of docvlm's embedded model: vocabulary, crop preprocessing, patch order.

The C++ side (include/docvlm/presets/docvlm_small.hpp, pipeline/) implements the same steps; keep
the two in step. Everything here is plain numpy + Pillow so that data making needs no torch.

Crop preprocessing (a text line, a line segment or a formula):
  1. gray 8-bit crop, tightened to its ink (pixels < INK) plus a margin;
  2. resized with Pillow BICUBIC to height H (24 for text, 48 for formulas), width
     round(w * H / h) clamped to [PATCH, MAX_W];
  3. padded on the right with white to a multiple of PATCH;
  4. pixels scaled to [-1, 1] (p / 127.5 - 1);
  5. cut into PATCH x PATCH patches, ordered column by column (x major, then y), so that a window
     of neighbouring tokens is a neighbourhood along the line.
"""
from __future__ import annotations

import unicodedata

import numpy as np
from PIL import Image, ImageFilter

PATCH = 8
MAX_W = 512
TEXT_H = 24
FORMULA_H = 48
INK = 160  # a pixel darker than this is ink

# Vocabulary: the 256 byte values, then special tokens, then the table task's structure tokens
# (OTSL: a filled cell, an empty cell, a cell merged with the one on its left / above / both, end
# of row) and TABLE_COORDS coordinate tokens; padded to a multiple of 8.
PAD, BOS, EOS, TASK_TEXT, TASK_FORMULA, TASK_TABLE = 256, 257, 258, 259, 260, 261
FCEL, ECEL, LCEL, UCEL, XCEL, NL = 262, 263, 264, 265, 266, 267
OTSL = {FCEL: "fcel", ECEL: "ecel", LCEL: "lcel", UCEL: "ucel", XCEL: "xcel", NL: "nl"}
COORD0 = 268
TABLE_COORDS = 128
VOCAB = 400
TASKS = {"text": TASK_TEXT, "formula": TASK_FORMULA, "table": TASK_TABLE}
# Input height per task; for tables the largest height (a table crop keeps its aspect ratio).
TABLE_MAX_H = 192
TABLE_MAX_W = 384
# the splitter's full-scale tables (make_data.py --table-only --full-scale): scaled to the text-line
# height alone up to this size, read in windows of the splitter's input size (table_split.tiled_maps)
FULL_MAX_H = 384
FULL_MAX_W = 1536
# ... while at inference a tiled splitter reads any table up to this tall at the line scale (tiles
# of its tower's size make any height alike; export.py writes it as table_split.max_height)
SPLIT_MAX_H = 1536
TASK_HEIGHT = {"text": TEXT_H, "formula": FORMULA_H, "table": TABLE_MAX_H}
MAX_ROWS = TABLE_MAX_H // PATCH

# Table task: the crop is scaled so that its text lines are TABLE_LINE_H pixels high (the median
# ink height of its lines), then down to fit TABLE_MAX_H x TABLE_MAX_W, and padded with white on the
# right and bottom to multiples of PATCH. The model writes the table as a grid (coordinates in units
# of TABLE_Q pixels of that input, as tokens COORD0 + v, ends inclusive):
#   x0 x1 per column (the ink extent of the column's text), NL,
#   then per row: y0 y1 (the ink extent of the row's text) and one OTSL token per column, NL.
# A filled cell's box is its first column's x0 to its last column's x1 by its first row's y0 to its
# last row's y1 (spans: the LCEL / UCEL / XCEL cells that extend it). Naming every row's extent
# first ties each row to the image, and a cell costs one token.
TABLE_LINE_H = 8
TABLE_Q = 4
TABLE_MAX_TOKENS = 256
MAX_TABLE_COLS = 24


def normalize_text(s: str) -> str:
    """Labels are NFKC (ligatures fold to letters), single spaces, no control characters."""
    s = unicodedata.normalize("NFKC", s)
    s = "".join(ch for ch in s if ch == " " or unicodedata.category(ch)[0] != "C")
    return " ".join(s.split())


def encode(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def decode(ids) -> str:
    return bytes(int(i) for i in ids if int(i) < 256).decode("utf-8", errors="replace")


def ink_box(gray: np.ndarray, box=None, ink: int = INK):
    """Tight (x0, y0, x1, y1) of the ink inside box (default: the whole image), or None."""
    x0, y0, x1, y1 = box if box is not None else (0, 0, gray.shape[1], gray.shape[0])
    x0, y0 = max(0, int(x0)), max(0, int(y0))
    x1, y1 = min(gray.shape[1], int(x1)), min(gray.shape[0], int(y1))
    if x1 <= x0 or y1 <= y0:
        return None
    dark = gray[y0:y1, x0:x1] < ink
    rows = np.flatnonzero(dark.any(axis=1))
    cols = np.flatnonzero(dark.any(axis=0))
    if rows.size == 0:
        return None
    return (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)


def crop_with_margin(gray: np.ndarray, box, margin: int) -> np.ndarray:
    """Crop box grown by margin pixels on every side; outside the image is white."""
    x0, y0, x1, y1 = box
    x0, y0, x1, y1 = x0 - margin, y0 - margin, x1 + margin, y1 + margin
    out = np.full((y1 - y0, x1 - x0), 255, np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(gray.shape[1], x1), min(gray.shape[0], y1)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = gray[sy0:sy1, sx0:sx1]
    return out


def scaled_width(w: int, h: int, height: int) -> int:
    return int(min(MAX_W, max(PATCH, round(w * height / max(1, h)))))


def to_model_input(crop: np.ndarray, height: int) -> np.ndarray:
    """uint8 [height, W] with W a multiple of PATCH (white padding on the right)."""
    h, w = crop.shape
    new_w = scaled_width(w, h, height)
    img = Image.fromarray(crop, mode="L").resize((new_w, height), Image.BICUBIC)
    padded_w = (new_w + PATCH - 1) // PATCH * PATCH
    out = np.full((height, padded_w), 255, np.uint8)
    out[:, :new_w] = np.asarray(img)
    return out


def table_scale(w: int, h: int, line_h: float, max_h: int = TABLE_MAX_H, max_w: int = TABLE_MAX_W) -> float:
    """Factor from a table crop of w x h pixels whose text lines are line_h high to the table input."""
    s = TABLE_LINE_H / max(1.0, float(line_h))
    return min(s, max_h / max(1, h), max_w / max(1, w))


def to_table_input(crop: np.ndarray, line_h: float, max_h: int = TABLE_MAX_H, max_w: int = TABLE_MAX_W) -> tuple[np.ndarray, float]:
    """uint8 [H, W] (multiples of PATCH, white padding right and bottom) and the scale used
    (max_h, max_w: a smaller model's limits, as its config.json states them)."""
    h, w = crop.shape
    s = table_scale(w, h, line_h, max_h, max_w)
    nw, nh = min(max_w, max(1, round(w * s))), min(max_h, max(1, round(h * s)))
    img = Image.fromarray(crop, mode="L").resize((nw, nh), Image.BICUBIC)
    out = np.full(((nh + PATCH - 1) // PATCH * PATCH, (nw + PATCH - 1) // PATCH * PATCH), 255, np.uint8)
    out[:nh, :nw] = np.asarray(img)
    return out, s


def cell_extents(rows: list[list[tuple]]) -> dict:
    """{(r, c): (r1, c1)}: the last row and column each filled cell of an OTSL grid covers."""
    out = {}
    for r, row in enumerate(rows):
        for c, (kind, _) in enumerate(row):
            if kind != FCEL:
                continue
            c1 = c
            while c1 + 1 < len(row) and row[c1 + 1][0] == LCEL:
                c1 += 1
            r1 = r
            while r1 + 1 < len(rows) and c < len(rows[r1 + 1]) and rows[r1 + 1][c][0] == UCEL:
                r1 += 1
            out[(r, c)] = (r1, c1)
    return out


def _bands(n: int, items: list[tuple]) -> list[tuple]:
    """Extents of n grid lines (columns or rows) from items (i0, i1, lo, hi): the union of the items
    that cover one line only; a line without one takes its share of the items spanning it, else
    the gap between its neighbours."""
    ext = [None] * n
    for i0, i1, lo, hi in items:
        if i0 == i1:
            e = ext[i0]
            ext[i0] = (lo, hi) if e is None else (min(e[0], lo), max(e[1], hi))
    for i in range(n):
        if ext[i] is not None:
            continue
        for i0, i1, lo, hi in items:
            if i0 <= i <= i1:
                w = (hi - lo) / (i1 - i0 + 1)
                a, b = lo + w * (i - i0), lo + w * (i - i0 + 1)
                e = ext[i]
                ext[i] = (a, b) if e is None else (min(e[0], a), max(e[1], b))
    for i in range(n):
        if ext[i] is None:
            left = next((ext[j][1] for j in range(i - 1, -1, -1) if ext[j] is not None), None)
            right = next((ext[j][0] for j in range(i + 1, n) if ext[j] is not None), None)
            lo = left if left is not None else right - TABLE_Q
            hi = right if right is not None else left + TABLE_Q
            ext[i] = (lo, max(hi, lo + 1))
    return ext


def grid_extents(rows: list[list[tuple]]) -> tuple[list, list]:
    """(column extents [(x0, x1)], row extents [(y0, y1)]) of an OTSL grid whose filled cells carry
    ink boxes (x0, y0, x1, y1), ends exclusive (see _bands)."""
    spans = cell_extents(rows)
    xs, ys = [], []
    for (r, c), (r1, c1) in spans.items():
        box = rows[r][c][1]
        if box is not None:
            xs.append((c, c1, box[0], box[2]))
            ys.append((r, r1, box[1], box[3]))
    return _bands(max(len(row) for row in rows), xs), _bands(len(rows), ys)


def table_tokens(rows: list[list[tuple]], scale: float = 1.0) -> list[int]:
    """rows of cells, each (kind, box or None) with kind in OTSL and box (x0, y0, x1, y1) in crop
    pixels (exclusive ends) for FCEL, scaled by `scale` to input pixels -> the table task's target
    tokens (without task token / EOS): column extents, NL, then each row's extent and OTSL kinds."""
    q = lambda v: COORD0 + int(min(TABLE_COORDS - 1, max(0, v // TABLE_Q)))
    # an extent (lo, hi) in crop pixels, end exclusive -> two tokens, in input pixels, end inclusive
    pair = lambda lo, hi: [q(lo * scale), max(q(lo * scale), q(hi * scale - 1))]
    cols, rws = grid_extents(rows)
    out = [t for x0, x1 in cols for t in pair(x0, x1)] + [NL]
    for (y0, y1), row in zip(rws, rows):
        out += pair(y0, y1) + [kind for kind, _ in row] + [NL]
    return out


def _is_coord(t: int) -> bool:
    return COORD0 <= t < COORD0 + TABLE_COORDS


def grid_parts(ids) -> tuple[list, list, list]:
    """A grid answer's parts as written: column extents [(x0, x1)] and per row its extent (y0, y1)
    or None, and its OTSL kinds, in TABLE_Q units (ends inclusive). Every row an end-of-row token
    closes is there, an unclosed last one where it has kinds."""
    ids = [int(t) for t in ids]
    i, cols = 0, []
    while i < len(ids) and ids[i] != NL:
        if i + 1 < len(ids) and _is_coord(ids[i]) and _is_coord(ids[i + 1]):
            cols.append((ids[i] - COORD0, ids[i + 1] - COORD0))
            i += 2
        else:
            i += 1
    i += 1
    kinds, ext, row, y = [], [], [], None
    while i < len(ids):
        t = ids[i]
        if t == NL:
            kinds.append(row)
            ext.append(y)
            row, y = [], None
        elif not row and y is None and i + 1 < len(ids) and _is_coord(t) and _is_coord(ids[i + 1]):
            y = (t - COORD0, ids[i + 1] - COORD0)
            i += 1
        elif t in OTSL:
            row.append(t)
        i += 1
    if row:
        kinds.append(row)
        ext.append(y)
    return cols, ext, kinds


def parse_table_tokens(ids) -> list[list[tuple]]:
    """The rows of a table answer as (kind, box) cells, a filled cell's box (x0, y0, x1, y1) in input
    pixels (ends exclusive) from its columns' and rows' extents; None where the answer lacks them.
    The inverse of table_tokens up to the quantisation of the extents."""
    cols, ext, kinds = grid_parts(ids)
    rows = [[(k, None) for k in row] for row in kinds]
    for (r, c), (r1, c1) in cell_extents(rows).items():
        if c1 < len(cols) and ext[r] is not None and ext[r1] is not None:
            rows[r][c] = (FCEL, (cols[c][0] * TABLE_Q, ext[r][0] * TABLE_Q, (cols[c1][1] + 1) * TABLE_Q, (ext[r1][1] + 1) * TABLE_Q))
    return rows


OTSL_X_SLACK = 2


def otsl_allowed(generated) -> list[int]:
    """The tokens that may come next in a table answer (the C++ pipeline::otsl_constraint, the same
    rules): column extents first, in pairs (x0 at most OTSL_X_SLACK units left of the previous
    column's x1, x1 >= x0), at most MAX_TABLE_COLS of them, NL after at least one; then each row:
    y0 (at most OTSL_X_SLACK units above the previous row's y1), y1 >= y0, one OTSL token per
    column (LCEL only after the first column, UCEL only below the first row, XCEL where both hold),
    NL; EOS only where a row would start, after at least one row."""
    header, ncols, row, col, coords, last = True, 0, 0, 0, 0, 0
    for t in generated:
        t = int(t)
        if t == NL:
            row += not header
            header, col, coords = False, 0, 0
        elif _is_coord(t):
            coords, last = coords + 1, t - COORD0
            ncols += header and coords % 2 == 0
        elif t in OTSL:
            col += 1
    rng = lambda lo: list(range(COORD0 + max(0, min(TABLE_COORDS - 1, lo)), COORD0 + TABLE_COORDS))
    if header:
        if coords % 2:
            return rng(last)
        return (rng(last - OTSL_X_SLACK if ncols else 0) if ncols < MAX_TABLE_COLS else []) + ([NL] if ncols else [])
    if coords == 0:
        return rng(last - OTSL_X_SLACK if row else 0) + ([EOS] if row else [])
    if coords == 1:
        return rng(last)
    if col == ncols:
        return [NL]
    return [FCEL, ECEL] + ([LCEL] if col else []) + ([UCEL] if row else []) + ([XCEL] if col and row else [])


def degrade(img: Image.Image, rng, p: float, blur: tuple, shrink: tuple, noise: tuple) -> np.ndarray:
    """Training-data augmentation of a gray rendering: each with probability p, a Gaussian blur
    (radius in `blur`), a resolution loss (down by a factor in `shrink` and back, bilinear) and
    Gaussian noise (sigma in `noise`) -> uint8 array."""
    if rng.random() < p:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(*blur)))
    if rng.random() < p:  # lower resolution, then back
        f = rng.uniform(*shrink)
        small = img.resize((max(1, int(img.width * f)), max(1, int(img.height * f))), Image.BILINEAR)
        img = small.resize(img.size, Image.BILINEAR)
    a = np.asarray(img).astype(np.int16)
    if rng.random() < p:
        a = a + np.random.default_rng(rng.randint(0, 1 << 30)).normal(0, rng.uniform(*noise), a.shape).astype(np.int16)
    return np.clip(a, 0, 255).astype(np.uint8)


def patchify(img: np.ndarray) -> np.ndarray:
    """uint8 [H, W] -> float32 [(W/P)*(H/P), P*P] in [-1, 1], column-major patch order."""
    h, w = img.shape
    r, c = h // PATCH, w // PATCH
    x = img.astype(np.float32) / 127.5 - 1.0
    x = x.reshape(r, PATCH, c, PATCH).transpose(2, 0, 1, 3).reshape(c * r, PATCH * PATCH)
    return x

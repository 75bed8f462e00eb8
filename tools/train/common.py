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
TASK_HEIGHT = {"text": TEXT_H, "formula": FORMULA_H, "table": TABLE_MAX_H}
MAX_ROWS = TABLE_MAX_H // PATCH

# Table task: the crop is scaled so that its text lines are TABLE_LINE_H pixels high (the median
# ink height of its lines), then down to fit TABLE_MAX_H x TABLE_MAX_W, and padded with white on the
# right and bottom to multiples of PATCH. The model writes the table in OTSL, row by row; each
# filled cell is followed by the ink box of its text (x0, y0, x1, y1, inclusive) in units of
# TABLE_Q pixels of that input, as tokens COORD0 + v.
TABLE_LINE_H = 8
TABLE_Q = 4
TABLE_MAX_TOKENS = 448


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


def table_tokens(rows: list[list[tuple]], scale: float = 1.0) -> list[int]:
    """rows of cells, each (kind, box or None) with kind in OTSL and box (x0, y0, x1, y1) in crop
    pixels (exclusive ends) for FCEL, scaled by `scale` to input pixels -> the table task's target
    tokens (without task token / EOS)."""
    out = []
    for row in rows:
        for kind, box in row:
            out.append(kind)
            if kind == FCEL:
                x0, y0, x1, y1 = (v * scale for v in box)
                q = lambda v: COORD0 + int(min(TABLE_COORDS - 1, max(0, v // TABLE_Q)))
                out += [q(x0), q(y0), q(max(x0, x1 - 1)), q(max(y0, y1 - 1))]
        out.append(NL)
    return out


def parse_table_tokens(ids) -> list[list[tuple]]:
    """The inverse of table_tokens (boxes in input pixels, ends exclusive); malformed cells dropped."""
    rows, row, i, ids = [], [], 0, [int(t) for t in ids]
    while i < len(ids):
        t = ids[i]
        if t == NL:
            rows.append(row)
            row = []
        elif t == FCEL:
            c = ids[i + 1:i + 5]
            if len(c) == 4 and all(COORD0 <= v < COORD0 + TABLE_COORDS for v in c):
                v = [(x - COORD0) * TABLE_Q for x in c]
                row.append((FCEL, (v[0], v[1], v[2] + TABLE_Q, v[3] + TABLE_Q)))
                i += 4
            else:
                row.append((FCEL, None))
        elif t in OTSL:
            row.append((t, None))
        i += 1
    if row:
        rows.append(row)
    return rows


OTSL_X_SLACK = 2


def otsl_allowed(generated) -> list[int]:
    """The tokens that may come next in a table answer (the C++ pipeline::otsl_constraint, the same
    rules): 4 coordinate tokens after each FCEL (x0 at most OTSL_X_SLACK units left of the previous
    cell's x1 in the row: ink boxes of neighbouring cells may touch or overlap a little;
    x1 >= x0, y1 >= y0); every row as long as the first; LCEL only after the first column, UCEL only
    below the first row, XCEL where both hold; NL ends the first row anywhere, later rows when full;
    EOS only at the start of a row after at least one row."""
    row = col = ncols = pending = 0
    box, prev_x1 = [0, 0, 0, 0], 0
    for t in generated:
        t = int(t)
        if pending:
            box[4 - pending] = t - COORD0
            pending -= 1
            if not pending:
                prev_x1 = box[2]
        elif t == NL:
            ncols = col if row == 0 else ncols
            row, col, prev_x1 = row + 1, 0, 0
        elif t == FCEL:
            pending, col = 4, col + 1
        elif t in (ECEL, LCEL, UCEL, XCEL):
            col += 1
    if pending:
        k = 4 - pending
        lo = (max(0, prev_x1 - OTSL_X_SLACK), 0, box[0], box[1])[k]
        return list(range(COORD0 + lo, COORD0 + TABLE_COORDS))
    if ncols and col == ncols:
        return [NL]
    out = [FCEL, ECEL] + ([LCEL] if col else []) + ([UCEL] if row else []) + ([XCEL] if col and row else [])
    if row == 0 and col:
        out.append(NL)
    if row and not col:
        out.append(EOS)
    return out


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

"""Synthetic tables for the table task: random grids with spans, rules, alignments, paragraph cells,
rendered with Pillow in the Debian fonts, labelled with their exact structure (OTSL) and the ink
box of every filled cell's text, from which common.table_tokens makes the grid answer (column and
row extents, OTSL kinds).

    make_table(rng, fonts, corpus) -> (gray uint8 crop, rows of (kind, box), line height) or None

Boxes are in the crop's pixels; the line height is the median ink height of a text line (what the
C++ segmenter measures on a page), from which common.to_table_input scales the crop.
"""
from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import common as C

RULES = ["none", "booktabs", "grid", "hlines", "frame", "vlines", "header", "grid"]


def cell_text(rng: random.Random, kind: str, corpus: list[str]) -> str:
    r = rng.random()
    if kind == "num":
        forms = [lambda: str(rng.randint(0, 9999)), lambda: f"{rng.uniform(0, 1000):.{rng.randint(1, 3)}f}",
                 lambda: f"{rng.randint(0, 100)}%", lambda: f"{rng.uniform(-99, 99):.2f}", lambda: f"${rng.randint(1, 999)}",
                 lambda: f"{rng.randint(1, 999):,}".replace(",", rng.choice([",", " ", ""])) + f"{rng.randint(0, 999):03d}",
                 lambda: f"{rng.uniform(0, 99):.1f} ± {rng.uniform(0, 9):.1f}", lambda: str(rng.randint(1950, 2030))]
        return rng.choice(forms)()
    words = rng.choice(corpus).split() if corpus and r < 0.85 else ["".join(
        rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(6)]
    n = {"word": rng.randint(1, 2), "phrase": rng.randint(2, 4), "para": rng.randint(5, 16)}.get(kind, rng.randint(1, 3))
    a = rng.randint(0, max(0, len(words) - n))
    s = C.normalize_text(" ".join(words[a:a + n]))
    if kind == "word" and rng.random() < 0.3:
        s = s.capitalize()
    return s[:80]


def wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    lines, cur = [], ""
    for w in text.split():
        t = (cur + " " + w).strip()
        if cur and draw.textlength(t, font=font) > width:
            lines.append(cur)
            cur = w
        else:
            cur = t
    return lines + ([cur] if cur else [])


def spans(rng: random.Random, R: int, Cn: int, heads: int) -> list[list[tuple[int, int]]]:
    """owner[r][c] = top-left (r0, c0) of the cell covering (r, c)."""
    own = [[(r, c) for c in range(Cn)] for r in range(R)]

    def merge(r0, c0, r1, c1):
        if any(own[r][c] != (r, c) for r in range(r0, r1) for c in range(c0, c1)):
            return
        for r in range(r0, r1):
            for c in range(c0, c1):
                own[r][c] = (r0, c0)

    if heads >= 2 and Cn >= 3 and rng.random() < 0.8:  # grouped column headers over sub-headers
        c = 1
        while c < Cn:
            k = rng.randint(1, min(3, Cn - c))
            if k > 1:
                merge(0, c, 1, c + k)
            c += k
        if rng.random() < 0.7:
            merge(0, 0, 2, 1)
    if R - heads >= 4 and rng.random() < 0.25:  # row groups in the first column
        r = heads
        while r < R:
            k = rng.randint(1, min(3, R - r))
            if k > 1:
                merge(r, 0, r + k, 1)
            r += k
    for _ in range(rng.choice([0, 0, 0, 1, 2])):  # a stray span in the body
        r, c = rng.randrange(heads, R), rng.randrange(Cn)
        if rng.random() < 0.5:
            merge(r, c, r + 1, min(Cn, c + 2))
        else:
            merge(r, c, min(R, r + 2), c + 1)
    return own


def make_table(rng: random.Random, fonts: list[str], corpus: list[str], texts: dict | None = None):
    """texts: if given, receives {(row, col): text} of every filled cell (its lines joined by spaces);
    it draws nothing from rng, so the tables are the same with or without it."""
    R = min(rng.randint(2, 7) + rng.randint(0, 7), 14)
    Cn = rng.randint(2, 4) + rng.randint(0, 4)
    size = rng.randint(13, 30)
    try:
        font = ImageFont.truetype(rng.choice(fonts), size)
    except Exception:
        return None
    heads = rng.choice([0, 1, 1, 1, 2]) if R >= 3 else rng.choice([0, 1])
    own = spans(rng, R, Cn, heads)
    kinds = [rng.choices(["word", "num", "phrase", "mixed", "para"], [3, 4, 2, 2, 1])[0] for _ in range(Cn)]
    kinds[0] = rng.choice(["word", "phrase", kinds[0]])
    empty_p = rng.choice([0.0, 0.03, 0.1, 0.25])
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    padx, pady = rng.randint(3, size), rng.randint(1, size // 2 + 2)
    pitch = int(size * rng.uniform(1.1, 1.4))
    para_w = {c: int(size * rng.uniform(5, 12)) for c in range(Cn) if kinds[c] == "para"}
    # texts and their lines
    cells = {}
    for r in range(R):
        for c in range(Cn):
            if own[r][c] != (r, c):
                continue
            kind = "phrase" if r < heads else kinds[c]
            t = "" if (r >= heads and rng.random() < empty_p) else cell_text(rng, kind, corpus)
            lines = wrap(probe, t, font, para_w[c]) if (c in para_w and r >= heads) else ([t] if t else [])
            if len(lines) > 4:
                lines = lines[:4]
            cells[(r, c)] = lines
    if not any(cells.values()):
        return None
    # grid sizes: single cells first, then widen the last column / row a span covers
    def extent(r, c):
        r1, c1 = r, c
        while r1 + 1 < R and own[r1 + 1][c] == (r, c):
            r1 += 1
        while c1 + 1 < Cn and own[r][c1 + 1] == (r, c):
            c1 += 1
        return r1, c1

    widths = [para_w.get(c, 0) + 2 * padx for c in range(Cn)]
    heights = [pitch + 2 * pady] * R
    for (r, c), lines in cells.items():
        r1, c1 = extent(r, c)
        w = max([int(probe.textlength(l, font=font)) for l in lines] + [0]) + 2 * padx
        h = max(1, len(lines)) * pitch + 2 * pady
        if c1 == c:
            widths[c] = max(widths[c], w)
        if r1 == r:
            heights[r] = max(heights[r], h)
    for (r, c), lines in cells.items():
        r1, c1 = extent(r, c)
        w = max([int(probe.textlength(l, font=font)) for l in lines] + [0]) + 2 * padx
        have = sum(widths[c:c1 + 1])
        if w > have:
            widths[c1] += w - have
        h = max(1, len(lines)) * pitch + 2 * pady
        have = sum(heights[r:r1 + 1])
        if h > have:
            heights[r1] += h - have
    xs = np.concatenate([[0], np.cumsum(widths)]).astype(int)
    ys = np.concatenate([[0], np.cumsum(heights)]).astype(int)
    m = rng.randint(4, 20)
    W, H = int(xs[-1]) + 2 * m, int(ys[-1]) + 2 * m
    if W > 4000 or H > 3000:
        return None
    bg = rng.randint(228, 255)
    img = Image.new("L", (W, H), bg)
    draw = ImageDraw.Draw(img)
    # shading (kept lighter than the ink threshold)
    shade = rng.random()
    for r in range(R):
        if (shade < 0.08 and r < max(1, heads)) or (0.08 <= shade < 0.14 and r % 2 == 1):
            draw.rectangle([m, m + ys[r], m + xs[-1] - 1, m + ys[r + 1] - 1], fill=rng.randint(200, 225))
    # rules
    style = rng.choice(RULES)
    t = rng.choice([1, 1, 1, 2, 2, 3])
    ink = rng.randint(0, 90)

    def hline(y, x0=0, x1=None, th=t):
        draw.rectangle([m + x0, m + y - th // 2, m + (xs[-1] if x1 is None else x1) - 1, m + y - th // 2 + th - 1], fill=ink)

    def vline(x, y0=0, y1=None):
        draw.rectangle([m + x - t // 2, m + y0, m + x - t // 2 + t - 1, m + (ys[-1] if y1 is None else y1) - 1], fill=ink)

    if style in ("booktabs", "header"):
        if style == "booktabs":
            hline(0, th=t + 1)
            hline(ys[-1], th=t + 1)
        if heads:
            hline(ys[heads])
    if style in ("grid", "hlines"):
        for r in range(R + 1):
            if r in (0, R) or all(own[r][c] != own[r - 1][c] for c in range(Cn)):
                hline(ys[r])
            else:  # a rule broken where a cell spans the rows
                for c in range(Cn):
                    if own[r][c] != own[r - 1][c]:
                        hline(ys[r], xs[c], xs[c + 1])
    if style in ("grid", "vlines"):
        for c in range(Cn + 1):
            for r in range(R):
                if c in (0, Cn) or own[r][c] != own[r][c - 1]:
                    vline(xs[c], ys[r], ys[r + 1])
    if style == "frame":
        hline(0)
        hline(ys[-1])
        vline(0)
        vline(xs[-1])
    # text
    align = [rng.choice(["l", "c", "r"]) if kinds[c] != "num" else rng.choice(["r", "r", "c", "l"]) for c in range(Cn)]
    valign = rng.choice(["t", "m"])
    fill = rng.randint(0, 60)
    head_stroke = 1 if (size >= 16 and rng.random() < 0.3) else 0
    rows = []
    boxes = {}
    for (r, c), lines in cells.items():
        if not lines:
            continue
        r1, c1 = extent(r, c)
        cx0, cx1, cy0, cy1 = xs[c] + padx, xs[c1 + 1] - padx, ys[r] + pady, ys[r1 + 1] - pady
        a = "c" if (r < heads and c1 > c) else align[c]
        y = cy0 if valign == "t" else (cy0 + cy1 - len(lines) * pitch) // 2
        box = None
        for l in lines:
            lw = probe.textlength(l, font=font)
            x = cx0 if a == "l" else (cx1 - lw if a == "r" else (cx0 + cx1 - lw) / 2)
            sw = head_stroke if r < heads else 0
            draw.text((m + x, m + y), l, font=font, fill=fill, stroke_width=sw, stroke_fill=fill)
            b = draw.textbbox((m + x, m + y), l, font=font, stroke_width=sw)
            box = b if box is None else (min(box[0], b[0]), min(box[1], b[1]), max(box[2], b[2]), max(box[3], b[3]))
            y += pitch
        boxes[(r, c)] = box
        if texts is not None:
            texts[(r, c)] = " ".join(lines)
    # line height: ink height of a line with ascenders and descenders in this font
    hb = probe.textbbox((0, 0), "Hgjy", font=font)
    line_h = hb[3] - hb[1]
    a = C.degrade(img, rng, 0.25, blur=(0.3, 0.9), shrink=(0.5, 0.85), noise=(2, 10))
    tight = C.ink_box(a)
    if tight is None:
        return None
    mm = rng.randint(0, 10)
    crop = C.crop_with_margin(a, tight, mm)
    ox, oy = tight[0] - mm, tight[1] - mm
    for r in range(R):
        row = []
        for c in range(Cn):
            o = own[r][c]
            if o != (r, c):
                kind = C.LCEL if o[0] == r else (C.UCEL if o[1] == c else C.XCEL)
                row.append((kind, None))
            elif (r, c) in boxes:
                b = boxes[(r, c)]
                row.append((C.FCEL, (b[0] - ox, b[1] - oy, b[2] - ox, b[3] - oy)))
            else:
                row.append((C.ECEL, None))
        rows.append(row)
    return crop, rows, line_h * rng.uniform(0.88, 1.12)

"""Printed-and-scanned look for training pages and crops, and the page normalisation the C++ parser
applies before it cuts crops (include/docvlm/pipeline/page_normalise.hpp: flatten_background,
stretch_levels), so that a model trained on scanned crops sees them as it will at inference.

scan(gray, rng)   a gray uint8 rendering (page or crop) -> the same size as a scanner returns it:
                  grey ink, paper tone, uneven light, bleed-through of the reverse side, a small
                  residual rotation, blur, sensor noise, JPEG.
normalise(gray)   background divided out, ink/paper levels stretched (the C++ rules, same
                  constants).

Ranges are this project's own choice of what office scanners and phone scans produce; nothing is
taken from the evaluation pages.
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter


def scan(gray: np.ndarray, rng) -> np.ndarray:
    """gray: uint8 [H, W], white paper, dark ink -> uint8 [H, W] as scanned."""
    h, w = gray.shape
    img = Image.fromarray(gray)
    if rng.random() < 0.5:  # residual skew after deskewing, or a crop's own slant
        img = img.rotate(rng.uniform(-0.25, 0.25), resample=Image.BILINEAR, fillcolor=255)
    cover = 1.0 - np.asarray(img, dtype=np.float32) / 255.0  # ink coverage 0..1
    if rng.random() < 0.3:  # the reverse side showing through: this page mirrored and shifted
        back = np.roll(cover[:, ::-1], (rng.randint(-40, 40), rng.randint(-40, 40)), axis=(0, 1))
        cover = np.maximum(cover, back * rng.uniform(0.04, 0.14))
    paper = rng.uniform(195, 250)
    ink = rng.uniform(5, 80)
    # uneven light: a linear gradient in a random direction, plus a soft vignette
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * math.pi)
    ramp = ((xx / max(w, 1) - 0.5) * math.cos(a) + (yy / max(h, 1) - 0.5) * math.sin(a))
    light = paper - rng.uniform(0, 30) * (ramp + 0.5)
    if rng.random() < 0.3:
        r2 = ((xx / max(w, 1) - 0.5) ** 2 + (yy / max(h, 1) - 0.5) ** 2)
        light = light - rng.uniform(0, 20) * r2
    v = light - (light - ink) * cover
    out = Image.fromarray(np.clip(v, 0, 255).astype(np.uint8))
    out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    v = np.asarray(out, dtype=np.float32)
    v = v + np.random.default_rng(rng.randint(0, 1 << 30)).normal(0, rng.uniform(2, 12), v.shape)
    out = Image.fromarray(np.clip(v, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=rng.randint(30, 80))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))


# ------------------------------------------------------------------------------------------------
# The C++ normalisation (page_normalise.hpp), steps 1 and 2
# ------------------------------------------------------------------------------------------------

def _quantile(hist: np.ndarray, q: float) -> int:
    total = int(hist.sum())
    if total == 0:
        return 255
    want = int(q * (total - 1))
    return int(np.searchsorted(np.cumsum(hist), want, side="right"))


def _otsu(hist: np.ndarray) -> int:
    h = hist.astype(np.float64)
    i = np.arange(256, dtype=np.float64)
    w_b = np.cumsum(h)
    s_b = np.cumsum(h * i)
    total, s = w_b[-1], s_b[-1]
    w_f = total - w_b
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w_b * w_f * (s_b / w_b - (s - s_b) / w_f) ** 2
    between[(w_b == 0) | (w_f == 0)] = -1
    return int(np.argmax(between)) + 1


def flatten_background(gray: np.ndarray) -> np.ndarray:
    cell = 16
    h, w = gray.shape
    gh, gw = (h + cell - 1) // cell, (w + cell - 1) // cell
    pad = np.full((gh * cell, gw * cell), -1, dtype=np.int16)
    pad[:h, :w] = gray
    bg = np.zeros((gh, gw))
    blocks = pad.reshape(gh, cell, gw, cell).transpose(0, 2, 1, 3).reshape(gh, gw, cell * cell)
    for cy in range(gh):
        for cx in range(gw):
            b = blocks[cy, cx]
            bg[cy, cx] = _quantile(np.bincount(b[b >= 0], minlength=256), 0.9)
    paper = _quantile(np.bincount(gray.ravel(), minlength=256), 0.9)

    def filt(g, mean):
        out = np.empty_like(g)
        for y in range(g.shape[0]):
            for x in range(g.shape[1]):
                win = g[max(0, y - 2):y + 3, max(0, x - 2):x + 3]
                out[y, x] = win.mean() if mean else win.max()
        return out

    bg = filt(filt(bg, False), True)
    if paper == 255 and (bg >= 255).all():
        return gray
    fy = np.clip((np.arange(h) + 0.5) / cell - 0.5, 0, gh - 1)
    fx = np.clip((np.arange(w) + 0.5) / cell - 0.5, 0, gw - 1)
    y0, x0 = fy.astype(int), fx.astype(int)
    y1, x1 = np.minimum(gh - 1, y0 + 1), np.minimum(gw - 1, x0 + 1)
    wy, wx = (fy - y0)[:, None], (fx - x0)[None, :]
    b = (bg[y0][:, x0] * (1 - wx) + bg[y0][:, x1] * wx) * (1 - wy) + (bg[y1][:, x0] * (1 - wx) + bg[y1][:, x1] * wx) * wy
    b = np.maximum(b, max(0.75 * paper, 1.0))
    return np.clip(np.floor(255.0 * gray / b + 0.5), 0, 255).astype(np.uint8)


def stretch_levels(gray: np.ndarray) -> np.ndarray:
    hist = np.bincount(gray.ravel(), minlength=256)
    t = _otsu(hist)
    ink, paper = hist.copy(), hist.copy()
    ink[t:] = 0
    paper[:t] = 0
    black, median = _quantile(ink, 0.05), _quantile(paper, 0.5)
    dev = np.zeros(256, dtype=np.int64)
    np.add.at(dev, np.abs(np.arange(256) - median), paper)
    sigma = 1.4826 * _quantile(dev, 0.5)
    white = max(median - 2.5 * sigma, t + 1.0)
    if black <= 0 and white >= 255:
        return gray
    if white <= black + 16:
        return gray
    lut = np.clip(np.floor(255.0 * (np.arange(256) - black) / (white - black) + 0.5), 0, 255).astype(np.uint8)
    return lut[gray]


def normalise(gray: np.ndarray) -> np.ndarray:
    return stretch_levels(flatten_background(gray))

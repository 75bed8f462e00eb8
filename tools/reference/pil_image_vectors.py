#!/usr/bin/python3
"""Writes tests/data/pil/: Pillow reference outputs for docvlm's io/image.hpp tests.

Run with Debian's python3-pil and python3-numpy:  /usr/bin/python3 tools/reference/pil_image_vectors.py
Every case is a small seeded random uint8 image, Pillow's result and the parameters, stored as
.npy files plus cases.json. The C++ test (tests/test_image.cpp) must reproduce each output exactly.
"""
import json
import math
import os
import sys

import numpy as np
import PIL
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "pil")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261125)
    cases = []

    def source(name, w, h, mode):
        c = 3 if mode == "RGB" else 1
        arr = rng.integers(0, 256, size=(h, w, c), dtype=np.uint8)
        # Smooth half of the image so interpolation sees both edges and gradients.
        arr[: h // 2] = np.clip(
            np.linspace(0, 255, w)[None, :, None] * 0.7 + arr[: h // 2] * 0.3, 0, 255
        ).astype(np.uint8)
        np.save(os.path.join(OUT, name + ".npy"), arr)
        img = Image.fromarray(arr[:, :, 0] if c == 1 else arr, mode)
        return img

    srcs = {
        "rgb37x23": source("rgb37x23", 37, 23, "RGB"),
        "rgb50x31": source("rgb50x31", 50, 31, "RGB"),
        "gray29x41": source("gray29x41", 29, 41, "L"),
        "rgb1x1": source("rgb1x1", 1, 1, "RGB"),
        "rgb1x17": source("rgb1x17", 1, 17, "RGB"),
        "rgb203x7": source("rgb203x7", 203, 7, "RGB"),
    }
    filters = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
    resizes = [
        ("rgb37x23", 64, 40), ("rgb37x23", 11, 7), ("rgb37x23", 37, 50), ("rgb37x23", 90, 23),
        ("rgb37x23", 1, 1), ("rgb37x23", 36, 22), ("rgb50x31", 13, 29), ("rgb50x31", 17, 5),
        ("rgb50x31", 150, 93), ("gray29x41", 7, 100), ("gray29x41", 58, 82), ("gray29x41", 3, 2),
        ("rgb1x1", 5, 3), ("rgb1x17", 4, 3), ("rgb1x17", 1, 40), ("rgb203x7", 28, 28),
        ("rgb203x7", 1036, 9),
    ]
    for src, w, h in resizes:
        for fname, f in filters.items():
            out = np.asarray(srcs[src].resize((w, h), f))
            if out.ndim == 2:
                out = out[:, :, None]
            name = f"resize_{fname}_{src}_to_{w}x{h}"
            np.save(os.path.join(OUT, name + ".npy"), out)
            cases.append({"op": "resize", "filter": fname, "source": src, "width": w, "height": h, "expected": name})
    for src in ("rgb37x23", "gray29x41", "rgb1x17"):
        for deg in (90, 180, 270):
            out = np.asarray(srcs[src].rotate(deg, expand=True))
            if out.ndim == 2:
                out = out[:, :, None]
            name = f"rotate_{deg}_{src}"
            np.save(os.path.join(OUT, name + ".npy"), out)
            cases.append({"op": "rotate", "degrees": deg, "source": src, "expected": name})
    for src, box in (("rgb37x23", (3, 4, 20, 15)), ("rgb37x23", (-5, -2, 10, 30)), ("gray29x41", (20, 30, 40, 50))):
        out = np.asarray(srcs[src].crop(box))
        if out.ndim == 2:
            out = out[:, :, None]
        name = "crop_%s_%d_%d_%d_%d" % ((src,) + tuple(b + 100 for b in box))
        np.save(os.path.join(OUT, name + ".npy"), out)
        cases.append({"op": "crop", "box": list(box), "source": src, "expected": name})
    # MinerU2.5 client crops (mineru-vl-utils 0.1.12 semantics, reproduced with Pillow here):
    # box in page fractions -> Image.crop(float box) -> rotate(angle, expand=True) -> resize_by_need
    def resize_by_need(image, min_edge=28, max_ratio=50):
        if max(image.size) / min(image.size) > max_ratio:
            width, height = image.size
            if width > height:
                new_w, new_h = width, math.ceil(width / max_ratio)
            else:
                new_w, new_h = math.ceil(height / max_ratio), height
            canvas = Image.new(image.mode, (new_w, new_h), (255, 255, 255))
            canvas.paste(image, (int((new_w - width) / 2), int((new_h - height) / 2)))
            image = canvas
        if min(image.size) < min_edge:
            scale = min_edge / min(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
        return image

    page = source("page300x200", 300, 200, "RGB")
    for k, (box, angle) in enumerate([((0.1234, 0.2, 0.5678, 0.61), 0), ((0.1, 0.5, 0.9, 0.505), 0), ((0.3, 0.1, 0.7, 0.9), 90),
                                      ((0.5, 0.5, 0.535, 0.55), 0), ((0.6, 0.05, 0.605, 0.95), 270), ((0.2, 0.3, 0.8, 0.4), 180)]):
        w, h = page.size
        img = page.crop((box[0] * w, box[1] * h, box[2] * w, box[3] * h))
        if angle:
            img = img.rotate(angle, expand=True)
        img = resize_by_need(img)
        name = f"mineru_crop_{k}"
        np.save(os.path.join(OUT, name + ".npy"), np.asarray(img))
        cases.append({"op": "mineru_crop", "source": "page300x200", "box": list(box), "angle": angle, "expected": name})
    out = np.asarray(srcs["rgb50x31"].convert("L"))[:, :, None]
    np.save(os.path.join(OUT, "gray_rgb50x31.npy"), out)
    cases.append({"op": "gray", "source": "rgb50x31", "expected": "gray_rgb50x31"})
    # Encoded files for the decoder: the same pixels as PNG, BMP and (lossy) JPEG decoded by Pillow.
    srcs["rgb37x23"].save(os.path.join(OUT, "rgb37x23.png"))
    srcs["rgb37x23"].save(os.path.join(OUT, "rgb37x23.bmp"))
    srcs["gray29x41"].save(os.path.join(OUT, "gray29x41.png"))
    srcs["rgb50x31"].save(os.path.join(OUT, "rgb50x31.jpg"), quality=90)
    np.save(os.path.join(OUT, "rgb50x31_jpg_pillow.npy"), np.asarray(Image.open(os.path.join(OUT, "rgb50x31.jpg")).convert("RGB")))
    rgba = Image.fromarray(np.dstack([np.asarray(srcs["rgb37x23"]), np.full((23, 37), 128, np.uint8)]), "RGBA")
    rgba.save(os.path.join(OUT, "rgba37x23.png"))
    pal = srcs["rgb37x23"].convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(os.path.join(OUT, "pal37x23.png"))
    np.save(os.path.join(OUT, "pal37x23_rgb.npy"), np.asarray(pal.convert("RGB")))
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"pillow": PIL.__version__, "numpy": np.__version__, "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} cases to {os.path.normpath(OUT)} (Pillow {PIL.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Writes tests/data/upload/: files for the server's upload checks, made with Pillow (Debian 12's
python3-pil 9.4) so that docvlm's decoders are checked against another implementation.

  two_pages.tiff     page 1: 37x23 RGB, page 2: 29x41 gray, both LZW
  tiff_p1.png, tiff_p2.png   the same pixels as PNG (what the TIFF pages must decode to)
  page.gif           a GIF (a type docvlm refuses with 415)
  polyglot.png       a valid PNG whose first KiB holds a PDF header (in a tEXt chunk)
  bomb.png           a valid 10000x10000 one-colour PNG (100 Mpx, 300 MB decoded as RGB, ~100 KB on disk)

Run: python3 tools/reference/make_upload_files.py (seeded, deterministic).
"""
import os
import numpy as np
from PIL import Image, PngImagePlugin

out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "upload")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
p1 = Image.fromarray(rng.integers(0, 256, (23, 37, 3), dtype=np.uint8), "RGB")
p2 = Image.fromarray(rng.integers(0, 256, (41, 29), dtype=np.uint8), "L")
p1.save(os.path.join(out, "two_pages.tiff"), format="TIFF", save_all=True, append_images=[p2], compression="tiff_lzw")
p1.save(os.path.join(out, "tiff_p1.png"))
p2.save(os.path.join(out, "tiff_p2.png"))
p1.save(os.path.join(out, "page.gif"))
info = PngImagePlugin.PngInfo()
info.add_text("Comment", "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj")
p1.save(os.path.join(out, "polyglot.png"), pnginfo=info)
Image.new("L", (10000, 10000), 255).save(os.path.join(out, "bomb.png"), optimize=True)

"""Writes tests/data/upload/: files for the server's upload checks, made with Pillow (Debian 12's
python3-pil 9.4) so that docvlm's decoders are checked against another implementation.

  two_pages.tiff     page 1: 37x23 RGB, page 2: 29x41 gray, both LZW
  tiff_p1.png, tiff_p2.png   the same pixels as PNG (what the TIFF pages must decode to)
  page.gif           a GIF (a type docvlm refuses with 415)
  polyglot.png       a valid PNG whose first KiB holds a PDF header (in a tEXt chunk)
  bomb.png           a valid 10000x10000 one-colour PNG (100 Mpx, 300 MB decoded as RGB, ~100 KB on disk)
  split_table.tiff   two 1000x700 pages: a ruled table (DejaVu Sans, fonts-dejavu-core) whose first
                     four rows end page 1 and whose other four, under its header again, start page 2

Run: python3 tools/reference/make_upload_files.py (seeded, deterministic).
"""
import os
import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

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


def table_page(rows, text_above, text_below):
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 20)
    im = Image.new("RGB", (1000, 700), "white")
    d = ImageDraw.Draw(im)
    y = 60
    if text_above:
        d.text((100, y), text_above, font=font, fill="black")
        y += 70
    x0, cw, rh = 200, 150, 40
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            d.text((x0 + c * cw + 10, y + r * rh + 9), cell, font=font, fill="black")
    for r in range(len(rows) + 1):
        d.line((x0, y + r * rh, x0 + 4 * cw, y + r * rh), fill="black", width=2)
    for c in range(5):
        d.line((x0 + c * cw, y, x0 + c * cw, y + len(rows) * rh), fill="black", width=2)
    if text_below:
        d.text((100, y + len(rows) * rh + 50), text_below, font=font, fill="black")
    return im


rows = [["Variety", "Season 1", "Season 2", "Mean"], ["Acala", "1520", "1610", "1565"], ["Pima", "1240", "1300", "1270"],
        ["Upland", "1710", "1690", "1700"], ["Sea Island", "980", "1010", "995"], ["Tanguis", "1330", "1350", "1340"],
        ["Karnak", "1190", "1230", "1210"], ["Giza", "1420", "1460", "1440"], ["Delta", "1610", "1580", "1595"]]
first = table_page(rows[:5], "Table 1 lists the yields of eight cotton varieties.", None)
second = table_page([rows[0]] + rows[5:], None, "The differences between seasons are small.")
first.save(os.path.join(out, "split_table.tiff"), format="TIFF", save_all=True, append_images=[second], compression="tiff_deflate")

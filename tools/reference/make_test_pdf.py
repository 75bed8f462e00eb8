#!/usr/bin/python3
"""Writes tests/data/pdf/two_pages.pdf: a minimal two-page PDF (US Letter, Helvetica text, a red box on page two), written
by hand so the CLI's PDF input has a fixture without any PDF-writing dependency."""
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "pdf", "two_pages.pdf")
pages = ["Page one: docvlm renders PDF pages one at a time.", "Page two: a second page with different text."]
objs = []
objs.append("<< /Type /Catalog /Pages 2 0 R >>")
kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>")
objs.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
for i, text in enumerate(pages):
    stream = f"BT /F1 18 Tf 72 700 Td ({text}) Tj ET"
    if i == 1:  # a red box on page two, to check the colour channels: x 72..172, y 600..650
        stream += " 1 0 0 rg 72 600 100 50 re f"
    objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>")
    objs.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
out = b"%PDF-1.4\n"
offsets = []
for n, body in enumerate(objs, start=1):
    offsets.append(len(out))
    out += f"{n} 0 obj\n{body}\nendobj\n".encode()
xref = len(out)
out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
for off in offsets:
    out += f"{off:010d} 00000 n \n".encode()
out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
os.makedirs(os.path.dirname(OUT), exist_ok=True)
open(OUT, "wb").write(out)
print("wrote", os.path.normpath(OUT), len(out), "bytes")

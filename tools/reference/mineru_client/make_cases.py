#!/usr/bin/env python3
"""Runs the official MinerU2.5 client's own functions (opendatalab/mineru-vl-utils) on generated
inputs and writes inputs and outputs as JSON, for docvlm's tests to reproduce exactly.

    python3 tools/reference/mineru_client/make_cases.py --client PATH/TO/mineru-vl-utils \
        --out tests/data/mineru-client/cases.json

The client is imported unmodified from --client (a checkout; nothing of it is copied into
docvlm). It needs Python >= 3.10 with pydantic 2, Pillow, loguru, aiofiles, httpx and tqdm
(Debian: python3-pil python3-loguru python3-aiofiles python3-httpx python3-tqdm; pydantic 2 from
a Python that has it). The inputs come from a fixed seed, so a rerun writes the same file.
"""
import argparse
import json
import random
import sys


def load_client(path):
    sys.path.insert(0, path)
    sys.path.append("/usr/lib/python3/dist-packages")  # Debian's Pillow, loguru, httpx, ...
    from loguru import logger

    logger.remove()  # the client warns on purpose-made bad inputs; keep the run quiet
    import mineru_vl_utils.mineru_client as client
    import mineru_vl_utils.post_process as pp
    from mineru_vl_utils.post_process import (equation_big, equation_delimeters, equation_double_subscript,
                                              equation_fix_eqqcolon, equation_left_right, equation_leq,
                                              equation_unbalanced_braces, json2markdown, text_display2inline,
                                              text_inline_spacing, text_move_underscores_outside)
    from mineru_vl_utils.version import __version__

    fixers = {
        "delimiters": equation_delimeters.try_fix_equation_delimeters,
        "left_right": equation_left_right.try_match_equation_left_right,
        "double_subscript": equation_double_subscript.try_fix_equation_double_subscript,
        "eqqcolon": equation_fix_eqqcolon.try_fix_equation_eqqcolon,
        "big": equation_big.try_fix_equation_big,
        "leq": equation_leq.try_fix_equation_leq,
        "unbalanced_braces": equation_unbalanced_braces.try_fix_unbalanced_braces,
        "equation": lambda s: pp._process_equation(s, debug=False),
        "equation_brackets": pp._add_equation_brackets,
        "display_to_inline": text_display2inline.try_convert_display_to_inline,
        "macro_spacing": text_inline_spacing.try_fix_macro_spacing_in_markdown,
        "underscores": text_move_underscores_outside.try_move_underscores_outside,
    }
    return client, pp, fixers, json2markdown.json2md, __version__


# ------------------------------------------------------------------------------------------------
# LaTeX and text inputs: each fixer's trigger, mixed with ordinary formula material.

BIG_NAMES = [p + s for p in ("big", "Big") for s in ("", "r", "m", "l", "g", "gr", "gm", "gl")]
BIG_DELIMS = ["(", ")", "\\{", "\\}", "|", "\\|", "[", "]", "\\langle", "\\rangle", "x"]
LEFTS = ["\\left(", "\\left[", "\\left\\{", "\\left|", "\\left\\|", "\\left.", "\\left\\langle", "\\left\\lbrace",
         "\\left\\lvert", "\\left\\lVert", "\\left\\vert", "\\left\\Vert", "\\left\\lfloor", "\\left\\lbrack", "\\left]",
         "\\left)", "\\left/", "\\left\\}", "\\left\\rvert", "\\left\\rangle"]
RIGHTS = ["\\right)", "\\right]", "\\right\\}", "\\right|", "\\right\\|", "\\right.", "\\right\\rangle", "\\right\\rbrace",
          "\\right\\lvert", "\\right\\rvert", "\\right\\vert", "\\right\\Vert", "\\right\\rfloor", "\\right\\rbrack",
          "\\right[", "\\right(", "\\right/", "\\right\\{", "\\rightarrow", "\\right\\langle"]
ATOMS = ["x", "y_{i}", "a^{2}", "\\alpha", "\\frac{1}{2}", "\\sum_{k=1}^{n}", "f(x)", "=", "+", "-", "<", "\\leq",
         "\\times", "\\in", "\\to", "\\int", "\\top", "\\inf", "\\cong", "\\subset", "\\mathbb{R}", " ", "  ", "\n",
         "\\,", "{", "}", "\\{", "\\}", "\\\\{", "2", "10", "–", "α", "β", "，", "\u3000", "\u00a0", "_", "___", "____",
         "\\eqqcolon", "\\coloneqq", "\\bigtimes", "\\tag{1}", "\\tag {2}", "&", "\\\\", "\\quad", "é", "数"]


def atom(rng):
    r = rng.random()
    if r < 0.08:
        return "\\" + rng.choice(BIG_NAMES) + rng.choice(["", " "]) + "{" + rng.choice(BIG_DELIMS) + "}"
    if r < 0.18:
        return rng.choice(LEFTS)
    if r < 0.28:
        return rng.choice(RIGHTS)
    if r < 0.32:
        return "_{" + rng.choice(["i", "j{k}", "a b", ""]) + "}" + rng.choice(["", " "]) + "_" + rng.choice(["", " "]) + "{" + rng.choice(["n", "m{1}", ""]) + "}"
    if r < 0.37:
        return "\\" + rng.choice(["cong", "to", "times", "subset", "in"]) + rng.choice("XabtopfZ") + rng.choice(["", " ", "y", "1"])
    return rng.choice(ATOMS)


def array_env(rng, depth):
    cols = rng.choice(["{cc}", "{l}", "{ l c }", " {rl}", "{c|c}", "{1}"])
    rows = []
    for _ in range(rng.randint(1, 3)):
        cells = [formula(rng, depth + 1, rng.randint(1, 4)) for _ in range(rng.randint(1, 3))]
        rows.append(rng.choice([" & ", "&"]).join(cells))
    end = "" if rng.random() < 0.05 else "\\end{array}"
    return "\\begin{array}" + cols + " ".join(r + rng.choice([" \\\\ ", "\\\\"]) for r in rows) + end


def formula(rng, depth=0, n=None):
    parts = []
    for _ in range(n if n is not None else rng.randint(1, 12)):
        if depth < 2 and rng.random() < 0.06:
            parts.append(array_env(rng, depth))
        else:
            parts.append(atom(rng))
    return "".join(parts)


HANDWRITTEN_LATEX = [
    "", " ", "\\[", "\\]", "\\[\\]", "\\[ x \\]", "  \\[\n a+b \n\\]  ", "\\[x", "x\\]", "x", "\\[ \\left( x \\]",
    "\\left( \\frac{a}{b}", "\\frac{a}{b} \\right)", "\\left( a \\right) \\left[ b", "\\left\\{ \\begin{array}{ll} 1 & x>0 \\\\ 0 & x \\leq 0 \\end{array} \\right.",
    "\\left\\{ \\begin{array}{ll} 1 & x>0 \\\\ 0 & x \\leq 0 \\end{array}", "\\begin{array}{c} \\left( a \\\\ b \\right) \\end{array}",
    "\\begin{array}{cc} \\left( a & b \\right) \\\\ \\left[ c & d \\end{array}", "a & \\left( b \\\\ c \\right) & d",
    "\\left( a & b", "\\end{array} \\left( \\begin{array}{c} x \\end{array}", "\\begin{array}{c} \\begin{array}{c} \\left( x \\end{array} \\end{array}",
    "x \\rightarrow y \\left( z", "\\left(x\\right)\\rightarrow", "\\left. x \\right|_{0}^{1}", "\\left\\langle a, b \\right\\rangle",
    "\\left\\lvert x \\right\\rvert", "\\left\\lVert x \\right\\rVert", "x_{1}_{2}", "x _ {a} _ {b}", "x_{a{b}}_{c{d}}", "x_{a{b{c}}}_{d}",
    "a \\eqqcolon b \\coloneqq c", "a<b<c", "\\big{(}x\\big{)}", "\\Biggm{\\}}", "\\Biggm{\\langle}", "\\biggm{[}x\\biggm{]}",
    "\\biggl{[}x\\biggl{]}", "\\bigl {[} \\bigr {]}", "\\bigtimes_{i}", "{a}}", "{{a}", "\\{a\\}}", "\\\\{a}", "}{", "\\left(\u3000x",
    "\\left(\\right\u00e9", "\\right\n", "α\\left(β", "\\left(\\left)\\right(", "\\left/ x \\right/", "\\left] x \\right[",
]

HANDWRITTEN_TEXT = [
    "", "plain text", "\\[1–2\\]", "\\[ 1, 2 - 3 \\]", "\\[x\\]", "\\[\\]", "a \\[ x \\] b \\[ 12 \\] c", "\\[ x", "\\[\n1\n\\]",
    "\\[٣\\]", "\\[１２\\]", "\\[ \u2003 \\]", "abcdf \\( a \\timesX b \\) asdadfads", "\\( \\int \\inf \\top \\tox \\ina \\intx \\)",
    "\\( \\cong A \\subsetB \\inR \\)", "\\(\\)", "\\( \\) \\( x \\)", "\\( x ___ y \\)", "\\(____\\)", "\\( ___ \\)", "\\( a __ b \\)",
    "xxx = \\( \\sigma ___ = \\lambda \\)", "\\( a _____ b ___ c \\) and \\( d \\)", "\\(\\)\\)", "\\( \\timesa\\timesb \\)",
    "\\( x \\) \\( y", "\\( x\n___\ny \\)", "\\( \u3000___\u3000 \\)", "text \\( \\subseteq \\subsetq \\)",
]


def text_case(rng):
    pieces = []
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.3:
            pieces.append(rng.choice(["Hello ", "world ", "the value ", "数据 ", ", ", ". ", "\n", "1–3 "]))
        elif r < 0.5:
            pieces.append("\\[" + rng.choice(["1–2", " 3, 4 ", "x", formula(rng, 2, 3), "", "٣"]) + "\\]")
        elif r < 0.9:
            pieces.append("\\(" + formula(rng, 2, rng.randint(0, 5)) + rng.choice(["", " ___ ", "___", "__"]) + "\\)")
        else:
            pieces.append(rng.choice(["\\(", "\\)", "\\[", "\\]"]))
    return "".join(pieces)


# ------------------------------------------------------------------------------------------------
# Layout outputs and block lists.

TYPES_2509 = ["text", "title", "table", "image", "code", "algorithm", "header", "footer", "page_number", "page_footnote",
              "aside_text", "equation", "equation_block", "ref_text", "list", "phonetic", "table_caption", "image_caption",
              "code_caption", "table_footnote", "image_footnote", "unknown"]
TYPES_PRO = ["doc_title", "paragraph_title", "formula_number", "index", "list_item", "caption", "footnote", "chart",
             "image_block", "inline_formula", "Text", "TITLE", "bogus", "x1"]
ROTATE = ["<|rotate_up|>", "<|rotate_right|>", "<|rotate_down|>", "<|rotate_left|>", "", "<|rotate_sideways|>"]


# Layout answers whose reading only the client's regex decides: decimal digits of other scripts
# (re's \d; int() reads them, mixed too), zero-padded and very long numbers, Unicode whitespace
# (re's \s), a superscript digit (not \d), a type with a non-ASCII letter (\w, then unknown).
HANDWRITTEN_LAYOUT = [
    "<|box_start|>\u0661\u0660\u0660 \u0662\u0660\u0660 \u0663\u0660\u0660 \u0664\u0660\u0660<|box_end|><|ref_start|>text<|ref_end|>",
    "<|box_start|>\uff11\uff10\uff10 \uff12\uff10\uff10 \uff13\uff10\uff10 \uff14\uff10\uff10<|box_end|><|ref_start|>title<|ref_end|><|rotate_right|>",
    "<|box_start|>\U0001d7cf\U0001d7ce\U0001d7ce \U0001d7d0\U0001d7ce\U0001d7ce \U0001d7e7\U0001d7e6\U0001d7e6 \U0001d7fc\U0001d7f6\U0001d7f6<|box_end|><|ref_start|>table<|ref_end|>",
    "<|box_start|>\u0967\u0966\u0966 \u0968\u0966\u0966 \u0969\u0966\u0966 \u096a\u0966\u0966<|box_end|><|ref_start|>equation<|ref_end|>",
    "<|box_start|>1\u06602 2\u09e60 300 4\u0c660<|box_end|><|ref_start|>text<|ref_end|>txt_contd_tgt",
    "<|box_start|>0000000000000100 200 300 400<|box_end|><|ref_start|>text<|ref_end|>",
    "<|box_start|>00000000000001001 200 300 400<|box_end|><|ref_start|>text<|ref_end|>",
    "<|box_start|>99999999999999999999999 200 300 400<|box_end|><|ref_start|>text<|ref_end|>",
    "<|box_start|>100\u3000200\u00a0300\u2003400<|box_end|><|ref_start|>text<|ref_end|>",
    "<|box_start|>\u00b200 200 300 400<|box_end|><|ref_start|>text<|ref_end|><|box_start|>10 20 30 40<|box_end|><|ref_start|>image<|ref_end|>",
    "<|box_start|>100 200 300 400<|box_end|><|ref_start|>t\u00ebxt<|ref_end|><|box_start|>10 20 30 40<|box_end|><|ref_start|>text<|ref_end|>",
]


def layout_case(rng):
    lines = []
    for _ in range(rng.randint(0, 9)):
        r = rng.random()
        x1, x2 = sorted(rng.sample(range(0, 1001), 2))
        y1, y2 = sorted(rng.sample(range(0, 1001), 2))
        if r < 0.1:
            x1, x2 = x2, x1
        elif r < 0.14:
            x2 = x1
        elif r < 0.17:
            y2 = rng.choice([1001, 1500])
        elif r < 0.2:  # a block inside the previous one (a table's cell text, an image's caption)
            x1, x2, y1, y2 = x1, x1 + max(1, (x2 - x1) // 3), y1, y1 + max(1, (y2 - y1) // 3)
        t = rng.choice(TYPES_2509 if rng.random() < 0.7 else TYPES_PRO)
        sep = rng.choice([" ", " ", "  ", "\n"])
        tail = rng.choice(["", "", "\n", "<|txt_contd_tgt|>", " txt_contd_tgt\n", "junk"])
        line = f"<|box_start|>{x1:03d}{sep}{y1:03d} {x2:03d} {y2:03d}<|box_end|><|ref_start|>{t}<|ref_end|>{rng.choice(ROTATE)}{tail}"
        if rng.random() < 0.05:
            line = line.replace("<|box_end|>", "")
        lines.append(line)
    if rng.random() < 0.05:
        lines.append("no layout here")
    return "".join(lines)


def otsl_case(rng):
    rows = []
    for _ in range(rng.randint(1, 4)):
        cells = []
        for _ in range(rng.randint(1, 4)):
            tag = rng.choice(["<fcel>", "<fcel>", "<fcel>", "<ecel>", "<lcel>", "<ucel>", "<xcel>"])
            text = rng.choice(["1", "a & b", " x ", "<b>", "数", "\\(x\\)", ""]) if tag == "<fcel>" else ""
            cells.append(tag + text)
        rows.append("".join(cells) + "<nl>")
    s = "".join(rows)
    return rng.choice([s, s, s[:-4], "<table><tr><td>1</td></tr></table>", "plain text", ""])


CONTAINERS = ("list", "equation_block")  # the client never recognises these: their content stays None


def block_list_case(rng):
    blocks = []
    for _ in range(rng.randint(0, 8)):
        t = rng.choice(["text", "text", "equation", "equation", "equation_block", "title", "list", "list_item", "header",
                        "footer", "page_number", "page_footnote", "aside_text", "code", "ref_text", "image_caption",
                        "table"])
        x1 = rng.randint(0, 900)
        y1 = rng.randint(0, 900)
        w = rng.randint(5, 1000 - x1)
        h = rng.randint(5, 1000 - y1)
        if blocks and rng.random() < 0.3:  # a block inside the previous one's box: equation_block grouping
            p = blocks[-1]["bbox"]
            bx = [p[0] + (p[2] - p[0]) * 0.1, p[1] + (p[3] - p[1]) * 0.1, p[2] - (p[2] - p[0]) * 0.1, p[3] - (p[3] - p[1]) * 0.5]
            bbox = [round(v, 3) for v in bx]
        else:
            bbox = [x1 / 1000, y1 / 1000, (x1 + w) / 1000, (y1 + h) / 1000]
        if bbox[0] >= bbox[2] or bbox[1] >= bbox[3]:
            continue
        if t in CONTAINERS:
            content = None
        elif t == "equation":
            content = formula(rng) if rng.random() < 0.9 else rng.choice(["", "[Non-Text]", " [Non-Text]\n"])
        elif t == "table":
            content = otsl_case(rng) if rng.random() < 0.9 else rng.choice(["", "[Non-Text]"])
        else:
            content = text_case(rng) if rng.random() < 0.85 else rng.choice(["", " [Non-Text] ", "[Non-Text]", "[Non-Text]."])
        b = {"type": t, "bbox": bbox, "angle": rng.choice([None, 0, 90]), "content": content}
        if t == "text":
            b["merge_prev"] = rng.random() < 0.3
        blocks.append(b)
    return blocks


def extract_case(rng):
    """A page's blocks with visual containers and captions inside them (and some outside)."""
    blocks = []
    for _ in range(rng.randint(1, 8)):
        t = rng.choice(["text", "title", "table", "equation", "image", "chart", "image_block", "list", "equation_block",
                        "image_caption", "image_caption", "table_caption", "code", "header", "list_item", "doc_title"])
        if blocks and rng.random() < 0.4:  # inside (or across) an earlier block, often a caption
            if rng.random() < 0.5:
                t = "image_caption"
            p = rng.choice(blocks)["bbox"]
            f = rng.choice([0.05, 0.1, 0.3, -0.05])
            w, h = p[2] - p[0], p[3] - p[1]
            bbox = [p[0] + w * f, p[1] + h * f, p[2] - w * max(f, 0.0), p[3] - h * 0.5]
            bbox = [min(1.0, max(0.0, round(v, 3))) for v in bbox]
        else:
            x1, x2 = sorted(rng.sample(range(0, 1001), 2))
            y1, y2 = sorted(rng.sample(range(0, 1001), 2))
            if rng.random() < 0.1:
                x2 = x1 + 1  # narrower than a pixel of the page
            bbox = [x1 / 1000, y1 / 1000, x2 / 1000, y2 / 1000]
        if bbox[0] >= bbox[2] or bbox[1] >= bbox[3]:
            continue
        blocks.append({"type": t, "bbox": bbox, "angle": rng.choice([None, 0, 90, 180, 270])})
    return blocks


def table_image_case(rng):
    """A 320 x 240 page (coloured rectangles drawn in order on white) with one or two tables and
    images inside them: wholly, partly (not absorbed), in two tables at once, at a table's edge,
    smaller than the client's smallest token font; tables at every rotation; a text block."""
    rects = []
    for _ in range(rng.randint(1, 6)):
        x0, x1 = sorted(rng.sample(range(0, 321), 2))
        y0, y1 = sorted(rng.sample(range(0, 241), 2))
        rects.append([x0, y0, x1, y1] + [rng.choice([0, 30, 90, 128, 200, 230, 255]) for _ in range(3)])
    blocks = []
    for _ in range(rng.randint(1, 2)):
        x0, y0 = rng.randint(0, 450), rng.randint(0, 450)
        x1, y1 = rng.randint(x0 + 250, 1000), rng.randint(y0 + 250, 1000)
        blocks.append({"type": "table", "bbox": [x0 / 1000, y0 / 1000, x1 / 1000, y1 / 1000],
                       "angle": rng.choice([None, 0, 90, 180, 270])})
    tables = list(blocks)
    for _ in range(rng.randint(1, 4)):
        t = rng.choice(tables)["bbox"]
        w, h = t[2] - t[0], t[3] - t[1]
        fx0, fy0 = rng.uniform(-0.06, 0.85), rng.uniform(-0.06, 0.85)
        fx1 = min(1.04, fx0 + rng.choice([0.02, 0.06, 0.15, 0.3, 0.5]))
        fy1 = min(1.04, fy0 + rng.choice([0.02, 0.06, 0.15, 0.3, 0.5]))
        bbox = [min(1.0, max(0.0, round(v, 3))) for v in (t[0] + w * fx0, t[1] + h * fy0, t[0] + w * fx1, t[1] + h * fy1)]
        if bbox[0] < bbox[2] and bbox[1] < bbox[3]:
            blocks.append({"type": "image", "bbox": bbox, "angle": None})
    if rng.random() < 0.4:
        blocks.append({"type": "text", "bbox": [0.0, 0.0, 0.4, 0.05], "angle": 0})
    rng.shuffle(blocks)
    return rects, blocks


def draw_page(rects):
    from PIL import Image, ImageDraw

    page = Image.new("RGB", (320, 240), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    for x0, y0, x1, y1, r, g, b in rects:  # PIL's rectangle includes its right and bottom edges
        draw.rectangle((x0, y0, x1, y1), fill=(r, g, b))
    return page


def png_base64(image):
    import base64
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


TOKEN_CONTENTS = ["[{t}]", "[ {t} ]", "[\t{t}\n]", "{t}", "[{l}]", "x[{t}]y[{t}]", "[[{t}]]"]


def table_token_post_case(rng, tokens):
    """Blocks after recognition whose tables hold image tokens (as the model would copy them, with
    spaces, twice, lower-cased, unbracketed) and formulas, with absorbed images beside them."""
    blocks = []
    for t in rng.sample(tokens, min(len(tokens), rng.randint(1, 3))):
        cells = [rng.choice(TOKEN_CONTENTS).format(t=t[1:-1], l=t[1:-1].lower()), rng.choice(["a", "\\(x^2\\)", "\\[y\\]", "<eq>z</eq>"])]
        otsl = "".join(f"<fcel>{c}" for c in cells) + "<nl>"
        uri = "data:image/jpeg;base64," + "".join(rng.choice("ABCDEFabcdef0123456789+/") for _ in range(rng.randint(4, 40)))
        blocks.append({"type": "table", "bbox": [0.1, 0.1, 0.9, 0.5], "angle": None, "content": otsl, "tokens": [[t, uri]]})
        blocks.append({"type": "image", "bbox": [0.2, 0.2, 0.3, 0.3], "angle": None, "content": None, "absorbed": rng.random() < 0.8})
    blocks.append({"type": "text", "bbox": [0.1, 0.6, 0.9, 0.7], "angle": None, "content": "after \\(a\\) [" + tokens[0][1:-1] + "]"})
    rng.shuffle(blocks)
    return blocks


# ------------------------------------------------------------------------------------------------
# Image analysis answers: charts as Markdown tables (with the repetitions the chart fixer looks
# for), flowcharts as Mermaid (with the mistakes the Mermaid fixers repair), tagged as the model
# answers (<|class_start|>…).

CELL_WORDS = ["2021", "2022", "Q1", "Revenue", "12.5%", "-3", "中国", "Total", "a::b", "x;y", "`code`", "`open", "N/A",
              "ｘ", "α", "", " ", "1,234", "col|in", "tab\there"]


def chart_row(rng, cols):
    cells = []
    for _ in range(cols):
        r = rng.random()
        if r < 0.04:
            cells.append("::".join(["k"] * rng.choice([5, 22])))
        elif r < 0.07:
            cells.append(";".join(["v"] * rng.choice([5, 32])))
        elif r < 0.10:
            cells.append(", ".join([rng.choice(["same part", "Same Part ", "ab"])] * rng.choice([3, 9])))
        elif r < 0.12:
            cells.append("long " * rng.choice([20, 70]))
        else:
            cells.append(rng.choice(CELL_WORDS))
    pipe = rng.choice(["|", "|", "|", "｜", "¦", "\\|"])
    edge = rng.random() < 0.85
    return (pipe if edge else "") + pipe.join(cells) + (pipe if edge and rng.random() < 0.9 else "")


def clean_chart(rng):
    cols = rng.randint(2, 5)
    rows = [[rng.choice(["Year", "Sales", "Region", "数量", "a & b", "<x>"]) for _ in range(cols)],
            [rng.choice(["---", ":---:", "---:", ":---"]) for _ in range(cols)]]
    for _ in range(rng.randint(0, 6)):
        rows.append([rng.choice(["2021", "12.5", "North", "-", "a\\|b", "`x|y`", "1,000"]) for _ in range(cols)])
    edge = rng.random() < 0.8
    return "\n".join(("| " if edge else "") + " | ".join(r) + (" |" if edge else "") for r in rows)


def chart_content(rng):
    if rng.random() < 0.45:
        return clean_chart(rng)
    cols = rng.randint(1, 5)
    lines = [chart_row(rng, cols)]
    if rng.random() < 0.85:
        lines.append("|" + "|".join(rng.choice(["---", ":---:", "---:", "--", " --- "]) for _ in range(cols if rng.random() < 0.9 else cols + 1)) + "|")
    for _ in range(rng.randint(0, 10)):
        r = rng.random()
        if r < 0.1 and len(lines) > 2:
            lines.append(lines[-1])  # a repeated row
        elif r < 0.15:
            lines.append("")
        elif r < 0.2:
            lines.append(rng.choice(["Note: values in millions", "x" * rng.choice([5, 25]), "a " * 10]))
        else:
            lines.append(chart_row(rng, cols if rng.random() < 0.85 else cols + 1))
    text = "\n".join(lines)
    r = rng.random()
    if r < 0.08:
        text = text + "\n" + text  # the whole answer twice
    elif r < 0.12:
        text += "\n" * 6 + "tail"
    elif r < 0.16:
        text += "\n" + " ".join(["word"] * 9)
    elif r < 0.20:
        text = rng.choice(["", "   ", "plain words only", "|a|\n|---|"])
    return text


MERMAID_IDS = ["A", "B", "node_1", "Top Layer", "Bottom Layer", "Start", "1st step", "数据", "数据 处理", "x-y", "a.b", "C", "End"]
MERMAID_LABELS = ["Start", "say \"hi\"", "line1\nline2", "[\"arr\"]", "", "a(b)", "成长社区", "x|y", "ok"]


def mermaid_node(rng):
    node = rng.choice(MERMAID_IDS)
    r = rng.random()
    if r < 0.4:
        return node + "[" + rng.choice(['"', ""]) + rng.choice(MERMAID_LABELS) + rng.choice(['"', ""]) + "]"
    if r < 0.5:
        return node + rng.choice(["(round)", "{choice}", "((circle))"])
    return node


def mermaid_content(rng):
    head = rng.choice(["graph TD", "graph LR", "flowchart TD", "grap TD", "graphh LR", "flowchar TB", "Graph TD", ""])
    lines = [head] if head else []
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        arrow = rng.choice(["-->", "-->", "-->", " --> ", "- ->", "-- >", " -> ", "<-->", "< - - >", "==>", "-.->"])
        if r < 0.45:
            label = rng.choice(["", "", "|yes|", "| no (maybe) |", "|a  b|", "|x"])
            line = mermaid_node(rng) + " " + arrow + label + " " + mermaid_node(rng)
            if rng.random() < 0.2:
                line += " " + arrow + " " + mermaid_node(rng)
            if rng.random() < 0.1:
                line += "; " + mermaid_node(rng) + " --> " + mermaid_node(rng) + rng.choice([";", ""])
        elif r < 0.55:
            line = rng.choice(["subgraph 1) Trigger", "subgraph Main", "subgraph id[\"Title\"]", "subgraph 数据 流", "subgraph 2)_n8n",
                               "subgraph 1) Trigger", "subgraph   ", "subgraph a-b c"])
        elif r < 0.6:
            line = "end"
        elif r < 0.65:
            line = "%% " + rng.choice(["comment --> x", "note"])
        elif r < 0.72:
            line = "G -->node(DRAM)| H"
        elif r < 0.8:
            line = mermaid_node(rng)
        elif r < 0.85:
            line = 'A["' + "\\n".join([rng.choice(["rep", "完成注册登记"])] * rng.choice([3, 9, 21])) + '"] --> B'
        elif r < 0.9:
            line = "AJ" + "AnAoApAq" * rng.choice([2, 10, 40]) + " --> B"
        else:
            line = rng.choice(["S --> T[\"成长社区\"]", "U --> V[\"成长社区\"]", "V --> W --> X", "  direction LR"])
        lines.append(rng.choice(["", "  ", "\t"]) + line)
    if rng.random() < 0.15:
        lines += [lines[-1]] * rng.choice([8, 21])
    text = "\n".join(lines) + rng.choice(["", "\n"])
    r = rng.random()
    if r < 0.3:
        text = "```mermaid\n" + text + "\n```"
    elif r < 0.4:
        text = "```\n" + text + "```"
    elif r < 0.45:
        text = "mermaid " + text
    return text


def tagged(rng, cls, content):
    sub = rng.choice(["", "bar", "line", "Pie ", "flowchart"])
    caption = rng.choice(["", "A figure", " Sales by year ", "图 1"])
    parts = [f"<|class_start|>{cls}<|class_end|>", f"<|sub_class_start|>{sub}<|sub_class_end|>",
             f"<|caption_start|>{caption}<|caption_end|>"]
    r = rng.random()
    if r < 0.1:
        parts.append(f"<|content_start|>{content}")  # cut off before its end tag
    elif r < 0.15:
        parts.append("")
    else:
        parts.append(f"<|content_start|>{content}<|content_end|>")
    if rng.random() < 0.2:
        rng.shuffle(parts)
    return rng.choice(["", "\n"]).join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--client", required=True, help="a checkout of opendatalab/mineru-vl-utils")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=2509)
    args = ap.parse_args()
    client, pp, fixers, json2md, version = load_client(args.client)
    from mineru_vl_utils.structs import ContentBlock

    rng = random.Random(args.seed)
    latex_inputs = HANDWRITTEN_LATEX + [formula(rng) for _ in range(300)]
    text_inputs = HANDWRITTEN_TEXT + [text_case(rng) for _ in range(200)]
    latex_fixers = ["delimiters", "left_right", "double_subscript", "eqqcolon", "big", "leq", "unbalanced_braces",
                    "equation", "equation_brackets"]
    text_fixers = ["display_to_inline", "macro_spacing", "underscores"]
    cases = {"fixers": []}
    for s in latex_inputs:
        cases["fixers"].append({"in": s, "out": {f: fixers[f](s) for f in latex_fixers}})
    for s in text_inputs:
        cases["fixers"].append({"in": s, "out": {f: fixers[f](s) for f in text_fixers}})

    helper = client.MinerUClientHelper(
        backend="transformers", prompts=client.DEFAULT_PROMPTS, sampling_params=client.DEFAULT_SAMPLING_PARAMS,
        layout_image_size=(1036, 1036), min_image_edge=28, max_image_edge_ratio=50, simple_post_process=False,
        handle_equation_block=True, abandon_list=False, abandon_paratext=False, image_analysis=False, debug=False)
    cases["layout"] = []
    for _ in range(150):
        out = layout_case(rng)
        cases["layout"].append({"in": out, "out": [dict(b) for b in helper.parse_layout_output(out)]})
    for out in HANDWRITTEN_LAYOUT:
        cases["layout"].append({"in": out, "out": [dict(b) for b in helper.parse_layout_output(out)]})

    cases["post_process"] = []
    for i in range(150):
        blocks = block_list_case(rng)
        flags = {"handle_equation_block": i % 5 != 4, "abandon_list": i % 7 == 3, "abandon_paratext": i % 3 == 1}
        objs = []
        for b in blocks:
            cb = ContentBlock(b["type"], list(b["bbox"]), angle=b["angle"], content=b["content"],
                              merge_prev=b.get("merge_prev", False))
            objs.append(cb)
        out = pp.post_process(objs, simple_post_process=False, debug=False, **flags)
        out_dicts = [dict(b) for b in out]
        cases["post_process"].append({"in": blocks, "flags": flags, "out": out_dicts, "markdown": json2md(out_dicts)})

    from PIL import Image

    page = Image.new("RGB", (300, 200), (255, 255, 255))
    cases["extract"] = []
    for _ in range(150):
        blocks = extract_case(rng)
        objs = [ContentBlock(b["type"], list(b["bbox"]), angle=b["angle"]) for b in blocks]
        _, prompts, _, indices = helper.prepare_for_extract(page, objs)
        kept = [{"type": b.type, "bbox": b.bbox, "angle": b.angle} for b in objs]
        cases["extract"].append({"in": blocks, "page": [300, 200], "blocks": kept, "indices": indices, "prompts": prompts})

    cases["table_images"] = []
    tokens_seen = []
    for i in range(40):
        rects, blocks = table_image_case(rng)
        drawn = draw_page(rects)
        objs = [ContentBlock(b["type"], list(b["bbox"]), angle=b["angle"]) for b in blocks]
        random.seed(7000 + i)  # the client draws its image tokens from the global generator
        images, prompts, _, indices = helper.prepare_for_extract(drawn, objs)
        tables = []
        for image, k in zip(images, indices):
            if objs[k].type == "table":
                tokens = list(objs[k].get("_table_image_token_map", {}).items())
                tokens_seen += [t for t, _ in tokens]
                tables.append({"block": k, "image_png": png_base64(image), "tokens": [list(t) for t in tokens]})
        cases["table_images"].append({"page": [320, 240], "rects": rects, "in": blocks, "indices": indices, "prompts": prompts,
                                      "absorbed": [k for k, o in enumerate(objs) if o.get("_absorbed_by_table")],
                                      "tables": tables})

    cases["table_post_process"] = []
    for i in range(60):
        blocks = table_token_post_case(rng, sorted(set(tokens_seen)))
        flags = {"simple_post_process": i % 4 == 3, "enable_table_formula_eq_wrap": i % 2 == 1}
        objs = []
        for b in blocks:
            cb = ContentBlock(b["type"], list(b["bbox"]), angle=b["angle"], content=b["content"])
            if b.get("tokens"):
                cb["_table_image_token_map"] = dict(b["tokens"])
            if b.get("absorbed"):
                cb["_absorbed_by_table"] = True
            objs.append(cb)
        out = pp.post_process(objs, handle_equation_block=True, abandon_list=False, abandon_paratext=False, debug=False, **flags)
        out_dicts = [dict(b) for b in out]
        cases["table_post_process"].append({"in": blocks, "flags": flags, "out": out_dicts, "markdown": json2md(out_dicts)})

    from mineru_vl_utils.post_process import (chart_invalid_repetition, image_analysis_postprocess, mermaid_invalid_edge_lines,
                                              mermaid_invalid_subgraph_lines, mermaid_node_id_legalize, mermaid_repetition)

    rng2 = random.Random(args.seed * 7 + 1)  # its own stream: the cases above stay as they were
    cases["charts"] = []
    for _ in range(200):
        c = chart_content(rng2)
        cases["charts"].append({"in": c, "out": {
            "chart_repetition": chart_invalid_repetition.try_fix_chart_invalid_repetition(c),
            "malformed_table": image_analysis_postprocess.has_malformed_markdown_table(c),
            "table_html": image_analysis_postprocess.convert_markdown_table_to_html(c)}})
    cases["mermaid"] = []
    for _ in range(200):
        c = mermaid_content(rng2)
        cases["mermaid"].append({"in": c, "out": {
            "repetition": [i.reason for i in mermaid_repetition.detect_mermaid_repetition_issues(c)],
            "node_ids": mermaid_node_id_legalize.try_fix_mermaid_node_id_legalization(c),
            "edge_lines": mermaid_invalid_edge_lines.try_fix_mermaid_invalid_edge_lines(c),
            "subgraph_lines": mermaid_invalid_subgraph_lines.try_fix_mermaid_invalid_subgraph_lines(c),
            "strict": image_analysis_postprocess.extract_and_validate_mermaid_strict(c)}})
    cases["image_analysis"] = []
    for i in range(160):
        cls = rng2.choice(["chart", "chart", "flowchart", "flowchart", "pure_table", "pure_formula", "natural_image", "chemical",
                           "Chart ", "other", ""])
        if cls.strip().lower() == "chart":
            content = chart_content(rng2)
        elif cls == "flowchart":
            content = mermaid_content(rng2)
        elif cls == "pure_table":
            content = rng2.choice([chart_content(rng2), otsl_case(rng2), "<table><tr><td>1</td></tr></table>", ""])
        else:
            content = rng2.choice(["x^2", "\\frac{a}{b}", "", "A photo of a cat"])
        answer = tagged(rng2, cls, content)
        btype = rng2.choice(["image", "chart"])
        flags = {"simple_post_process": i % 5 == 4, "enable_table_formula_eq_wrap": i % 3 == 1}
        blocks = [{"type": btype, "bbox": [0.1, 0.1, 0.5, 0.5], "angle": None, "content": answer},
                  {"type": "text", "bbox": [0.1, 0.6, 0.5, 0.7], "angle": None, "content": "caption text"}]
        objs = [ContentBlock(b["type"], list(b["bbox"]), angle=b["angle"], content=b["content"]) for b in blocks]
        out = pp.post_process(objs, handle_equation_block=True, abandon_list=False, abandon_paratext=False, debug=False, **flags)
        out_dicts = [dict(b) for b in out]
        cases["image_analysis"].append({"in": blocks, "flags": flags, "fields": image_analysis_postprocess.process_image_or_chart(answer),
                                        "out": out_dicts, "markdown": json2md(out_dicts)})

    cases["extract_image_analysis"] = []
    for _ in range(120):
        blocks = extract_case(rng2)
        objs = [ContentBlock(b["type"], list(b["bbox"]), angle=b["angle"]) for b in blocks]
        _, prompts, _, indices = helper.prepare_for_extract(page, objs, image_analysis=True)
        cases["extract_image_analysis"].append({"in": blocks, "page": [300, 200], "indices": indices, "prompts": prompts})

    doc = {"client": "opendatalab/mineru-vl-utils", "version": version, "seed": args.seed, **cases}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=0)
        f.write("\n")
    n = sum(len(v) for k, v in cases.items())
    print(f"{args.out}: {n} cases from mineru-vl-utils {version}")


if __name__ == "__main__":
    main()

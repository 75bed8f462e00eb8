"""Reference cases for the client's cross-page table check, from the client's own code.

mineru-vl-utils' post_process/cross_page_table.py (imported unmodified from --client) takes its
table reading from MinerU (mineru/utils/table_merge.py, imported unmodified from --mineru; its
one import not on that path, the VLM Markdown writer, is replaced by a stub that raises), which
parses HTML with BeautifulSoup's "html.parser". Nothing of either checkout is copied.

    python3 tools/reference/mineru_client/make_cross_page_cases.py --client /tmp/mvu --mineru /tmp/mineru \\
        --out tests/data/mineru-client/cross_page.json
"""
import argparse
import json
import random
import sys
import types


def load(client_path, mineru_path):
    sys.path.insert(0, client_path)
    sys.path.insert(1, mineru_path)
    sys.path.append("/usr/lib/python3/dist-packages")  # Debian's BeautifulSoup, loguru, ...
    from loguru import logger

    logger.remove()
    stub = types.ModuleType("mineru.backend.vlm.vlm_middle_json_mkcontent")

    def merge_para_with_text(*args, **kwargs):
        raise NotImplementedError("caption text is not on the client's path")

    stub.merge_para_with_text = merge_para_with_text  # replaced by caption_text for the documents below
    sys.modules[stub.__name__] = stub
    import mineru_vl_utils.post_process.cross_page_table as cpt
    from mineru.utils import table_merge
    from mineru_vl_utils.version import __version__

    assert cpt._HAS_TABLE_MERGE, cpt._TABLE_MERGE_IMPORT_ERROR
    return cpt, table_merge, __version__


# Cell text material: fullwidth letters and digits, CJK, quotes (repr's choice of quote), spaces
# of every kind, entities, inline markup, control characters.
WORDS = ["合计", "项目", "不适用", "Total", "Revenue", "2023", "1,234.5", "ＡＢＣ", "１２３", "（续）", "--", "%", "It's", 'say "hi"',
         "a'b\"c", "x\ty", "line\nbreak", "\u3000全角", "&amp;", "&lt;b&gt;", "&nbsp;", "&copy", "&#65;", "&#x4e2d;", "&#150;",
         "R&D", "<b>bold</b>", "a<br>b", "<img src=\"u.png\"/>", "<eq>x^2</eq>", "<span> inner </span>", "\u00e9t\u00e9",
         "\u200bzero", "\x07bell", "\\back", "emoji\U0001F600", "\u00a0nbsp", "  padded  ", "", "", "\u2028sep"]


def cell_text(rng):
    return "".join(rng.choice(WORDS) for _ in range(rng.choice([0, 1, 1, 1, 2, 3])))


def grid_rows(rng, n_rows, n_cols, spans):
    """Rows of (text, colspan, rowspan) cells covering an n_rows x n_cols grid."""
    taken = set()
    rows = []
    for r in range(n_rows):
        row = []
        c = 0
        while c < n_cols:
            if (r, c) in taken:
                c += 1
                continue
            cs = rs = 1
            if spans and rng.random() < 0.2:
                cs = rng.randint(1, n_cols - c)
                while any((r, c + k) in taken for k in range(cs)):
                    cs -= 1
            if spans and rng.random() < 0.15:
                rs = rng.randint(1, 3)
            for dr in range(rs):
                for k in range(cs):
                    taken.add((r + dr, c + k))
            row.append((cell_text(rng), cs, rs))
            c += cs
        rows.append(row)
    return rows


def html_of(rng, rows, style):
    def attr(name, v):
        if v == 1 and rng.random() < 0.9:
            return ""
        q = rng.choice(['"%s"', "'%s'", "%s", '" %s "'] * 20 + ['"%s.0"'])  # int() refuses "2.0"
        return " %s=%s" % (rng.choice([name, name.upper()]), q % v)

    out = "<table>" + ("<tbody>" if style == 1 else "")
    for row in rows:
        out += "<tr>"
        for text, cs, rs in row:
            tag = "th" if style == 2 and rng.random() < 0.3 else "td"
            out += "<%s%s%s>%s</%s>" % (tag, attr("colspan", cs), attr("rowspan", rs), text, tag)
        out += "</tr>" if rng.random() < 0.95 else ""
    return out + ("</tbody>" if style == 1 else "") + "</table>"


def table_pair(rng):
    """Two tables as a page break might leave them: a header repeated or not, spans lost, a row split."""
    n_cols = rng.randint(1, 6)
    header = grid_rows(rng, rng.choice([0, 1, 1, 2]), n_cols, spans=rng.random() < 0.5)
    body = grid_rows(rng, rng.randint(1, 8), n_cols, spans=rng.random() < 0.4)
    cut = rng.randint(1, len(body)) if len(body) > 1 else 1
    first, second = header + body[:cut], body[cut:] or grid_rows(rng, 1, n_cols, spans=False)
    kind = rng.random()
    if kind < 0.5:
        second = header + second  # repeated header
    elif kind < 0.6 and header:
        second = [[(t, 1, 1) for t, cs, rs in row for _ in range(cs)] for row in header] + second  # spans lost
    elif kind < 0.7:
        second = grid_rows(rng, rng.randint(1, 4), rng.randint(1, 7), spans=True)  # another table
    if rng.random() < 0.3 and second:
        second[0] = [("" if rng.random() < 0.5 else t, cs, rs) for t, cs, rs in second[0]]  # a row continued
    style = rng.randint(0, 2)
    return html_of(rng, first, style), html_of(rng, second, style)


HANDWRITTEN_HTML = [
    "<table><tr><td>a</td><td>b</td></tr></table>",
    "<tr><td>a<td>b</tr>",  # no implied end tags: the second cell sits in the first
    "<td>a<br>x<br/>y</td><td>k</td>",  # a void element's end tag quirk
    "<td>a&#150;&#128;&#129;&#0;&#xFFFFFFFFF;b&#65</td>",
    "<td>&amp</td>", "<td>a&#</td>", "<td>a&#;<b>c</b></td>", "<td>x&amp.y&a.b</td><td>&a-", "<td>&x",
    "<td colspan='2' colspan=\"3\" rowspan>x</td>", "<td a='x>y</td>", "<TD>x</Td>", "<td>x</td >",
    "<td>x</td foo='>'>", "< td>x", "<td>x</ td>y", "<td>a</>b", "<td/>x",
    "<table><tr><td>a<![CDATA[x]]>b<!--c--><script>s<b></script><style>t</style><rt>r</rt><template>q</template>z</td></tr></table>",
    "<td>a <b>x</b>   <b>y</b>\n\n<b>z</b></td>", "<td><pre>  </pre>  </td>", "<!DOCTYPE html><td>x</td><?pi?>",
    "<td colspan=' 2 '>x</td>", "<td colspan=+2>x</td>", "<td colspan=\"1_0\">x</td>", "<td colspan=٣>x</td>",
    "<td rowspan=0>x</td><td rowspan=-1>y</td>", "<td colspan=\"&#50;\">x</td>", "<table><tr><td><table><tr><td>in</td></tr></table></td></tr></table>",
    "<td>a</td></table><td>b", "<td>\u00e9&eacute;&Eacute&notit; &notin; &NotEqualTilde;</td>", "<td>x<![if gte mso 9]>y<![endif]>z</td>",
    "<td>a</td b>c", "<td>a</tdx>b</td>", "<tD cOlSpAn=2>x</TD>", "<td><!-- a -- > b -->c</td>", "<td>x<!y>z</td>",
    "<td>1 < 2 and 3 > 2</td>", "<td>a<\n/td>", "<td>a</td\n>", "<td x=1/>y</td>", "<td x=1 />y</td>", "<td/ x>y</td>",
    "<td =x>y</td>", "<td x==1>y</td>", "<td x = \"1\" y>z</td>", "<td>x<![foo[y]]>z</td>", "<td>x<![", "<td>x<![ if]>",
]

RESPONSES = ["[1, 0]", "[0,1,1]", "[]", "[ ]", "[1,,0]", "[01]", "[2]", "[1.0]", "x [1] y [0,0]", "[1,] [1]", "[١]",
             "[1\u3000, 0]", "[1\x1c]", "[\n1,\n0\n]", "no list", "[0]", "[10]", "[1, 0", "[a] [1]", "[ 1 , 0 ]", "[0,0,0,0,0,0,0,0]"]


def random_response(rng, n):
    flags = [rng.randint(0, 1) for _ in range(n)]
    return rng.choice([
        json.dumps(flags), json.dumps(flags[:-1]), json.dumps(flags + [0]), "The answer is " + json.dumps(flags) + ".",
        "```json\n" + json.dumps(flags) + "\n```", str(flags).replace(" ", ""), rng.choice(RESPONSES)])


def soup_cells(html):
    """Per <tr> and for the whole document: each cell's get_text(), colspan and rowspan."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")

    def cells(node):
        return [[c.get_text(), c.get("colspan"), c.get("rowspan")] for c in node.find_all(["td", "th"])]

    return {"rows": [cells(tr) for tr in soup.find_all("tr")], "cells": cells(soup)}


def state_dict(tm, html):
    try:
        s = tm.build_table_state_from_html(html)
    except ValueError as e:
        return {"error": str(e)}
    if s is None:
        return None
    return {"total_cols": s.total_cols, "row_effective_cols": s.row_effective_cols,
            "last_data_row": None if s.last_data_row_metrics is None else vars(s.last_data_row_metrics),
            "tail_occupied": sorted([k, sorted(v)] for k, v in s.tail_occupied.items()),
            "front_header_info": [{"effective_cols": r.effective_cols, "colspans": list(r.colspans), "rowspans": list(r.rowspans),
                                   "normalized_texts": list(r.normalized_texts), "display_texts": list(r.display_texts)}
                                  for r in s.front_header_info],
            "front_row_metrics": [vars(s.front_first_data_row_metrics[i]) for i in sorted(s.front_first_data_row_metrics)],
            "segments": [[[g.text, g.start_col, g.end_col] for g in tm.build_row_rendered_cell_segments(s.rows, r)]
                         for r in range(len(s.rows))],
            "segment_counts": [tm.calculate_row_rendered_segments(s.rows, r) for r in range(len(s.rows))]}


def page_case(rng):
    """Pages whose boundary tables may continue, with the blocks the client skips between them."""
    n = rng.randint(2, 4)
    boundary = [table_pair(rng) for _ in range(n - 1)]  # (last table of page p, first table of page p + 1)
    pages = []
    for p in range(n):
        blocks = []
        if rng.random() < 0.3:
            blocks.append({"type": rng.choice(["header", "page_number", "text", "table_caption"]), "content": "head"})
        if p > 0:
            blocks.append({"type": "table", "content": rng.choice([boundary[p - 1][1]] * 5 + [""]),
                           "x0": rng.choice([0.1, 0.1, 0.1, 0.12, 0.3])})
        if rng.random() < 0.3 or p == 0:
            blocks.append({"type": "text", "content": "middle"})
        if p < n - 1:
            blocks.append({"type": "table", "content": boundary[p][0]})
        if rng.random() < 0.4:
            blocks.append({"type": rng.choice(["table_footnote", "footer", "page_footnote", "text", "image_caption"]), "content": "foot"})
        pages.append([{"type": bl["type"], "bbox": [bl.get("x0", 0.1), 0.2, 0.9, 0.8], "angle": None, "content": bl["content"]}
                      for bl in blocks])
    return pages


def merged_html(tm, htmls, cell_merges):
    """MinerU's perform_table_merge from the last table back to the first; the first's markup."""
    states = [tm.build_table_state_from_html(h) for h in htmls]
    if any(s is None for s in states):
        return None
    for i in range(len(states) - 1, 0, -1):
        states[i].owner_block = {"cell_merge": cell_merges[i], "blocks": []}
        tm.perform_table_merge(states[i - 1], states[i], {"blocks": []}, [])
    return str(states[0].soup)


SKIPPED = {"table_caption", "table_footnote", "image_caption", "image_footnote", "header", "footer", "page_number", "page_footnote"}


def caption_text(block):
    """The text of a caption block (MinerU's merge_para_with_text for one line of text spans)."""
    return "".join(span["content"] for line in block["lines"] for span in line["spans"])


def grouped(blocks, i, kind, before):
    """The caption (before) or footnote (after) blocks that stand with table i: scanning past
    captions, footnotes, headers, footers and page numbers, as docvlm groups the client's blocks."""
    out, j = [], i
    while True:
        j += -1 if before else 1
        if j < 0 or j >= len(blocks) or blocks[j]["type"] not in SKIPPED:
            return out
        if blocks[j]["type"] == kind:
            out.append(j)


def middle_json(pages):
    """MinerU's page_info list for the client's flat blocks: captions and footnotes inside their
    table block (captions above the body, footnotes below), headers and the like discarded."""
    infos = []
    for blocks in pages:
        claimed, para = set(), []
        for i, b in enumerate(blocks):
            if b["type"] != "table":
                continue
            caps, notes = grouped(blocks, i, "table_caption", True), grouped(blocks, i, "table_footnote", False)
            claimed.update(caps + notes + [i])
            x0, x1 = b["bbox"][0], b["bbox"][2]
            sub = [{"type": "table_caption", "bbox": [x0, 0.1, x1, 0.15], "lines": [{"spans": [{"type": "text", "content": blocks[c]["content"]}]}]}
                   for c in reversed(caps)]
            sub.append({"type": "table_body", "bbox": [x0, 0.2, x1, 0.8], "index": len(sub),
                        "lines": [{"spans": [{"type": "table", "html": b["content"]}]}]})
            sub += [{"type": "table_footnote", "bbox": [x0, 0.85, x1, 0.9], "lines": [{"spans": [{"type": "text", "content": blocks[f]["content"]}]}]}
                    for f in notes]
            block = {"type": "table", "bbox": list(b["bbox"]), "blocks": sub, "order": i}
            if b.get("cell_merge") is not None:
                block["cell_merge"] = b["cell_merge"]
            para.append(block)
        for i, b in enumerate(blocks):
            if i not in claimed and b["type"] not in SKIPPED:
                para.append({"type": b["type"], "bbox": list(b["bbox"]), "lines": [], "order": i})
        para.sort(key=lambda b: b["order"])
        infos.append({"para_blocks": para})
    return infos


def joined_tables(infos):
    """Per page, the tables left after MinerU's merge_table: markup, captions, footnotes."""
    out = []
    for info in infos:
        tables = []
        for b in info["para_blocks"]:
            if b["type"] != "table" or any(s.get("lines_deleted") for s in b["blocks"]):
                continue
            body = next(s for s in b["blocks"] if s["type"] == "table_body")
            tables.append({"html": body["lines"][0]["spans"][0]["html"],
                           "captions": [caption_text(s) for s in b["blocks"] if s["type"] == "table_caption"],
                           "footnotes": [caption_text(s) for s in b["blocks"] if s["type"] == "table_footnote"]})
        out.append(tables)
    return out


def document_case(rng):
    """2-3 pages whose boundary tables may continue, under captions that say so or not, with footnotes."""
    n = rng.randint(2, 3)
    chain = table_pair(rng)
    htmls = [chain[0], chain[1]] + ([table_pair(rng)[1]] if n == 3 else [])
    pages = []
    for p in range(n):
        blocks = []
        if rng.random() < 0.3:
            blocks.append({"type": "header", "content": "Annual report"})
        if p > 0 and rng.random() < 0.5:
            blocks.append({"type": "table_caption", "content": rng.choice(["Table 1 (continued)", "续表", "Table 2. Costs", "表 1（续）"])})
        width = rng.choice([0.8, 0.8, 0.8, 0.75, 0.6])
        blocks.append({"type": "table", "content": htmls[p], "bbox": [0.1, 0.2, 0.1 + width, 0.8],
                       "cell_merge": rng.choice([None, [rng.randint(0, 1) for _ in range(rng.randint(1, 6))]]) if p > 0 else None})
        for _ in range(rng.choice([0, 0, 1, 2])):
            blocks.append({"type": "table_footnote", "content": rng.choice(["Note: in %.", "Source: survey.", "* estimated"]) + str(p)})
        if rng.random() < 0.3:
            blocks.append({"type": "page_number", "content": str(p + 1)})
        pages.append([{"type": b["type"], "bbox": b.get("bbox", [0.1, 0.05, 0.9, 0.1]), "content": b["content"],
                       **({"cell_merge": b["cell_merge"]} if b.get("cell_merge") is not None else {})} for b in blocks])
    return pages


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--client", required=True, help="a checkout of opendatalab/mineru-vl-utils")
    ap.add_argument("--mineru", required=True, help="a checkout of opendatalab/MinerU")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=2605)
    ap.add_argument("--scale", type=int, default=1, help="that many times the random cases (a wider check; not committed)")
    args = ap.parse_args()
    cpt, tm, version = load(args.client, args.mineru)
    from mineru_vl_utils.structs import ContentBlock, ExtractResult

    rng = random.Random(args.seed)
    cases = {"html": [], "tables": [], "pairs": [], "responses": [], "pages": [], "merges": [], "continuation": [], "documents": []}
    junk = ["<", ">", "&", "</", "<td>", "</td>", "<tr>", "</tr>", "<b>", "</b>", "<br>", "<!--", "-->", "&amp;", "&#", ";", "x",
            " ", "'", "\"", "=", "<td colspan=2>", "/", "<script>", "</script>", "<![CDATA[", "]]>", "\n", "<TD ROWSPAN='2'>",
            "<td x='", "&#x", "&#12", "&amp", "&copy", "é", "\x00", "<pre>", "</pre>", "<textarea>", "<rt>", "</rt>", "<![if x]>",
            "<!doctype", "<?", "</ td>", "<th colspan=\"3\" rowspan=2/>", "<br/>", "<td/>", "\t", "\u3000", "-", ".", "</td x>"]
    for h in HANDWRITTEN_HTML + ["".join(rng.choice(junk) for _ in range(rng.randint(1, 25))) for _ in range(150 * args.scale)]:
        try:
            cases["html"].append({"in": h, **soup_cells(h)})
        except Exception as e:  # html.parser refuses some marked sections
            cases["html"].append({"in": h, "error": type(e).__name__})
    for _ in range(150 * args.scale):
        a, b = table_pair(rng)
        cases["tables"].append({"in": a, "state": state_dict(tm, a)})
        cases["tables"].append({"in": b, "state": state_dict(tm, b)})
    for _ in range(250 * args.scale):
        a, b = table_pair(rng)
        w = rng.choice([0.8, 0.8, 0.75, 0.72, 0.5])
        blocks = [ContentBlock("table", [0.1, 0.1, 0.9, 0.5], angle=None, content=a),
                  ContentBlock("table", [0.1, 0.1, 0.1 + w, 0.5], angle=None, content=b)]
        entry = {"previous": a, "current": b, "width": w}
        try:
            sa, sb = tm.build_table_state_from_html(a), tm.build_table_state_from_html(b)
            entry["headers"] = tm.detect_table_headers(sa, sb)[0] if sa and sb else None
            entry["can_merge"] = cpt.can_tables_merge_by_structure(blocks[0], blocks[1])
            tasks = cpt._prepare_merge_tasks([ExtractResult([blocks[0]]), ExtractResult([blocks[1]])], [(0, 0, 1, 0)])
            entry["tasks"] = [{"prompt": t.prompt, "segments": t.expected_segment_count, "columns": t.expected_expanded_col_count,
                               "ranges": t.previous_segment_col_ranges} for t in tasks]
        except ValueError as e:
            entry["error"] = str(e)
        cases["pairs"].append(entry)
    for r in RESPONSES + [random_response(rng, rng.randint(1, 6)) for _ in range(60 * args.scale)]:
        cases["responses"].append({"in": r, "out": cpt.parse_cell_merge_response(r)})
    for _ in range(80 * args.scale):
        pages = page_case(rng)
        results = [ExtractResult([ContentBlock(b["type"], list(b["bbox"]), angle=b["angle"], content=b["content"]) for b in p])
                   for p in pages]
        entry = {"in": pages, "pairs": [list(p) for p in cpt.find_cross_page_table_pairs(results)]}
        try:
            tasks = cpt._prepare_merge_tasks(results, cpt.find_cross_page_table_pairs(results))
        except ValueError as e:
            entry["error"] = str(e)
            cases["pages"].append(entry)
            continue
        answers = [random_response(rng, t.expected_segment_count) for t in tasks]
        cpt._apply_merge_results(results, tasks, answers)
        entry.update({"prompts": [t.prompt for t in tasks], "answers": answers,
                      "cell_merge": [[b.get("cell_merge") for b in r] for r in results]})
        cases["pages"].append(entry)

    cases["merges"] = []
    for k in range(200 * args.scale):
        chain = [table_pair(rng)] if k % 4 else [table_pair(rng), table_pair(rng)]
        htmls = [chain[0][0], chain[0][1]] + ([chain[1][1]] if len(chain) > 1 else [])
        merges = [None] + [rng.choice([None, [], [rng.randint(0, 1) for _ in range(rng.randint(1, 7))], [1] * rng.randint(1, 7)])
                           for _ in htmls[1:]]
        entry = {"in": htmls, "cell_merge": merges}
        try:
            entry["out"] = merged_html(tm, htmls, merges)
        except ValueError as e:
            entry["error"] = str(e)
        cases["merges"].append(entry)

    from mineru.utils.table_continuation import is_table_continuation_text

    cases["continuation"] = []
    markers = ["(续)", "(续表)", "（续表）", "(续上表)", "(continued)", "(Continued)", "（CONTINUED）", "(cont.)", "(cont’d)",
               "(…continued)", "continued", "Continued", "discontinued", "-continued", "écontinued", "续表", " ", ""]
    for _ in range(120 * args.scale):
        text = rng.choice(["Table 3", "表 2", "", "  ", "Costs"]) + rng.choice([" ", "", "\u3000"]) + rng.choice(markers) + \
            rng.choice(["", "", " ", ".", " 3"])
        cases["continuation"].append({"in": text, "out": is_table_continuation_text(text)})

    import mineru.utils.table_merge as tm_module

    tm_module.merge_para_with_text = caption_text
    cases["documents"] = []
    for _ in range(150 * args.scale):
        pages = document_case(rng)
        infos = middle_json(pages)
        try:
            tm.merge_table(infos)
            cases["documents"].append({"in": pages, "tables": joined_tables(infos)})
        except ValueError as e:
            cases["documents"].append({"in": pages, "error": str(e)})

    import bs4

    doc = {"client": "opendatalab/mineru-vl-utils", "version": version, "mineru": "opendatalab/MinerU mineru/utils/table_merge.py",
           "beautifulsoup": bs4.__version__, "python": sys.version.split()[0], "seed": args.seed, **cases}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"{args.out}: {sum(len(v) for v in cases.values())} cases")


if __name__ == "__main__":
    main()

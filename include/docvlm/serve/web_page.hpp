// docvlm/serve/web_page.hpp — the page `docvlm serve` shows at GET /: choose or drop a document,
// follow each page's progress, read the result rendered (Markdown, tables as HTML, formulas
// typeset with KaTeX) or as raw Markdown / HTML / JSON, download it. No build step and no CDN:
// the scripts are Debian's libjs-marked and libjs-katex, served under /assets; without them the
// page shows the Markdown as text. The rendered document sits in a sandboxed frame (no scripts
// run there), so a document's content cannot act on the page.
#pragma once

#include <docvlm/core/config.hpp>

#include <string_view>

DOCVLM_NAMESPACE_BEGIN
namespace serve {

inline constexpr std::string_view web_page_html = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>docvlm — parse a document</title>
<link rel="stylesheet" href="/assets/katex/katex.min.css">
<script src="/assets/marked/marked.min.js"></script>
<script src="/assets/katex/katex.min.js"></script>
<style>
  :root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --accent: #0b57d0; --bg: #fff; --soft: #f6f8fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  main { max-width: 980px; margin: 0 auto; padding: 24px 16px 64px; }
  h1 { font-size: 1.5rem; margin: 0 0 4px; }
  .muted { color: var(--muted); }
  #drop { display: block; border: 2px dashed var(--line); border-radius: 8px; padding: 28px; text-align: center; margin: 16px 0; }
  #drop.over { border-color: var(--accent); background: #eef4ff; }
  .row { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; margin: 12px 0; }
  label.field { display: flex; flex-direction: column; font-size: .9rem; color: var(--muted); }
  input[type=text], input[type=password] { font: inherit; padding: 6px 8px; border: 1px solid var(--line); border-radius: 6px; }
  button { font: inherit; padding: 7px 14px; border-radius: 6px; border: 1px solid var(--line); background: var(--soft); cursor: pointer; }
  button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
  button:disabled { opacity: .5; cursor: default; }
  :focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
  #pages { list-style: none; padding: 0; margin: 12px 0; }
  #pages li { display: flex; gap: 12px; align-items: center; margin: 4px 0; }
  #pages progress { flex: 1; height: 14px; }
  #error { color: #b42318; white-space: pre-wrap; }
  [role=tablist] { display: flex; gap: 4px; border-bottom: 1px solid var(--line); margin-top: 8px; }
  .actions { display: flex; justify-content: flex-end; margin-top: 16px; }
  [role=tab] { border-radius: 6px 6px 0 0; border-bottom: none; background: var(--bg); }
  [role=tab][aria-selected=true] { background: var(--soft); font-weight: 600; }
  .panel { border: 1px solid var(--line); border-top: none; padding: 12px; min-height: 200px; }
  .panel pre { margin: 0; white-space: pre-wrap; word-break: break-word; font: 14px/1.45 ui-monospace, monospace; }
  iframe { width: 100%; min-height: 480px; border: 0; }
</style>
</head>
<body>
<main>
  <h1>docvlm</h1>
  <p class="muted">Turn a page image or a PDF into Markdown, HTML tables and LaTeX. Model: <span id="model">…</span></p>
  <form id="form">
    <label id="drop" for="file">Drop a PNG, JPEG, BMP, TIFF or PDF here, or <u>choose a file</u>
      <br><input id="file" name="file" type="file" accept=".png,.jpg,.jpeg,.bmp,.tif,.tiff,.pdf,image/*,application/pdf">
      <br><span id="chosen" class="muted"></span></label>
    <div class="row">
      <label class="field" for="pagelist">Pages (PDF, e.g. 1-3,7)<input id="pagelist" type="text" name="pages" placeholder="all"></label>
      <label class="field" for="key">API key (if the server asks)<input id="key" type="password" autocomplete="off"></label>
      <label class="field" for="crosspage"><span><input id="crosspage" type="checkbox" name="cross_page_tables"> Join tables split by a page break</span></label>
      <button id="go" class="primary" type="submit">Parse</button>
    </div>
  </form>
  <div id="status" role="status" aria-live="polite" class="muted"></div>
  <ul id="pages" aria-label="progress per page"></ul>
  <div id="error" role="alert"></div>
  <section id="result" hidden>
    <div class="actions"><button id="download" type="button">Download</button></div>
    <div role="tablist" aria-label="result views">
      <button role="tab" id="tab-rendered" aria-controls="view" aria-selected="true">Rendered</button>
      <button role="tab" id="tab-md" aria-controls="view" aria-selected="false" tabindex="-1">Markdown</button>
      <button role="tab" id="tab-html" aria-controls="view" aria-selected="false" tabindex="-1">HTML</button>
      <button role="tab" id="tab-json" aria-controls="view" aria-selected="false" tabindex="-1">JSON</button>
    </div>
    <div id="view" role="tabpanel" class="panel" tabindex="0"></div>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let result = null, current = "rendered", fileName = "document";

fetch("/health").then((r) => r.json()).then((j) => { $("model").textContent = j.model; }).catch(() => {});

const drop = $("drop");
["dragenter", "dragover"].forEach((e) => drop.addEventListener(e, (ev) => { ev.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((e) => drop.addEventListener(e, (ev) => { ev.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (ev) => { if (ev.dataTransfer.files.length) { $("file").files = ev.dataTransfer.files; chosen(); } });
$("file").addEventListener("change", chosen);
function chosen() { const f = $("file").files[0]; $("chosen").textContent = f ? f.name + " (" + Math.round(f.size / 1024) + " KiB)" : ""; }

// Formulas typeset first (KaTeX escapes what it renders), then Markdown; tables stay HTML.
function render(md) {
  if (!window.marked || !window.katex) return "<pre>" + md.replace(/[&<>]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;"})[c]) + "</pre>";
  const math = [];
  const keep = (tex, display) => {
    try { math.push(katex.renderToString(tex, {displayMode: display, throwOnError: false})); }
    catch (e) { math.push("<code>" + tex.replace(/[&<>]/g, "") + "</code>"); }
    return "\u0000" + (math.length - 1) + "\u0000";
  };
  md = md.replace(/\\\[([\s\S]+?)\\\]/g, (_, t) => keep(t, true)).replace(/\\\(([\s\S]+?)\\\)/g, (_, t) => keep(t, false));
  return marked.parse(md).replace(/\u0000(\d+)\u0000/g, (_, i) => math[+i]);
}

function show(view) {
  current = view;
  for (const t of document.querySelectorAll("[role=tab]")) {
    const on = t.id === "tab-" + view;
    t.setAttribute("aria-selected", on); t.tabIndex = on ? 0 : -1;
  }
  const v = $("view"); v.textContent = "";
  if (!result) return;
  if (view === "rendered") {
    const f = document.createElement("iframe");
    f.title = "rendered document"; f.setAttribute("sandbox", "allow-same-origin");
    f.srcdoc = '<!doctype html><meta charset="utf-8"><link rel="stylesheet" href="/assets/katex/katex.min.css"><style>' +
      'body{font:16px/1.5 system-ui,sans-serif;margin:8px}table{border-collapse:collapse}td,th{border:1px solid #999;padding:3px 6px}</style>' +
      render(result.markdown);
    f.addEventListener("load", () => { try { f.style.height = (f.contentDocument.body.scrollHeight + 24) + "px"; } catch (e) {} });
    v.appendChild(f);
  } else {
    const pre = document.createElement("pre");
    pre.textContent = view === "md" ? result.markdown : view === "html" ? result.html : JSON.stringify(JSON.parse(result.json), null, 2);
    v.appendChild(pre);
  }
}
const tabs = ["rendered", "md", "html", "json"];
for (const name of tabs) $("tab-" + name).addEventListener("click", () => show(name));
document.querySelector("[role=tablist]").addEventListener("keydown", (ev) => {
  if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
  const i = (tabs.indexOf(current) + (ev.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length;
  show(tabs[i]); $("tab-" + tabs[i]).focus();
});
$("download").addEventListener("click", () => {
  if (!result) return;
  const [text, ext, type] = current === "html" ? [result.html, "html", "text/html"] : current === "json" ? [result.json, "json", "application/json"]
                                                : [result.markdown, "md", "text/markdown"];
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], {type})); a.download = fileName.replace(/\.[^.]+$/, "") + "." + ext;
  document.body.appendChild(a); a.click(); a.remove();
});

function pageRow(page) {
  let li = document.getElementById("page-" + page);
  if (!li) {
    li = document.createElement("li"); li.id = "page-" + page;
    li.innerHTML = '<span></span><progress max="1" value="0"></progress><span class="muted"></span>';
    li.firstChild.textContent = "Page " + page;
    $("pages").appendChild(li);
  }
  return li;
}

function handle(name, data) {
  if (name === "progress") {
    const li = pageRow(data.page);
    const p = li.querySelector("progress"); p.max = Math.max(1, data.total); p.value = data.done;
    li.lastChild.textContent = data.phase + " " + data.done + "/" + data.total;
    $("status").textContent = "Page " + data.index + " of " + data.pages + ": " + data.phase;
  } else if (name === "page") {
    const li = pageRow(data.page);
    const p = li.querySelector("progress"); p.max = 1; p.value = 1; li.lastChild.textContent = "done";
  } else if (name === "result") {
    result = data; $("result").hidden = false; show("rendered");
    $("status").textContent = "Done: " + document.querySelectorAll("#pages li").length + " page(s).";
  } else if (name === "error") {
    $("error").textContent = data.error ? data.error.message : "error";
  }
}

$("form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = $("file").files[0];
  if (!f) { $("error").textContent = "Choose a file first."; $("file").focus(); return; }
  fileName = f.name; result = null;
  $("error").textContent = ""; $("pages").textContent = ""; $("result").hidden = true; $("go").disabled = true;
  $("status").textContent = "Uploading " + f.name + "…";
  const body = new FormData();
  body.append("file", f); body.append("pages", $("pagelist").value.trim()); body.append("stream", "1"); body.append("format", "md");
  if ($("crosspage").checked) body.append("cross_page_tables", "1");
  const headers = $("key").value ? {Authorization: "Bearer " + $("key").value} : {};
  try {
    const res = await fetch("/v1/parse", {method: "POST", body, headers});
    if (!res.ok) { const j = await res.json().catch(() => null); throw new Error(j && j.error ? j.error.message : "HTTP " + res.status); }
    const reader = res.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += dec.decode(value, {stream: true});
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
        const name = (block.match(/^event: (.*)$/m) || [])[1], data = (block.match(/^data: (.*)$/m) || [])[1];
        if (name && data) handle(name, JSON.parse(data));
      }
    }
  } catch (e) {
    $("error").textContent = e.message; $("status").textContent = "";
  } finally {
    $("go").disabled = false;
  }
});
</script>
</body>
</html>
)HTML";

}  // namespace serve
DOCVLM_NAMESPACE_END

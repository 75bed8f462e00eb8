// tools/cli/help.hpp — the command-line tool's help texts: `docvlm --help` and each command's
// `--help` (tools/cli/docvlm.cpp prints them; docs/cli.md says the same at length).
#pragma once

namespace cli_help {

inline constexpr const char* usage = R"(docvlm — document vision-language models on the CPU

usage: docvlm COMMAND [ARGS]

commands:
  parse INPUT... [--model DIR]
                       parse page images, PDFs (or folders of them) into Markdown, JSON or HTML
  ocr|table|formula IMAGE [--model DIR]
                       recognise one crop: text, an HTML table, or a LaTeX formula

Without --model, docvlm uses its embedded model (models/docvlm-small: int8, ~9M parameters,
reads text lines; a classical segmenter finds blocks, columns, lines and tables). --model DIR
loads MinerU2.5-2509-1.2B or any Qwen2-VL-family checkpoint instead.
  serve [--model DIR] [--port N]
                       an HTTP server: OpenAI-compatible chat API (MinerU's own client can use it),
                       document parsing (POST /v1/parse) and a web page to parse documents
  ask IMAGE "PROMPT" --model DIR
                       any prompt about an image (for checkpoints that follow free instructions)
  quantize HF_DIR OUT_DIR [--group 32|64|128]
                       write an int8 checkpoint in docvlm's packed layout (loads without requantising)
  info CHECKPOINT      architecture, sizes, dtypes, parameter count and file sizes of a checkpoint
                       (a Hugging Face folder, a .safetensors file or a sharded index.json)
  golden-check DIR     run docvlm on a folder of Hugging Face reference tensors (config.json,
                       model.safetensors, input.png, input_ids.npy, *.npy) and compare every one;
                       exits 0 only if all match

run 'docvlm COMMAND --help' for details and examples.
)";

inline constexpr const char* parse_help = R"(usage: docvlm parse INPUT... [--model DIR] [-o OUTDIR] [--format md|json|html] [--threads N]
                    [--jobs N] [--shard I/N] [--pages 1-3,7] [--dpi N] [--max-tokens N] [--device D]
                    [--force] [--quiet] [--profile] [--grid-tables] [--segmenter-tables] [--no-normalise]
                    [--min-confidence X|off] [--reread X|off] [--beam K|off] [--lexicon X|off]
                    [--respell X|off] [--image-analysis] [--cross-page-tables]

Parses each page image (PNG, JPEG, BMP, TIFF: every page) or PDF (a folder means every image and
PDF in it):
with the embedded model, a classical segmenter finds blocks, columns, lines and tables, the
model reads every line and each table's rows, columns and spanning cells come from its table
splitter (the shipped model) or table task, else from the positions of the cells' text and
rules (--grid-tables: that way even with a splitter; --segmenter-tables: one row per line,
columns at the segmenter's gaps and rules); with a
MinerU2.5 folder, its two stages run (layout detection, then recognition of every block). PDF
pages are rendered one at a time (--dpi, default 150; --pages picks some), so memory stays
bounded on long documents. Writes OUTDIR/<name>.<format>, or OUTDIR/<name>_p<page>.<format>
for PDF and TIFF pages (default OUTDIR: the current directory), through a temporary file and a rename: an
output is never half-written.

Many documents: outputs that exist are skipped unless --force, so an interrupted run resumes
where it stopped. --jobs N parses N pages at once sharing one loaded model (each page then runs
on one thread; default threads = N). --shard I/N keeps pages I, I+N, I+2N, ... (1-based) of the
sorted page list, so N machines or array tasks share a corpus without overlap or loss.
A file that cannot be read is reported on one line and the others are still processed; the exit
status is 1 if any failed. Progress goes to stderr (pages done/total, pages/s, ETA; silent with
--quiet); --profile ends with the time spent per phase.

Scans: with the embedded model each page is normalised before it is segmented — paper tone and
uneven light divided out, ink made black, a page on its side or upside down turned upright, a
skew of up to 5 degrees levelled (--format json reports "page": {"rotation", "skew"}); a clean
rendered page passes unchanged. --no-normalise reads the page as it is. A text line the model
reads with a mean token log-probability below --min-confidence, or whose reading runs past what
its width can hold (about twice the densest print), is left out, not guessed (its box goes to the
JSON's "unreadable"); --min-confidence off (the default) keeps every reading that fits. A line
read with a confidence below --reread (default -0.05; off: one reading) is read once more at 0.9 of
its width, and with --beam K also by beam search of width K (the most probable whole line K
partial readings find; off: none), and the most confident reading is kept. A word the model's word list (its folder's
lexicon.txt) lacks becomes the listed word the model's own second choices for some of its letters
spell, when the letters swapped cost at most --lexicon nats of log-probability in all (default 4;
off: words as read). A word still unknown becomes the listed word one letter away (dropped, added,
changed, or two swapped) whose whole line the model scores best, when that line scores at most
--respell nats below the line as read (default 6; off: no respelling). A line
written mostly in a script the page does not use is left out too, and such letters inside a line
are dropped (Latin and Greek are every page's own; another script is when it holds a tenth of its
letters).

MinerU2.5: --image-analysis also reads images and charts as the client's image analysis does
(charts as tables, flowcharts as Mermaid, pictures by their caption; JSON "sub_type").

--cross-page-tables: once all pages of a PDF or TIFF are parsed, a table broken by a page break
is joined as MinerU joins it: the last table of a page and the first of the next (only
captions, footnotes, headers and footers between), of the same width and column structure, the
second under no caption unless one that says it continues (ending in continued, (cont.) or
续表), are one table. The model is asked (as the MinerU client asks it) which cells of the new
page's first row continue the row above (the embedded model answers by rule); the second
table's rows after its repeated header go under the first, on the first's page. The document's
pages are written together at the end; pages skipped as already written take no part.

--model DIR    a MinerU2.5-2509-1.2B (or any Qwen2-VL-family) folder: config.json,
               preprocessor_config.json, tokenizer.json, safetensors; or a docvlm-small folder.
               Default: the embedded model (models/docvlm-small, or $DOCVLM_MODEL_DIR).
--weights W    int8 (default), bf16 or f32
--device D     cpu (default), cuda or cuda:N: the vision tower's blocks and the decoder run on
               that GPU (a docvlm built with -DDOCVLM_CUDA=ON); the page parser stays on the CPU

examples:
  docvlm parse page.png
  docvlm parse manual.pdf --pages 1-3 -o out
  docvlm parse scans/ -o out --jobs 2 --shard 3/10
  docvlm parse page.png --model ~/models/MinerU2.5-2509-1.2B
  docvlm parse scans/ --model ~/models/MinerU2.5-2509-1.2B -o out --format json
)";

inline constexpr const char* ask_help = R"(usage: docvlm ask IMAGE "PROMPT" --model DIR [--max-tokens N] [--stream] [--weights W]
                  [--device cpu|cuda[:N]]

Asks a checkpoint that follows free instructions any question about an image, greedy decoding,
and prints the answer: a Qwen2-VL-family one (e.g. Qwen2-VL-2B-Instruct), LLaVA-1.5
(llava-hf/llava-1.5-7b-hf: its conversation prompt "USER: <image>\n... ASSISTANT:" is added) or
Qwen-VL-Chat (its ChatML prompt with "Picture 1: <img>...</img>"; the folder's qwen.tiktoken).
MinerU2.5 only knows its four task prompts (see ocr / table / formula); docvlm's embedded model
only knows its tasks.

examples:
  docvlm ask chart.png "Summarise this chart in two sentences." --model ~/models/Qwen2-VL-2B-Instruct
  docvlm ask page.png "What is the title of this page?" --model ~/models/llava-1.5-7b-hf --stream
  docvlm ask page.png "What is the title of this page?" --model ~/models/Qwen-VL-Chat
)";

inline constexpr const char* task_help = R"(usage: docvlm ocr|table|formula IMAGE [--model DIR] [--max-tokens N] [--stream] [--weights W]
                  [--device cpu|cuda[:N]]
                                [--grid-tables]

Runs one task on one crop and prints the result: ocr → text, table → HTML, formula → LaTeX
(in \[ \] with MinerU2.5). With the embedded model, ocr and table segment the crop into lines
first (a table's rows, columns and spans come from the model's table splitter or table task,
else — or with --grid-tables — from the text's positions and rules) and formula reads the crop
in one pass; with MinerU2.5 the table comes from the model's OTSL. --stream prints the text as it
is generated.

examples:
  docvlm ocr line.png
  docvlm formula equation.png
  docvlm table crop.png --model ~/models/MinerU2.5-2509-1.2B
)";

inline constexpr const char* quantize_help = R"(usage: docvlm quantize HF_DIR OUT_DIR [--group 32|64|128]

Quantises every linear layer of a Hugging Face checkpoint to int8 (symmetric, per output channel,
or per group of 32/64/128 input values) in the layout docvlm's kernels use, and writes it to
OUT_DIR/model.safetensors with the folder's config, preprocessor and tokenizer files. Models with
an int8 weight policy load it without quantising or repacking; other tensors are kept as they are.

example:
  docvlm quantize ~/models/MinerU2.5-2509-1.2B ~/models/MinerU2.5-2509-1.2B-int8
)";

inline constexpr const char* info_help = R"(usage: docvlm info CHECKPOINT

Lists what a checkpoint holds without loading it into memory: the model family and sizes from
config.json (when the folder has one), tensor count and parameters per top-level prefix, the
dtypes used, and the size of each safetensors file.

example:
  docvlm info ~/models/MinerU2.5-2509-1.2B
)";

inline constexpr const char* golden_help = R"(usage: docvlm golden-check DIR [--device cpu|cuda[:N]]

Loads DIR with the dynamic Qwen2-VL preset (float32) and checks, against the reference tensors
present: preprocessing (pixel_values, image_grid_thw), M-RoPE positions, every traced vision and
decoder tensor, every vision block and decoder layer, logits, and greedy generation with the KV
cache (generated_ids, generated_step_logits). Prints the worst error of each tensor.
Tolerances: pixel values 1e-5 absolute, tensors 1e-4 of the tensor's largest magnitude,
ids and positions exact. Exit status 0 only if every check passes.
--device runs the decoder through that backend (backend::DeviceDecoder; "cpu" runs it through
the CPU backend): the vision tensors, logits, step logits and greedy ids are then compared.

example:
  docvlm golden-check tests/data/golden/qwen2vl-tiny-a
)";

}  // namespace cli_help

#!/usr/bin/env bash
# Accuracy and speed of `docvlm parse` (embedded model unless --model is passed through) on a
# real-pages split — a folder with manifest.json, images/ and truth/, and score_pages.py beside it
# (the developers' evaluation pages are a benchmark kept outside the repository) — with Tesseract
# timed in the same run.
#
#   tools/eval/real_pages.sh SPLIT_DIR [extra docvlm parse flags...]
#
# Writes build/eval/<split>/docvlm/<id>.md, build/eval/<split>/tesseract/<id>.txt and the scores
# of both (score_pages.py, CER/WER/NED per kind), then prints wall time per page for each.
# Needs: build/bin/docvlm (tools/dev demo builds it), tesseract-ocr + tesseract-ocr-eng (apt).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ $# -lt 1 ] || [ ! -f "$1/manifest.json" ]; then
  echo "usage: tools/eval/real_pages.sh SPLIT_DIR [docvlm parse flags...]" >&2
  echo "  SPLIT_DIR: a page split (manifest.json, images/, truth/) with score_pages.py in its parent folder;" >&2
  echo "  ${1:+no split at '$1'; }the evaluation pages are a benchmark kept outside the repository" >&2
  exit 2
fi
split=$(cd "$1" && pwd)
shift
name=$(basename "$split")
out=$root/build/eval/$name
scorer=$(dirname "$split")/score_pages.py
[ -f "$scorer" ] || { echo "real_pages.sh: no score_pages.py beside the split ($scorer)" >&2; exit 2; }
mkdir -p "$out/docvlm" "$out/tesseract"
ids=$(python3 -c "import json,sys; print(' '.join(p['id'] for p in json.load(open(sys.argv[1]))['pages']))" "$split/manifest.json")
# image file of each page, as the manifest names it (PNG for born-digital pages, JPEG for scans)
image_of() { python3 -c "import json,sys; print(next(p['image'] for p in json.load(open(sys.argv[1]))['pages'] if p['id'] == sys.argv[2]))" "$split/manifest.json" "$1"; }

echo "== docvlm parse (2 threads) on $(echo $ids | wc -w) pages"
t0=$(date +%s.%N)
"$root/build/bin/docvlm" parse "$split/images" -o "$out/docvlm" --force --quiet --profile "$@"
t1=$(date +%s.%N)
python3 "$scorer" --split "$split" --pred "$out/docvlm" --json "$out/docvlm.json" --quiet

if command -v tesseract >/dev/null; then
  echo "== tesseract (OMP_THREAD_LIMIT=1, one page at a time)"
  t2=$(date +%s.%N)
  for id in $ids; do
    OMP_THREAD_LIMIT=1 tesseract "$split/$(image_of "$id")" "$out/tesseract/$id" -l eng >/dev/null 2>&1
  done
  t3=$(date +%s.%N)
  python3 "$scorer" --split "$split" --pred "$out/tesseract" --json "$out/tesseract.json" --quiet
else
  t2=0; t3=0
  echo "(tesseract not installed: apt-get install tesseract-ocr tesseract-ocr-eng)"
fi
python3 - "$t0" "$t1" "$t2" "$t3" $(echo $ids | wc -w) <<'PY'
import sys
t0, t1, t2, t3, n = map(float, sys.argv[1:])
d = (t1 - t0) / n
print(f"wall time per page: docvlm {d:.2f} s (model load included)", end="")
if t3 > t2 > 0:
    t = (t3 - t2) / n
    print(f", tesseract {t:.2f} s (1 thread); docvlm/tesseract time ratio {d / t:.2f}")
else:
    print()
PY

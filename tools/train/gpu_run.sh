#!/usr/bin/env bash
# One training stretch on a machine with a GPU (the `device` tool's machine: a CUDA PyTorch, its
# own python3, numpy, Pillow and matplotlib, but none of the Debian fonts, poppler or PDFs):
# makes the data from a kit (make_data.py --make-kit, written on the development machine and
# carried along), trains from the shipped weights with --device cuda, exports, and evaluates.
#
#   tools/train/gpu_run.sh KIT OUT MINUTES [train.py flags...]
#
# KIT: the kit folder; OUT: where the exported model (config.json, model.safetensors), the
# training log and the evaluation go; MINUTES: training time (data making comes before it).
# DEVICE=cpu runs the same steps on the CPU (a dry run of the script). Data sizes scale with the
# machine's cores; TABLE_SHARDS, TEXT_SHARDS and FORMULA_SHARDS (per worker) override them.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: tools/train/gpu_run.sh KIT OUT MINUTES [train.py flags...]" >&2; exit 2; }
kit=$1 out=$2 minutes=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
cores=$(nproc)
workers=$(( cores > 2 ? cores - 1 : 1 ))
data=${DATA:-/tmp/docvlm-gpu-data}
mkdir -p "$out" "$data"
t0=$(date +%s)
say() { echo "[gpu_run $(( $(date +%s) - t0 )) s] $*"; }

say "making data with $workers workers from $kit"
"$py" "$here/make_data.py" --kit "$kit" --out "$data" --split val --table-only --shards 1 --shard-size 400 --workers 1 > "$out/data-val-table.log" 2>&1 &
"$py" "$here/make_data.py" --kit "$kit" --out "$data" --split val --mix 0,0.7,0.3 --shards 1 --workers 1 > "$out/data-val-text.log" 2>&1 &
"$py" "$here/make_data.py" --kit "$kit" --out "$data" --split train --table-only --shards "${TABLE_SHARDS:-1}" --shard-size 2000 \
    --workers "$workers" > "$out/data-train-table.log" 2>&1
"$py" "$here/make_data.py" --kit "$kit" --out "$data" --split train --mix 0,0.75,0.25 --shards "${TEXT_SHARDS:-1}" \
    --workers "$workers" > "$out/data-train-text.log" 2>&1
"$py" "$here/make_data.py" --kit "$kit" --out "$data" --split train --formula-only --shards "${FORMULA_SHARDS:-1}" \
    --workers "$workers" --seed 5 > "$out/data-train-formula.log" 2>&1
wait
say "data: $(ls "$data"/*.npz | wc -l) shards, $(du -sh "$data" | cut -f1)"

hours=$("$py" -c "print($minutes / 60)")
"$py" "$here/train.py" --data "$data" --run "$data/run" --init "$root/models/docvlm-small/model.safetensors" \
    --device "$device" --threads "$cores" --hours "$hours" "$@" 2>&1 | tee "$out/train.log"
say "trained"
"$py" "$here/export.py" --run "$data/run" --out "$out/model" 2>&1 | tee "$out/export.log"
"$py" "$here/evaluate.py" --data "$data" --model "$out/model" --n 128 --tables 32 --qat --device "$device" --threads "$cores" \
    > "$out/eval.json" 2> "$out/eval.log" || true
say "done: $(ls "$out")"

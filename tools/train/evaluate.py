#!/usr/bin/python3
"""Held-out accuracy of a training checkpoint or an exported model folder on the validation shards
(documents held out of training): CER, exact-match rate and loss per task, float and QAT int8.

    tools/train/evaluate.py --data /work/data (--run RUN | --model models/docvlm-small) [--n 256]
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import Config, DocVLM, QLinear  # noqa: E402
from train import Shards, evaluate  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--run")
    ap.add_argument("--model")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--qat", action="store_true", help="simulate int8 as in training")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.run:
        cfg = Config(**{k: v for k, v in json.loads((Path(a.run) / "config.json").read_text()).items() if k in Config.__dataclass_fields__})
        model = DocVLM(cfg)
        state = torch.load(Path(a.run) / "last.pt")
        model.load_state_dict(state["model"])
        print(f"checkpoint step {state['step']}")
    else:
        from reference import load_model
        model = load_model(Path(a.model))
    model = model.bfloat16()
    QLinear.qat = a.qat
    val = {t: Shards(glob.glob(f"{a.data}/{t}-val-*.npz"), t) for t in ("text", "formula")}
    print(json.dumps(evaluate(model, val, n=a.n), indent=1))


if __name__ == "__main__":
    main()

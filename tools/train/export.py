#!/usr/bin/python3
"""Exports a training checkpoint as docvlm's model folder: config.json + model.safetensors.

Every Linear weight is stored int8 per output channel exactly as the QAT forward quantises it
(scale = max|w| / 127 in float32, q = round-half-even(w / scale)): `<name>` I8 [out, in] and
`<name>_scale` F32 [out]. Everything else (biases, norms, embeddings, anchors, gates) is float32.

    tools/train/export.py --run /work/data/run1 --out models/docvlm-small
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import Config, DocVLM, QLinear  # noqa: E402
from safetensors_io import write_safetensors  # noqa: E402


def quantized_names(model: DocVLM) -> set[str]:
    return {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, QLinear)}


def export_state(model: DocVLM) -> dict[str, np.ndarray]:
    qn = quantized_names(model)
    out = {}
    for name, t in model.state_dict().items():
        if name.startswith("ctc."):  # training aid only
            continue
        t = t.detach().float()
        if name in qn:
            s = t.abs().amax(dim=1) / 127.0
            s = torch.where(s > 0, s, torch.ones_like(s))
            q = torch.clamp(torch.round(t / s[:, None]), -127, 127).to(torch.int8)
            out[name] = q.numpy()
            out[name + "_scale"] = s.numpy().astype(np.float32)
        else:
            out[name] = t.numpy().astype(np.float32)
    return out


def save_model(model: DocVLM, out: Path, metadata: dict[str, str] | None = None):
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(model.c.to_json(), indent=1) + "\n")
    write_safetensors(str(out / "model.safetensors"), export_state(model), metadata)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    state = torch.load(Path(a.run) / "last.pt", map_location="cpu")
    cfg = Config(**{k: v for k, v in json.loads((Path(a.run) / "config.json").read_text()).items() if k in Config.__dataclass_fields__})
    model = DocVLM(cfg)
    model.load_state_dict(state["model"])
    model.c.ctc_head = False
    save_model(model, Path(a.out), {"step": str(state["step"]), "format": "docvlm_small int8 per channel"})
    print(f"step {state['step']}: wrote {a.out} ({os.path.getsize(Path(a.out) / 'model.safetensors') / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()

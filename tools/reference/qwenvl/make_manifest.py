#!/usr/bin/python3
"""Write GOLDEN_DIR/manifest.json: sha256/size (and .npy shape/dtype) of every file of the golden set and of
the generator folder, plus key facts from generation_report.json.  Usage: make_manifest.py GOLDEN_DIR"""
import hashlib
import json
import os
import sys

import numpy as np

D = os.path.abspath(sys.argv[1])
GEN = os.path.dirname(os.path.abspath(__file__))


def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


rep = json.load(open(os.path.join(D, "generation_report.json")))
files = {}
for f in sorted(os.listdir(D)):
    if f == "manifest.json":
        continue
    p = os.path.join(D, f)
    e = {"sha256": sha(p), "bytes": os.path.getsize(p)}
    if f.endswith(".npy"):
        a = np.load(p)
        e["shape"] = list(a.shape)
        e["dtype"] = str(a.dtype)
    files[f] = e
gen = {}
for root, dirs, fs in os.walk(GEN):
    dirs[:] = sorted(d for d in dirs if d != "__pycache__")
    for f in sorted(fs):
        p = os.path.join(root, f)
        gen[os.path.relpath(p, GEN)] = sha(p)
m = {
    "set": "qwenvl-tiny-a",
    "reference": {
        "modeling_qwen.py": "ivattyue/SC-Tune@58986064f4312ba8f2691cc9e301397f1d77886f:Qwen-VL-Chat/modeling_qwen.py",
        "configuration_qwen.py": "ivattyue/SC-Tune@58986064f4312ba8f2691cc9e301397f1d77886f:Qwen-VL-Chat/configuration_qwen.py",
        "qwen_generation_utils.py": "ivattyue/SC-Tune@58986064f4312ba8f2691cc9e301397f1d77886f:Qwen-VL-Chat/qwen_generation_utils.py",
        "visual.py": "YUECHE77/SPIN@a6ddf4a3f583af9192175da40d99990324341955:qwen_vl/visual.py",
        "sha256": rep["ref_sha256"],
    },
    "seed": 2033,
    "versions": rep["versions"],
    "image_path_in_ids": "/tmp/q.png",
    "seq_len": rep["seq"],
    "img_start_pos": rep["img_a"],
    "img_end_pos": rep["img_b"],
    "input_ids": np.load(os.path.join(D, "input_ids.npy")).tolist()[0],
    "generated_ids": rep["gen_ids"],
    "nocache_ids_identical": rep["nocache_ids_identical"],
    "nocache_max_logit_diff": rep["nocache_max_logit_diff"],
    "min_top1_top2_gap": rep["min_top1_top2_gap"],
    "ntk_logn_bitexact": rep["ntk_logn_main_logits_bitexact"] and rep["ntk_logn_step_logits_bitexact"],
    "files": files,
    "generator_files": gen,
}
with open(os.path.join(D, "manifest.json"), "w") as f:
    json.dump(m, f, indent=1)
    f.write("\n")
print("manifest: %d files, %d generator files" % (len(files), len(gen)))

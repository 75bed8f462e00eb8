#!/usr/bin/env python3
"""Random-weight MinerU2.5-shaped GGUF files for llama.cpp, to run it beside docvlm on the same shapes.

  make_gguf.py LLAMA_CPP_DIR TOKENIZER_DIR OUT_DIR

LLAMA_CPP_DIR is a llama.cpp checkout (its gguf-py writes the files); TOKENIZER_DIR holds Qwen2's
vocab.json and merges.txt (mtmd tokenizes the image markers). Writes OUT_DIR/qwen2vl-text-q8.gguf
(Qwen2-0.5B decoder: 24 x 896, 14 / 2 heads, mlp 4864, M-RoPE 16/24/24; Q8_0) and
OUT_DIR/mmproj-qwen2vl-q8.gguf (the Qwen2-VL vision tower: 32 x 1280, 16 heads, mlp 5120, patch 14,
2 x 2 merger to 896; Q8_0 matrices, f16 patch embedding). The sizes are bench/bench_model.cpp's.
"""
import json
import sys

import numpy as np

llama, tokdir, out = sys.argv[1:4]
sys.path.insert(0, llama + "/gguf-py")
import gguf  # noqa: E402
from gguf import GGMLQuantizationType as Q  # noqa: E402

rng = np.random.default_rng(0)


def q8(w, name, rows, cols, scale):
    a = rng.standard_normal((rows, cols), dtype=np.float32) * scale
    w.add_tensor(name, gguf.quants.quantize(a, Q.Q8_0), raw_dtype=Q.Q8_0)


def vec(w, name, n, scale=None):  # ones, or random values of that scale
    w.add_tensor(name, np.ones(n, np.float32) if scale is None else rng.standard_normal(n, dtype=np.float32) * scale)


def text_model(path):
    V, H, L, F, NH, NKV, D = 151936, 896, 24, 4864, 14, 2, 64
    vocab = json.load(open(tokdir + "/vocab.json", encoding="utf-8"))
    toks, types = [None] * V, [1] * V  # 1 normal, 3 control, 5 unused
    for t, i in vocab.items():
        toks[i] = t
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
               "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
               "<|image_pad|>", "<|video_pad|>"]
    for k, s in enumerate(special):
        toks[151643 + k], types[151643 + k] = s, 3
    for i in range(V):
        if toks[i] is None:
            toks[i], types[i] = f"[PAD{i}]", 5
    merges = [ln.rstrip("\n") for ln in open(tokdir + "/merges.txt", encoding="utf-8") if ln.strip() and not ln.startswith("#version")]
    w = gguf.GGUFWriter(path, "qwen2vl")
    w.add_context_length(32768), w.add_embedding_length(H), w.add_block_count(L), w.add_feed_forward_length(F)
    w.add_head_count(NH), w.add_head_count_kv(NKV), w.add_rope_freq_base(1e6), w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_dimension_sections([16, 24, 24, 0])
    w.add_tokenizer_model("gpt2"), w.add_tokenizer_pre("qwen2"), w.add_token_list(toks), w.add_token_types(types)
    w.add_token_merges(merges), w.add_bos_token_id(151643), w.add_eos_token_id(151645), w.add_add_bos_token(False)
    w.add_file_type(7)
    q8(w, "token_embd.weight", V, H, 0.02), vec(w, "output_norm.weight", H)
    for i in range(L):
        b = f"blk.{i}."
        vec(w, b + "attn_norm.weight", H), vec(w, b + "ffn_norm.weight", H)
        for name, rows in (("attn_q", NH * D), ("attn_k", NKV * D), ("attn_v", NKV * D)):
            q8(w, b + name + ".weight", rows, H, 0.033), vec(w, b + name + ".bias", rows, 0.02)
        q8(w, b + "attn_output.weight", H, NH * D, 0.033)
        q8(w, b + "ffn_gate.weight", F, H, 0.033), q8(w, b + "ffn_up.weight", F, H, 0.033), q8(w, b + "ffn_down.weight", H, F, 0.014)
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()


def mmproj(path):
    VD, VL, VF, P, H = 1280, 32, 5120, 14, 896
    w = gguf.GGUFWriter(path, "clip")
    w.add_bool("clip.has_vision_encoder", True), w.add_string("clip.projector_type", "qwen2vl_merger")
    w.add_uint32("clip.vision.embedding_length", VD), w.add_uint32("clip.vision.feed_forward_length", VF)
    w.add_uint32("clip.vision.block_count", VL), w.add_uint32("clip.vision.projection_dim", H)
    w.add_uint32("clip.vision.attention.head_count", 16), w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    w.add_uint32("clip.vision.image_size", 560), w.add_uint32("clip.vision.patch_size", P)
    w.add_array("clip.vision.image_mean", [0.48145466, 0.4578275, 0.40821073])
    w.add_array("clip.vision.image_std", [0.26862954, 0.26130258, 0.27577711])
    w.add_uint32("clip.vision.spatial_merge_size", 2)
    w.add_uint32("clip.vision.image_min_pixels", 3136), w.add_uint32("clip.vision.image_max_pixels", 1605632)  # MinerU2.5's processor
    w.add_bool("clip.use_gelu", False), w.add_uint32("general.file_type", 7)
    pe = (rng.standard_normal((VD, 3, P, P), dtype=np.float32) / 34).astype(np.float16)  # the Conv3d's two frames
    w.add_tensor("v.patch_embd.weight", pe), w.add_tensor("v.patch_embd.weight.1", pe.copy())
    for i in range(VL):
        b = f"v.blk.{i}."
        for n in ("ln1", "ln2"):
            vec(w, b + n + ".weight", VD), vec(w, b + n + ".bias", VD, 0.0)
        for n in ("attn_q", "attn_k", "attn_v", "attn_out"):
            q8(w, b + n + ".weight", VD, VD, 0.028), vec(w, b + n + ".bias", VD, 0.0)
        q8(w, b + "ffn_up.weight", VF, VD, 0.028), vec(w, b + "ffn_up.bias", VF, 0.0)
        q8(w, b + "ffn_down.weight", VD, VF, 0.014), vec(w, b + "ffn_down.bias", VD, 0.0)
    vec(w, "v.post_ln.weight", VD), vec(w, "v.post_ln.bias", VD, 0.0)
    q8(w, "mm.0.weight", 4 * VD, 4 * VD, 0.014), vec(w, "mm.0.bias", 4 * VD, 0.0)
    q8(w, "mm.2.weight", H, 4 * VD, 0.014), vec(w, "mm.2.bias", H, 0.0)
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()


text_model(out + "/qwen2vl-text-q8.gguf")
mmproj(out + "/mmproj-qwen2vl-q8.gguf")
print("wrote", out + "/qwen2vl-text-q8.gguf", out + "/mmproj-qwen2vl-q8.gguf")

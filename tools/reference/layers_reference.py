#!/usr/bin/python3
"""PyTorch references for docvlm's layer templates (issue: layers and Model<Config>).

Writes tests/data/reference/layers.safetensors: for every case, the inputs, the weights and the
output computed here with torch (Debian python3-torch 1.13, float32, CPU), named "<case>.<tensor>";
the cases' settings are JSON in the file's __metadata__["cases"]. The formulas follow the
published definitions (Hugging Face's Qwen2 / Qwen2-VL code for norms, rope and attention;
Flamingo for gated cross-attention). tests/test_layers.cpp loads the same weights into the C++
layers and compares.

    /usr/bin/python3 tools/reference/layers_reference.py
"""
import json
import math
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "reference", "layers.safetensors")
torch.manual_seed(20261125)
tensors = {}
cases = {}


def put(case, name, t):
    tensors[f"{case}.{name}"] = t.detach().to(torch.float32).contiguous()


def rand(*shape, scale=1.0):
    return torch.randn(*shape) * scale


def linear(case, name, n_out, n_in, bias=True):
    w = rand(n_out, n_in, scale=1 / math.sqrt(n_in))
    put(case, name + ".weight", w)
    b = None
    if bias:
        b = rand(n_out, scale=0.1)
        put(case, name + ".bias", b)
    return lambda x: torch.nn.functional.linear(x, w, b)


def rms_norm(case, name, dim, eps=1e-6):
    w = 1 + rand(dim, scale=0.1)
    put(case, name + ".weight", w)

    def f(x):
        var = x.pow(2).mean(-1, keepdim=True)
        return w * (x * torch.rsqrt(var + eps))

    return f


ACTS = {
    "gelu_erf": lambda x: torch.nn.functional.gelu(x),
    "gelu_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "silu": torch.nn.functional.silu,
}


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rope_1d(pos, hd, theta):  # [n] -> cos, sin [n, hd]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    f = pos.float()[:, None] * inv[None, :]
    emb = torch.cat((f, f), dim=-1)
    return emb.cos(), emb.sin()


def rope_2d(rows, cols, hd, theta=10000.0):  # Qwen2-VL vision: dim = hd / 2, halves for row and column
    dim = hd // 2
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    f = torch.cat((rows.float()[:, None] * inv[None, :], cols.float()[:, None] * inv[None, :]), dim=-1)  # [n, hd/2]
    emb = torch.cat((f, f), dim=-1)
    return emb.cos(), emb.sin()


def attention(q, k, v, heads, kv_heads, mask):  # q [n, H*hd], k/v [m, KV*hd], mask [n, m] bool (True = visible)
    n, m = q.shape[0], k.shape[0]
    hd = q.shape[1] // heads
    q = q.view(n, heads, hd).transpose(0, 1)
    k = k.view(m, kv_heads, hd).transpose(0, 1).repeat_interleave(heads // kv_heads, dim=0)
    v = v.view(m, kv_heads, hd).transpose(0, 1).repeat_interleave(heads // kv_heads, dim=0)
    s = q @ k.transpose(1, 2) / math.sqrt(hd)
    s = s.masked_fill(~mask[None], float("-inf"))
    p = torch.softmax(s.float(), dim=-1)
    return (p @ v).transpose(0, 1).reshape(n, heads * hd)


def visible(n, causal=False, window=0, anchors=0):
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    m = torch.ones(n, n, dtype=torch.bool)
    if causal:
        m &= j <= i
    if window:
        m &= ((i - j).abs() <= window) | (i < anchors) | (j < anchors)
    return m


# ---- norms and MLPs ----
for act in ["gelu_erf", "gelu_tanh", "quick_gelu"]:
    c = f"mlp_{act}"
    x = rand(13, 48)
    fc1, fc2 = linear(c, "fc1", 96, 48), linear(c, "fc2", 48, 96)
    put(c, "x", x)
    put(c, "y", fc2(ACTS[act](fc1(x))))
    cases[c] = {"kind": "mlp", "act": act, "gated": False}
c = "mlp_swiglu"
x = rand(13, 48)
gate, up, down = linear(c, "gate", 80, 48, False), linear(c, "up", 80, 48, False), linear(c, "down", 48, 80, False)
put(c, "x", x)
put(c, "y", down(torch.nn.functional.silu(gate(x)) * up(x)))
cases[c] = {"kind": "mlp", "act": "silu", "gated": True}
c = "rmsnorm"
x = rand(11, 64, scale=3)
norm = rms_norm(c, "norm", 64)
put(c, "x", x)
put(c, "y", norm(x))
cases[c] = {"kind": "rmsnorm"}
c = "layernorm"
x = rand(11, 64, scale=3) + 1
w, b = 1 + rand(64, scale=0.1), rand(64, scale=0.1)
put(c, "norm.weight", w)
put(c, "norm.bias", b)
put(c, "x", x)
put(c, "y", torch.nn.functional.layer_norm(x, (64,), w, b, 1e-6))
cases[c] = {"kind": "layernorm"}

# ---- self-attention ----
def self_attention_case(c, n, dim, heads, kv_heads, bias, pos, mask, extra):
    hd = dim // heads
    x = rand(n, dim)
    q, k, v = linear(c, "q", heads * hd, dim, bias), linear(c, "k", kv_heads * hd, dim, bias), linear(c, "v", kv_heads * hd, dim, bias)
    o = linear(c, "o", dim, heads * hd, bias)
    qq, kk, vv = q(x), k(x), v(x)
    if pos is not None:
        cos, sin = pos
        qq = (qq.view(n, heads, hd) * cos[:, None] + rotate_half(qq.view(n, heads, hd)) * sin[:, None]).reshape(n, -1)
        kk = (kk.view(n, kv_heads, hd) * cos[:, None] + rotate_half(kk.view(n, kv_heads, hd)) * sin[:, None]).reshape(n, -1)
    put(c, "x", x)
    put(c, "y", o(attention(qq, kk, vv, heads, kv_heads, mask)))
    cases[c] = dict(kind="self_attention", heads=heads, kv_heads=kv_heads, **extra)


n = 37
rows = torch.arange(n) // 6
cols = torch.arange(n) % 6
put("attn_full_rope2d", "rows", rows.float())
put("attn_full_rope2d", "cols", cols.float())
self_attention_case("attn_full_rope2d", n, 64, 4, 4, True, rope_2d(rows, cols, 16), visible(n), {"mask": "full", "pos": "rope2d"})
self_attention_case("attn_causal_gqa_rope1d", 29, 64, 4, 2, True, rope_1d(torch.arange(29), 16, 10000.0), visible(29, causal=True),
                    {"mask": "causal", "pos": "rope1d", "theta": 10000.0})
self_attention_case("attn_window_anchor", 50, 32, 2, 2, False, None, visible(50, window=6, anchors=3),
                    {"mask": "window_anchor", "pos": "none", "window": 6, "anchors": 3})

# ---- gated cross-attention ----
for c, per_channel in [("xattn_scalar_gate", False), ("xattn_channel_gate", True)]:
    n, nv, dim, vdim, heads, kv_heads = 9, 21, 64, 48, 4, 2
    hd = dim // heads
    x, vis = rand(n, dim), rand(nv, vdim)
    norm1, norm2 = rms_norm(c, "norm1", dim), rms_norm(c, "norm2", dim)
    q, k, v, o = linear(c, "q", dim, dim), linear(c, "k", kv_heads * hd, vdim), linear(c, "v", kv_heads * hd, vdim), linear(c, "o", dim, dim)
    fc1, fc2 = linear(c, "fc1", 2 * dim, dim), linear(c, "fc2", dim, 2 * dim)
    g_attn = rand(dim if per_channel else 1, scale=0.8)
    g_mlp = rand(dim if per_channel else 1, scale=0.8)
    put(c, "attn_gate", g_attn)
    put(c, "mlp_gate", g_mlp)
    h = x + torch.tanh(g_attn) * o(attention(q(norm1(x)), k(vis), v(vis), heads, kv_heads, torch.ones(n, nv, dtype=torch.bool)))
    y = h + torch.tanh(g_mlp) * fc2(torch.nn.functional.gelu(fc1(norm2(h))))
    put(c, "x", x)
    put(c, "vision", vis)
    put(c, "y", y)
    cases[c] = {"kind": "gated_xattn", "heads": heads, "kv_heads": kv_heads, "act": "gelu_erf"}


def write(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        t = tensors[name]
        data = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# A learned position table on a 16 x 16 grid read at other grids, as Qwen-VL's get_abs_pos does:
# F.interpolate(mode="bicubic", align_corners=False) over the grid, channels independent.
def grid_resize_case(c, src, channels, sides):
    table = rand(src * src, channels)
    put(c, "x", table)
    grid = table.reshape(1, src, src, channels).permute(0, 3, 1, 2)
    for side in sides:
        y = torch.nn.functional.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
        put(c, f"y{side}", y.permute(0, 2, 3, 1).reshape(side * side, channels))
    cases[c] = {"kind": "grid_resize", "src": src, "channels": channels, "sides": sides}


grid_resize_case("grid_resize", 16, 6, [32, 24, 5, 4])

write(OUT, tensors, {"cases": json.dumps(cases), "torch": torch.__version__})
print(f"wrote {len(cases)} cases, {len(tensors)} tensors to {os.path.normpath(OUT)} (torch {torch.__version__})")

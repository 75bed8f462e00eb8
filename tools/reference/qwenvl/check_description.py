#!/usr/bin/python3
"""Independent re-implementation of Qwen-VL-Chat from the README's "What the reference code computes"
section, in float64 numpy (no reference module, no torch modules), compared against the golden files.
Proves that the description is complete.  Usage: /usr/bin/python3 check_description.py GOLDEN_DIR"""
import json
import math
import os
import struct
import sys

import numpy as np
from PIL import Image

D = os.path.abspath(sys.argv[1])
cfg = json.load(open(os.path.join(D, "config.json")))
V = cfg["visual"]


def load_st(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    h = json.loads(data[8:8 + n])
    out = {}
    for k, i in h.items():
        if k == "__metadata__":
            continue
        s, e = i["data_offsets"]
        out[k] = np.frombuffer(data[8 + n + s:8 + n + e], "<f4").reshape(i["shape"]).astype(np.float64)
    return out


W = load_st(os.path.join(D, "model.safetensors"))
G = {f[:-4]: np.load(os.path.join(D, f)) for f in os.listdir(D) if f.endswith(".npy")}
worst = []


def cmp(name, ours, tol=1e-4):
    g = G[name].astype(np.float64)
    ours = np.asarray(ours, dtype=np.float64).reshape(g.shape)
    err = np.abs(ours - g).max() / max(np.abs(g).max(), 1e-30)
    worst.append((err, name))
    status = "ok" if err <= tol else "FAIL"
    print("%-28s %-14s rel.err %.2e %s" % (name, str(g.shape), err, status))
    assert err <= tol, name


def layer_norm(x, w, b, eps=1e-6):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return x / np.sqrt((x ** 2).mean(-1, keepdims=True) + eps) * w


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def gelu(x):
    from math import erf
    return 0.5 * x * (1.0 + np.vectorize(erf)(x / math.sqrt(2.0)))


def silu(x):
    return x / (1.0 + np.exp(-x))


def cubic_w(t, A=-0.75):
    def c1(x):
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def c2(x):
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
    return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]


def bicubic_matrix(n_in, n_out):
    """PyTorch upsample_bicubic2d, align_corners=False: src = (dst + 0.5) * in/out - 0.5 (not clamped),
    taps floor(src)-1 .. floor(src)+2 clamped to [0, n_in-1], Keys cubic with A = -0.75."""
    M = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for o in range(n_out):
        src = (o + 0.5) * scale - 0.5
        i0 = math.floor(src)
        t = src - i0
        for k, w in enumerate(cubic_w(t)):
            M[o, min(max(i0 - 1 + k, 0), n_in - 1)] += w
    return M


def abs_pos(table, tgt_tokens):
    src = int(math.sqrt(table.shape[0]))
    tgt = int(math.sqrt(tgt_tokens))
    if src == tgt:
        return table
    M = bicubic_matrix(src, tgt)
    t = table.reshape(src, src, -1)
    return np.einsum("ri,cj,ijd->rcd", M, M, t).reshape(tgt * tgt, -1)


def sincos_2d(dim, g):
    def one(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2) / (d / 2.0))
        out = pos.reshape(-1)[:, None] * omega[None]
        return np.concatenate([np.sin(out), np.cos(out)], 1)
    rows, cols = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
    # first half encodes the COLUMN (x) index, second half the ROW (y) index; token = row*g + col
    return np.concatenate([one(dim // 2, cols), one(dim // 2, rows)], 1)


# ---------------------------------------------------------------- preprocessing
S, P = V["image_size"], V["patch_size"]
img = Image.open(os.path.join(D, "input.png")).convert("RGB").resize((S, S), Image.BICUBIC)
u8 = np.asarray(img)
assert np.array_equal(u8, G["pp_resized"]), "pp_resized"
print("pp_resized                   exact")
mean = np.array([0.48145466, 0.4578275, 0.40821073])
std = np.array([0.26862954, 0.26130258, 0.27577711])
px = ((u8.astype(np.float64) / 255.0 - mean) / std).transpose(2, 0, 1)
cmp("pixel_values", px[None], 1e-6)

# ---------------------------------------------------------------- ViT
g = S // P
n = g * g
width, heads = V["width"], V["heads"]
hn = width // heads
vp = "transformer.visual."
patches = px.reshape(3, g, P, g, P).transpose(1, 3, 0, 2, 4).reshape(n, 3 * P * P)   # token = row*g+col
x = patches @ W[vp + "conv1.weight"].reshape(width, -1).T                              # no bias
cmp("vision_patch_embeds", x)
pos = abs_pos(W[vp + "positional_embedding"], n)
cmp("vision_pos_embed", pos)
x = layer_norm(x + pos, W[vp + "ln_pre.weight"], W[vp + "ln_pre.bias"])
cmp("vision_ln_pre", x)
outs = []
for L in range(V["layers"]):
    p = vp + "transformer.resblocks.%d." % L
    h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"])
    qkv = h @ W[p + "attn.in_proj.weight"].T + W[p + "attn.in_proj.bias"]          # [n, 3*width]
    qkv = qkv.reshape(n, heads, 3 * hn)                                              # per head [q|k|v]
    q, k, v = qkv[..., :hn], qkv[..., hn:2 * hn], qkv[..., 2 * hn:]
    att = softmax(np.einsum("qhd,khd->hqk", q / math.sqrt(hn), k))                  # no mask
    ctx = np.einsum("hqk,khd->qhd", att, v).reshape(n, width)
    ao = ctx @ W[p + "attn.out_proj.weight"].T + W[p + "attn.out_proj.bias"]
    x1 = x + ao
    h2 = layer_norm(x1, W[p + "ln_2.weight"], W[p + "ln_2.bias"])
    fc = h2 @ W[p + "mlp.c_fc.weight"].T + W[p + "mlp.c_fc.bias"]
    ge = gelu(fc)
    cp = ge @ W[p + "mlp.c_proj.weight"].T + W[p + "mlp.c_proj.bias"]
    x = x1 + cp
    if L == 0:
        cmp("vision_blk0_ln_1", h)
        cmp("vision_blk0_q", q)
        cmp("vision_blk0_k", k)
        cmp("vision_blk0_v", v)
        cmp("vision_blk0_attn_context", ctx)
        cmp("vision_blk0_attn_out", ao)
        cmp("vision_blk0_ln_2", h2)
        cmp("vision_blk0_c_fc", fc)
        cmp("vision_blk0_gelu", ge)
        cmp("vision_blk0_c_proj", cp)
    outs.append(x)
cmp("vision_block_outputs", np.stack(outs))

# ---------------------------------------------------------------- Resampler
rp = vp + "attn_pool."
E = V["output_dim"]
nq = V["n_queries"]
gq = int(math.sqrt(nq))
mh = E // 128
hd_r = E // mh
sc = sincos_2d(E, gq)
assert np.abs(sc - W[rp + "pos_embed"]).max() < 1e-5
cmp("resampler_q_pos", sc, 1e-5)
kv = x @ W[rp + "kv_proj.weight"].T                                                  # no bias
cmp("resampler_kv_proj", kv)
kv = layer_norm(kv, W[rp + "ln_kv.weight"], W[rp + "ln_kv.bias"])
cmp("resampler_ln_kv", kv)
k_pos = abs_pos(W[rp + "pos_embed"], n)
cmp("resampler_k_pos", k_pos)
lq = layer_norm(W[rp + "query"], W[rp + "ln_q.weight"], W[rp + "ln_q.bias"])
cmp("resampler_ln_q", lq)
q_in = lq + W[rp + "pos_embed"]
k_in = kv + k_pos
v_in = kv
cmp("resampler_attn_query_in", q_in)
cmp("resampler_attn_key_in", k_in)
Wi, bi = W[rp + "attn.in_proj_weight"], W[rp + "attn.in_proj_bias"]
q = q_in @ Wi[:E].T + bi[:E]
k = k_in @ Wi[E:2 * E].T + bi[E:2 * E]
v = v_in @ Wi[2 * E:].T + bi[2 * E:]
q, k, v = (t.reshape(t.shape[0], mh, hd_r) for t in (q, k, v))
att = softmax(np.einsum("qhd,khd->hqk", q / math.sqrt(hd_r), k))
cmp("resampler_attn_probs", att.mean(0))
ctx = np.einsum("hqk,khd->qhd", att, v).reshape(nq, E)
ro = ctx @ W[rp + "attn.out_proj.weight"].T + W[rp + "attn.out_proj.bias"]
cmp("resampler_out", ro)
lp = layer_norm(ro, W[vp + "ln_post.weight"], W[vp + "ln_post.bias"])
cmp("vision_ln_post", lp)
feat = lp @ W[vp + "proj"]                                                           # x @ proj, [in, out]
cmp("image_features", feat)

# ---------------------------------------------------------------- merge
ids = G["input_ids"][0].tolist()
isid = V["image_start_id"]
a, b = ids.index(isid), ids.index(isid + 1)
span = ids[a + 1:b - 1]
path = bytes(span[:span.index(isid + 2)]).decode("utf-8")
print("image path from ids: %r, span %d..%d" % (path, a + 1, b - 1))
assert b - a - 1 == nq
emb = W["transformer.wte.weight"][ids].copy()
emb[a + 1:b] = feat
cmp("inputs_embeds", emb)

# ---------------------------------------------------------------- decoder
H = cfg["hidden_size"]
nh = cfg["num_attention_heads"]
hd = cfg["kv_channels"]
eps = cfg["layer_norm_epsilon"]
inv_freq = 1.0 / cfg["rotary_emb_base"] ** (np.arange(0, hd, 2) / hd)
cmp("dec_rope_inv_freq", inv_freq, 1e-6)


def rope_tables(positions):
    f = np.outer(positions, inv_freq)
    e = np.concatenate([f, f], 1)
    return np.cos(e), np.sin(e)


def rot(t, cos, sin):                      # t [s, nh, hd]; rotate_half: pairs (i, i + hd/2)
    rh = np.concatenate([-t[..., hd // 2:], t[..., :hd // 2]], -1)
    return t * cos[:, None] + rh * sin[:, None]


def decoder(xs, start, cache, record=False):
    s = xs.shape[0]
    cos, sin = rope_tables(np.arange(start, start + s))
    outs = []
    for L in range(cfg["num_hidden_layers"]):
        p = "transformer.h.%d." % L
        h = rms_norm(xs, W[p + "ln_1.weight"], eps)
        qkv = h @ W[p + "attn.c_attn.weight"].T + W[p + "attn.c_attn.bias"]
        q, k, v = qkv[:, :H], qkv[:, H:2 * H], qkv[:, 2 * H:]
        q, k, v = (t.reshape(s, nh, hd) for t in (q, k, v))
        qr, kr = rot(q, cos, sin), rot(k, cos, sin)
        if cache is not None:
            if L in cache:
                kr_all = np.concatenate([cache[L][0], kr])
                v_all = np.concatenate([cache[L][1], v])
            else:
                kr_all, v_all = kr, v
            cache[L] = (kr_all, v_all)
        else:
            kr_all, v_all = kr, v
        T = kr_all.shape[0]
        sc_ = np.einsum("qhd,khd->hqk", qr, kr_all) / math.sqrt(hd)
        mask = np.arange(T)[None, :] > (np.arange(s)[:, None] + (T - s))
        sc_ = np.where(mask[None], -np.inf, sc_)
        ctx = np.einsum("hqk,khd->qhd", softmax(sc_), v_all).reshape(s, H)
        ao = ctx @ W[p + "attn.c_proj.weight"].T                                     # no bias
        x1 = xs + ao
        h2 = rms_norm(x1, W[p + "ln_2.weight"], eps)
        w1 = h2 @ W[p + "mlp.w1.weight"].T
        w2 = h2 @ W[p + "mlp.w2.weight"].T
        act = w1 * silu(w2)                                                           # SiLU on w2!
        mo = act @ W[p + "mlp.c_proj.weight"].T
        xs = x1 + mo
        if record and L == 0:
            cmp("dec_l0_ln_1", h)
            cmp("dec_l0_q", q.reshape(s, H))
            cmp("dec_l0_k", k.reshape(s, H))
            cmp("dec_l0_v", v.reshape(s, H))
            cmp("dec_l0_q_rot", qr)
            cmp("dec_l0_k_rot", kr)
            cmp("dec_l0_attn_context", ctx)
            cmp("dec_l0_attn_out", ao)
            cmp("dec_l0_ln_2", h2)
            cmp("dec_l0_w1", w1)
            cmp("dec_l0_w2", w2)
            cmp("dec_l0_act", act)
            cmp("dec_l0_mlp_out", mo)
            cmp("dec_l0_out", xs)
        outs.append(xs)
    fh = rms_norm(xs, W["transformer.ln_f.weight"], eps)
    return np.stack(outs), fh, fh @ W["lm_head.weight"].T                            # untied lm_head


n_gen = G["generated_ids"].shape[0]
cos, sin = rope_tables(np.arange(len(ids) + n_gen - 1))
cmp("dec_rope_cos", cos, 1e-5)
cmp("dec_rope_sin", sin, 1e-5)
cache = {}
lo, fh, logits = decoder(emb, 0, cache, record=True)
cmp("decoder_layer_outputs", lo)
cmp("final_hidden", fh)
cmp("logits", logits)
gen, steps = [], []
last = logits[-1]
pos = len(ids)
for i in range(n_gen):
    steps.append(last)
    t = int(np.argmax(last))
    gen.append(t)
    if i == n_gen - 1:
        break
    _, _, lg = decoder(W["transformer.wte.weight"][[t]], pos, cache)
    pos += 1
    last = lg[-1]
cmp("generated_step_logits", np.stack(steps))
assert gen == G["generated_ids"].tolist(), (gen, G["generated_ids"].tolist())
print("generated ids identical:", gen)
print("worst relative error: %.2e (%s)" % max(worst))

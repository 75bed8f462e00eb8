#!/usr/bin/python3
"""Generate the `qwenvl-tiny-a` golden set: reference tensors of the published Qwen-VL-Chat remote code
(modeling_qwen.py / visual.py / configuration_qwen.py from the Hugging Face checkpoint Qwen/Qwen-VL-Chat)
for a tiny RANDOM model, run on CPU in float32 with Debian 12's python3-torch 1.13.1.

Layout expected next to this script:
  ref/    the reference files, byte-for-byte unmodified (copied into a temporary package `qwen_vl_chat`
          at run time because modeling_qwen.py uses relative imports)
  stubs/  `transformers` (glue only) and `einops` (rearrange for the two patterns used) stand-ins

Usage: /usr/bin/python3 gen_qwenvl_golden.py OUT_DIR
"""
import hashlib
import json
import math
import os
import re
import shutil
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "ref")
REF_FILES = ["modeling_qwen.py", "visual.py", "configuration_qwen.py", "qwen_generation_utils.py"]

_pkgroot = tempfile.mkdtemp(prefix="qwenvl_pkg_")
os.makedirs(os.path.join(_pkgroot, "qwen_vl_chat"))
for _f in REF_FILES:
    shutil.copyfile(os.path.join(REF, _f), os.path.join(_pkgroot, "qwen_vl_chat", _f))
open(os.path.join(_pkgroot, "qwen_vl_chat", "__init__.py"), "w").close()
sys.path[:0] = [os.path.join(HERE, "stubs"), _pkgroot]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
import PIL  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import qwen_vl_chat.modeling_qwen as MQ  # noqa: E402
import qwen_vl_chat.visual as MV  # noqa: E402
from qwen_vl_chat.configuration_qwen import QWenConfig  # noqa: E402

torch.set_num_threads(1)
SEED = int(os.environ.get("QWENVL_SEED", "2033"))
IMAGE_PATH = "/tmp/q.png"          # 10 bytes: fits the 16-token image span (needs <= n_queries-2 bytes)

VISUAL = {
    "heads": 4,
    "image_size": 70,
    "image_start_id": 990,
    "layers": 2,
    "mlp_ratio": 4.0,
    "n_queries": 16,
    "output_dim": 128,
    "patch_size": 14,
    "width": 64,
}
CFG = dict(
    vocab_size=1000,
    hidden_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    kv_channels=32,
    intermediate_size=352,
    emb_dropout_prob=0.0,
    attn_dropout_prob=0.0,
    layer_norm_epsilon=1e-6,
    initializer_range=0.02,
    max_position_embeddings=8192,
    scale_attn_weights=True,
    use_cache=True,
    bf16=False,
    fp16=False,
    fp32=True,
    rotary_pct=1.0,
    rotary_emb_base=10000,
    use_dynamic_ntk=False,
    use_logn_attn=False,
    use_flash_attn=False,
    no_bias=True,
    tie_word_embeddings=False,
    seq_length=2048,
    visual=VISUAL,
)
PRE_IDS = [345, 612, 871, 303, 457]                      # stands for "Picture 1: "
POST_IDS = [398, 725, 512, 640, 333, 901, 467, 588, 702, 315, 846, 529, 377]   # "\n<question>"
N_GEN = 16


# ----------------------------------------------------------------------------- safetensors (own code)
def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name].detach().cpu().contiguous().numpy().astype("<f4", copy=False)
        b = a.tobytes(order="C")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        s, e = info["data_offsets"]
        a = np.frombuffer(data[base + s:base + e], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(a.copy())
    return out


# ----------------------------------------------------------------------------- helpers
def build_model(**overrides):
    c = dict(CFG)
    c.update(overrides)
    cfg = QWenConfig(**c)
    cfg.architectures = ["QWenLMHeadModel"]
    m = MQ.QWenLMHeadModel(cfg)
    m.eval()
    return m


NORM_RE = re.compile(r"(^|\.)ln_[a-z0-9_]+\.weight$")
EMB_NAMES = {
    "transformer.wte.weight",
    "transformer.visual.positional_embedding",
    "transformer.visual.attn_pool.query",
}
FIXED_NAMES = {"transformer.visual.attn_pool.pos_embed"}   # 2D sin-cos table set at init: kept as is


def random_weights(model, seed):
    g = torch.Generator().manual_seed(seed)
    sd = model.state_dict()
    out = {}
    for name in sorted(sd):
        t = sd[name]
        shape = tuple(t.shape)
        if name in FIXED_NAMES:
            out[name] = t.detach().clone().float()
            continue
        if name.endswith("bias"):
            w = torch.randn(shape, generator=g) * 0.1
        elif NORM_RE.search(name):
            w = 1.0 + torch.randn(shape, generator=g) * 0.2
        elif name in EMB_NAMES:
            w = torch.randn(shape, generator=g) * 0.25
        else:
            if name == "transformer.visual.proj":      # used as x @ proj: [in, out]
                fan_in = shape[0]
            else:
                fan_in = int(np.prod(shape[1:]))
            w = torch.randn(shape, generator=g) * (1.5 / math.sqrt(fan_in))
        out[name] = w.float().contiguous()
    return out


def bits_equal(a, b):
    a = a.detach().contiguous().float()
    b = b.detach().contiguous().float()
    return a.shape == b.shape and torch.equal(a.view(torch.int32), b.view(torch.int32))


def make_image(path):
    W, H = 150, 104
    im = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(im)
    # a title line of word boxes
    x = 8
    for w in [22, 14, 30, 18]:
        d.rectangle([x, 6, x + w, 12], fill=(0, 0, 0))
        x += w + 6
    # body text lines
    for row, widths in enumerate([[12, 20, 9, 26, 15, 11], [18, 7, 24, 13, 20], [10, 28, 16, 12, 9, 14]]):
        y = 20 + row * 9
        x = 8
        for w in widths:
            d.rectangle([x, y, x + w, y + 4], fill=(0, 0, 0))
            x += w + 5
    # a ruled table 4 rows x 3 cols
    x0, y0, x1, y1 = 8, 52, 140, 96
    for r in range(5):
        y = y0 + r * (y1 - y0) // 4
        d.line([x0, y, x1, y], fill=(0, 0, 0), width=1)
    for cx in [x0, 52, 98, x1]:
        d.line([cx, y0, cx, y1], fill=(0, 0, 0), width=1)
    for r in range(4):
        for c, (cx0, cx1) in enumerate([(x0, 52), (52, 98), (98, x1)]):
            yy = y0 + r * (y1 - y0) // 4 + 4
            ww = 10 + ((r * 7 + c * 5) % 4) * 6
            d.rectangle([cx0 + 4, yy, cx0 + 4 + ww, yy + 3], fill=(0, 0, 0))
    # a grey bar and a coloured mark so that the three channels differ
    d.rectangle([100, 6, 140, 12], fill=(128, 128, 128))
    d.rectangle([130, 20, 140, 30], fill=(200, 40, 30))
    im.save(path, format="PNG")


class Recorder:
    def __init__(self):
        self.on = False
        self.d = {}
        self.lists = {}

    def put(self, k, v):
        if self.on:
            assert k not in self.d, k
            self.d[k] = v.detach().clone()

    def app(self, k, v):
        if self.on:
            self.lists.setdefault(k, []).append(v)


def main():
    out_dir = os.path.abspath(sys.argv[1])
    os.makedirs(out_dir, exist_ok=True)
    info = {}

    # ---------------- weights: random, save, reload into a fresh model, bit-identical check
    torch.manual_seed(SEED)
    m0 = build_model()
    weights = random_weights(m0, SEED + 1)
    pos_embed_init = m0.transformer.visual.attn_pool.pos_embed.detach().clone()
    del m0
    st_path = os.path.join(out_dir, "model.safetensors")
    write_safetensors(st_path, weights)

    torch.manual_seed(SEED + 99)            # different init RNG: every value must come from the file
    model = build_model()
    loaded = read_safetensors(st_path)
    assert set(loaded) == set(model.state_dict()), set(loaded) ^ set(model.state_dict())
    missing, unexpected = model.load_state_dict(loaded, strict=True)
    assert not missing and not unexpected
    msd = model.state_dict()
    for k in loaded:
        assert bits_equal(msd[k], loaded[k]) and bits_equal(loaded[k], weights[k]), k
    assert bits_equal(model.transformer.visual.attn_pool.pos_embed, pos_embed_init)
    info["n_tensors"] = len(loaded)
    info["n_params"] = int(sum(v.numel() for v in loaded.values()))
    print("weights: %d tensors, %d params, reload bit-identical" % (info["n_tensors"], info["n_params"]))

    # ---------------- config.json (what QWenConfig would save, as in Qwen/Qwen-VL-Chat's config.json)
    cfg_json = {
        "architectures": ["QWenLMHeadModel"],
        "auto_map": {"AutoConfig": "configuration_qwen.QWenConfig",
                     "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"},
        "model_type": "qwen",
        "onnx_safe": None,
        "tokenizer_type": "QWenTokenizer",
        "torch_dtype": "float32",
        "transformers_version": "4.31.0",
    }
    for k, v in CFG.items():
        cfg_json[k] = v
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(dict(sorted(cfg_json.items())), f, indent=2)
        f.write("\n")

    # ---------------- inputs
    png = os.path.join(out_dir, "input.png")
    make_image(png)
    shutil.copyfile(png, IMAGE_PATH)
    path_bytes = list(IMAGE_PATH.encode("utf-8"))
    nq = VISUAL["n_queries"]
    isid = VISUAL["image_start_id"]
    assert len(path_bytes) <= nq - 2
    img_span = path_bytes + [isid + 2] * (nq - len(path_bytes))
    ids_list = PRE_IDS + [isid] + img_span + [isid + 1] + POST_IDS
    input_ids = torch.tensor([ids_list], dtype=torch.long)
    seq = input_ids.shape[1]
    img_a = len(PRE_IDS)                  # index of <img>
    img_b = img_a + nq + 1                # index of </img>
    assert ids_list[img_a] == isid and ids_list[img_b] == isid + 1
    info.update(seq=seq, img_a=img_a, img_b=img_b)

    # ---------------- hooks and wrappers (recording only; no math changed)
    R = Recorder()
    vis = model.transformer.visual
    tr = model.transformer
    hooks = []

    def fwd(name, fn=lambda o: o):
        def h(mod, inp, out):
            R.put(name, fn(out))
        return h

    def pre(name, fn=lambda i: i[0]):
        def h(mod, inp):
            R.put(name, fn(inp))
        return h

    hooks.append(vis.register_forward_pre_hook(pre("pixel_values")))
    hooks.append(vis.conv1.register_forward_hook(fwd("vision_patch_embeds_raw")))
    hooks.append(vis.ln_pre.register_forward_hook(fwd("vision_ln_pre", lambda o: o[0])))
    for i, blk in enumerate(vis.transformer.resblocks):
        hooks.append(blk.register_forward_hook(fwd("vision_block_out_%d" % i, lambda o: o[:, 0])))
    b0 = vis.transformer.resblocks[0]
    hooks.append(b0.ln_1.register_forward_hook(fwd("vision_blk0_ln_1", lambda o: o[:, 0])))
    hooks.append(b0.attn.in_proj.register_forward_hook(fwd("vision_blk0_in_proj", lambda o: o[:, 0])))
    hooks.append(b0.attn.out_proj.register_forward_pre_hook(pre("vision_blk0_attn_context", lambda i: i[0][:, 0])))
    hooks.append(b0.attn.out_proj.register_forward_hook(fwd("vision_blk0_attn_out", lambda o: o[:, 0])))
    hooks.append(b0.ln_2.register_forward_hook(fwd("vision_blk0_ln_2", lambda o: o[:, 0])))
    hooks.append(b0.mlp.c_fc.register_forward_hook(fwd("vision_blk0_c_fc", lambda o: o[:, 0])))
    hooks.append(b0.mlp.gelu.register_forward_hook(fwd("vision_blk0_gelu", lambda o: o[:, 0])))
    hooks.append(b0.mlp.c_proj.register_forward_hook(fwd("vision_blk0_c_proj", lambda o: o[:, 0])))
    ap = vis.attn_pool
    hooks.append(ap.kv_proj.register_forward_hook(fwd("resampler_kv_proj", lambda o: o[0])))
    hooks.append(ap.ln_kv.register_forward_hook(fwd("resampler_ln_kv", lambda o: o[0])))
    hooks.append(ap.ln_q.register_forward_hook(fwd("resampler_ln_q")))
    hooks.append(ap.attn.register_forward_pre_hook(pre("resampler_attn_query_in", lambda i: i[0][:, 0])))
    hooks.append(ap.attn.register_forward_pre_hook(pre("resampler_attn_key_in", lambda i: i[1][:, 0])))
    hooks.append(ap.attn.register_forward_pre_hook(pre("resampler_attn_value_in", lambda i: i[2][:, 0])))
    hooks.append(ap.attn.register_forward_hook(fwd("resampler_attn_probs", lambda o: o[1][0])))
    hooks.append(ap.register_forward_hook(fwd("resampler_out", lambda o: o[0])))
    hooks.append(vis.ln_post.register_forward_hook(fwd("vision_ln_post", lambda o: o[0])))
    hooks.append(vis.register_forward_hook(fwd("image_features", lambda o: o[0])))

    hooks.append(tr.h[0].register_forward_pre_hook(pre("inputs_embeds", lambda i: i[0][0])))
    for i, blk in enumerate(tr.h):
        hooks.append(blk.register_forward_hook(fwd("dec_out_%d" % i, lambda o: o[0][0])))
    l0 = tr.h[0]
    hooks.append(l0.ln_1.register_forward_hook(fwd("dec_l0_ln_1", lambda o: o[0])))
    hooks.append(l0.attn.c_attn.register_forward_hook(fwd("dec_l0_c_attn", lambda o: o[0])))
    hooks.append(l0.attn.c_proj.register_forward_pre_hook(pre("dec_l0_attn_context", lambda i: i[0][0])))
    hooks.append(l0.attn.c_proj.register_forward_hook(fwd("dec_l0_attn_out", lambda o: o[0])))
    hooks.append(l0.ln_2.register_forward_hook(fwd("dec_l0_ln_2", lambda o: o[0])))
    hooks.append(l0.mlp.w1.register_forward_hook(fwd("dec_l0_w1", lambda o: o[0])))
    hooks.append(l0.mlp.w2.register_forward_hook(fwd("dec_l0_w2", lambda o: o[0])))
    hooks.append(l0.mlp.c_proj.register_forward_pre_hook(pre("dec_l0_act", lambda i: i[0][0])))
    hooks.append(l0.mlp.c_proj.register_forward_hook(fwd("dec_l0_mlp_out", lambda o: o[0])))
    hooks.append(tr.ln_f.register_forward_hook(fwd("final_hidden", lambda o: o[0])))

    orig_rot = MQ.apply_rotary_pos_emb
    rope_seen = []

    def rot_wrap(t, freqs):
        o = orig_rot(t, freqs)
        R.app("rot", o.detach().clone())
        rope_seen.append((freqs[0].detach().clone(), freqs[1].detach().clone()))
        return o
    MQ.apply_rotary_pos_emb = rot_wrap

    orig_abs = MV.get_abs_pos

    def abs_wrap(abs_pos, tgt_size):
        o = orig_abs(abs_pos, tgt_size)
        R.app("abs_pos", o.detach().clone())
        return o
    MV.get_abs_pos = abs_wrap

    # ---------------- main forward (prefill of the whole prompt, no KV cache)
    R.on = True
    with torch.no_grad():
        out = model(input_ids=input_ids, use_cache=False, return_dict=True)
    R.on = False
    logits = out.logits[0].detach().clone()
    rec = R.d
    assert len(R.lists["abs_pos"]) == 2 and len(R.lists["rot"]) == 2 * CFG["num_hidden_layers"]
    prefill_rope = rope_seen[0]
    for c, s in rope_seen:
        assert bits_equal(c, prefill_rope[0]) and bits_equal(s, prefill_rope[1])
    rope_seen.clear()

    V = VISUAL
    grid = V["image_size"] // V["patch_size"]
    npatch = grid * grid
    width, heads = V["width"], V["heads"]
    hn = width // heads
    H = CFG["hidden_size"]
    nh = CFG["num_attention_heads"]
    hd = H // nh

    saves = {}
    # preprocessing
    pil = Image.open(IMAGE_PATH).convert("RGB")
    resize = vis.image_transform.transforms[0]
    resized = resize(pil)
    pp_resized = np.asarray(resized, dtype=np.uint8).copy()
    assert pp_resized.shape == (V["image_size"], V["image_size"], 3)
    pv = rec["pixel_values"]
    assert bits_equal(pv[0], vis.image_transform(pil))
    saves["pp_resized"] = pp_resized
    saves["pixel_values"] = pv
    saves["input_ids"] = input_ids
    # ViT
    pe = rec["vision_patch_embeds_raw"][0]                       # [width, grid, grid]
    saves["vision_patch_embeds"] = pe.reshape(width, -1).t()     # [npatch, width]
    saves["vision_pos_embed"] = R.lists["abs_pos"][0]           # get_abs_pos(positional_embedding, npatch)
    saves["vision_ln_pre"] = rec["vision_ln_pre"]
    saves["vision_block_outputs"] = torch.stack([rec["vision_block_out_%d" % i] for i in range(V["layers"])])
    saves["vision_blk0_ln_1"] = rec["vision_blk0_ln_1"]
    ip = rec["vision_blk0_in_proj"]                               # [npatch, 3*width], per head [q|k|v]
    saves["vision_blk0_in_proj"] = ip
    ip4 = ip.reshape(npatch, heads, 3 * hn)
    saves["vision_blk0_q"] = ip4[..., :hn].reshape(npatch, width)
    saves["vision_blk0_k"] = ip4[..., hn:2 * hn].reshape(npatch, width)
    saves["vision_blk0_v"] = ip4[..., 2 * hn:].reshape(npatch, width)
    for k in ["attn_context", "attn_out", "ln_2", "c_fc", "gelu", "c_proj"]:
        saves["vision_blk0_" + k] = rec["vision_blk0_" + k]
    # Resampler
    saves["resampler_kv_proj"] = rec["resampler_kv_proj"]
    saves["resampler_ln_kv"] = rec["resampler_ln_kv"]
    saves["resampler_ln_q"] = rec["resampler_ln_q"]
    saves["resampler_q_pos"] = ap.pos_embed.detach().clone()
    saves["resampler_k_pos"] = R.lists["abs_pos"][1]
    saves["resampler_attn_query_in"] = rec["resampler_attn_query_in"]
    saves["resampler_attn_key_in"] = rec["resampler_attn_key_in"]
    assert bits_equal(rec["resampler_attn_value_in"], rec["resampler_ln_kv"])
    saves["resampler_attn_probs"] = rec["resampler_attn_probs"]
    saves["resampler_out"] = rec["resampler_out"]
    saves["vision_ln_post"] = rec["vision_ln_post"]
    saves["image_features"] = rec["image_features"]
    # merge
    ie = rec["inputs_embeds"]
    saves["inputs_embeds"] = ie
    assert bits_equal(ie[img_a + 1:img_b], rec["image_features"])
    wte = model.transformer.wte.weight.detach()
    keep = [i for i in range(seq) if not (img_a < i < img_b)]
    assert bits_equal(ie[keep], wte[input_ids[0, keep]])
    # decoder layer 0
    saves["dec_l0_ln_1"] = rec["dec_l0_ln_1"]
    ca = rec["dec_l0_c_attn"]
    saves["dec_l0_c_attn"] = ca
    saves["dec_l0_q"] = ca[:, :H]
    saves["dec_l0_k"] = ca[:, H:2 * H]
    saves["dec_l0_v"] = ca[:, 2 * H:]
    saves["dec_l0_q_rot"] = R.lists["rot"][0][0]                # [seq, heads, head_dim]
    saves["dec_l0_k_rot"] = R.lists["rot"][1][0]
    for k in ["attn_context", "attn_out", "ln_2", "w1", "w2", "act", "mlp_out"]:
        saves["dec_l0_" + k] = rec["dec_l0_" + k]
    saves["dec_l0_out"] = rec["dec_out_0"]
    saves["decoder_layer_outputs"] = torch.stack([rec["dec_out_%d" % i] for i in range(CFG["num_hidden_layers"])])
    saves["final_hidden"] = rec["final_hidden"]
    saves["logits"] = logits
    inv_freq = model.transformer.rotary_emb.inv_freq.detach().clone()
    saves["dec_rope_inv_freq"] = inv_freq

    # ---------------- greedy generation with KV cache, following HF 4.31 greedy_search:
    # prepare_inputs_for_generation -> forward -> argmax -> append token, extend attention_mask by 1
    cur = input_ids.clone()
    attn = torch.ones_like(cur)
    past = None
    gen_ids, step_logits, step_pos, step_rope = [], [], [], []
    with torch.no_grad():
        for step in range(N_GEN):
            mi = model.prepare_inputs_for_generation(cur, past_key_values=past, attention_mask=attn,
                                                     use_cache=True)
            if step > 0:
                step_pos.append(int(mi["position_ids"][0, -1]))
            rope_seen.clear()
            o = model(**mi, return_dict=True)
            if step > 0:
                c0, s0 = rope_seen[0]
                assert c0.shape[1] == 1
                step_rope.append((c0[0, 0, 0], s0[0, 0, 0]))
            nl = o.logits[0, -1].detach().clone()
            nt = int(torch.argmax(nl))
            step_logits.append(nl)
            gen_ids.append(nt)
            past = o.past_key_values
            cur = torch.cat([cur, torch.tensor([[nt]])], dim=1)
            attn = torch.cat([attn, torch.ones(1, 1, dtype=attn.dtype)], dim=1)
    step_logits = torch.stack(step_logits)
    assert past[0][0].shape == (1, seq + N_GEN - 1, nh, hd)
    saves["generated_ids"] = torch.tensor(gen_ids, dtype=torch.long)
    saves["generated_step_logits"] = step_logits
    eff_pos = list(range(seq, seq + N_GEN - 1))
    assert step_pos == eff_pos, (step_pos, eff_pos)
    saves["generated_position_ids"] = torch.tensor(eff_pos, dtype=torch.long)
    cos_all = torch.cat([prefill_rope[0][0, :, 0, :], torch.stack([c for c, _ in step_rope])])
    sin_all = torch.cat([prefill_rope[1][0, :, 0, :], torch.stack([s for _, s in step_rope])])
    saves["dec_rope_cos"] = cos_all
    saves["dec_rope_sin"] = sin_all
    # consistency: step-0 logits == last row of the main forward (attention_mask given vs not)
    info["step0_vs_main_maxdiff"] = float((step_logits[0] - logits[-1]).abs().max())

    # ---------------- cross-check: greedy without cache (full recompute incl. vision each step)
    cur2 = input_ids.clone()
    nc_ids, nc_logits = [], []
    nocache_error = None
    try:
        with torch.no_grad():
            for step in range(N_GEN):
                o = model(input_ids=cur2, use_cache=False, return_dict=True)
                nl = o.logits[0, -1].detach().clone()
                nt = int(torch.argmax(nl))
                nc_ids.append(nt)
                nc_logits.append(nl)
                cur2 = torch.cat([cur2, torch.tensor([[nt]])], dim=1)
    except Exception as e:  # e.g. a generated <img>/</img> id breaks the span detection
        nocache_error = repr(e)
    info["nocache_ids"] = nc_ids
    info["nocache_error"] = nocache_error
    if not nocache_error:
        info["nocache_ids_identical"] = nc_ids == gen_ids
        info["nocache_max_logit_diff"] = float((torch.stack(nc_logits) - step_logits).abs().max())
    top2 = torch.topk(step_logits, 2, dim=-1).values
    gaps = (top2[:, 0] - top2[:, 1])
    info["min_top1_top2_gap"] = float(gaps.min())
    info["gen_ids"] = gen_ids

    # ---------------- check: the real config's use_dynamic_ntk=True / use_logn_attn=True change nothing
    # for sequences <= seq_length (2048): ntk_alpha = max(2**ceil(log2(L/2048)+1)-1, 1) = 1 and the logn
    # factor is 1 for every position < seq_length.
    MQ.apply_rotary_pos_emb = orig_rot
    MV.get_abs_pos = orig_abs
    for h in hooks:
        h.remove()
    m2 = build_model(use_dynamic_ntk=True, use_logn_attn=True)
    m2.load_state_dict(loaded, strict=True)
    cur = input_ids.clone()
    attn = torch.ones_like(cur)
    past = None
    sl2 = []
    with torch.no_grad():
        o = m2(input_ids=input_ids, use_cache=False, return_dict=True)
        info["ntk_logn_main_logits_bitexact"] = bits_equal(o.logits[0], logits)
        for step in range(N_GEN):
            mi = m2.prepare_inputs_for_generation(cur, past_key_values=past, attention_mask=attn, use_cache=True)
            o = m2(**mi, return_dict=True)
            nl = o.logits[0, -1]
            sl2.append(nl)
            nt = int(torch.argmax(nl))
            past = o.past_key_values
            cur = torch.cat([cur, torch.tensor([[nt]])], dim=1)
            attn = torch.cat([attn, torch.ones(1, 1, dtype=attn.dtype)], dim=1)
    info["ntk_logn_step_logits_bitexact"] = bits_equal(torch.stack(sl2), step_logits)

    # ---------------- write
    for k, v in saves.items():
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().contiguous().numpy()
        if v.dtype == np.float64:
            raise AssertionError(k)
        np.save(os.path.join(out_dir, k + ".npy"), np.ascontiguousarray(v))
    info["versions"] = {
        "python": sys.version.split()[0], "torch": torch.__version__, "torchvision": torchvision.__version__,
        "numpy": np.__version__, "Pillow": PIL.__version__,
    }
    info["ref_sha256"] = {f: hashlib.sha256(open(os.path.join(REF, f), "rb").read()).hexdigest()
                          for f in REF_FILES}
    info["shapes"] = {k: [list(np.asarray(v).shape) if not isinstance(v, torch.Tensor) else list(v.shape),
                          str(v.dtype)] for k, v in saves.items()}
    with open(os.path.join(out_dir, "generation_report.json"), "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
        f.write("\n")
    print(json.dumps({k: v for k, v in info.items() if k != "shapes"}, indent=1, sort_keys=True))
    shutil.rmtree(_pkgroot, ignore_errors=True)


if __name__ == "__main__":
    main()

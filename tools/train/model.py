"""docvlm-small: the embedded document model, in PyTorch (training and the reference for C++).

    vision   patches (8x8 gray, column-major) -> Linear -> + row/column embeddings, A learned
             anchor tokens in front; `vision_layers` pre-LayerNorm ViT blocks whose attention is
             windowed with global anchors (token i sees j when |i - j| <= window, anchors see and
             are seen by all); final LayerNorm; with `out_pos`, a second pair of row/column
             embedding tables added to the patch tokens (so that cross-attention reads positions).
    decoder  byte tokens; per layer: gated cross-attention to the vision tokens (every
             `xattn_every` layers: x += tanh(g_a) * o(attn(q(rms(x)), k(vis), v(vis))),
             x += tanh(g_m) * mlp(rms(x))), causal self-attention with 1D rope (rotate half),
             SwiGLU MLP; final RMSNorm; LM head tied to the embedding.

Quantisation-aware training: with `qat` on, every Linear runs as the C++ int8 path does —
weights symmetric per output channel (scale = max|w| / 127, round half to even), activations per
row (q = round(x * 127 / max|x|)) — with straight-through gradients. Tensor names are the ones
the C++ loader reads (include/docvlm/model/gated_vlm.hpp).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

import common as C


@dataclass
class Config:
    patch: int = C.PATCH
    max_rows: int = C.MAX_ROWS
    max_cols: int = C.MAX_W // C.PATCH
    vision_dim: int = 256
    vision_layers: int = 4
    vision_heads: int = 4
    vision_mlp: int = 1024
    window: int = 24
    anchors: int = 4
    text_dim: int = 256
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2
    text_mlp: int = 704
    xattn_every: int = 1
    xattn_mlp: int = 512
    vocab: int = C.VOCAB
    max_tokens: int = C.TABLE_MAX_TOKENS
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6
    ctc_head: bool = False  # training aid: a CTC loss over the vision tokens (not exported)
    out_pos: bool = False  # row/column embeddings added again to the vision tokens after the final LayerNorm
    split_axial: int = 0  # TableSplit only: pairs of row-wise and column-wise attention blocks before the head (config.json table_split.axial)
    split_tiled: bool = False  # TableSplit only: trained on windows of full-scale tables, reads a table in tiles (table_split.tiled_maps)
    split_shift: int = 0  # TableSplit only: pixels of the second, shifted reading of a table (table_split.tiled_maps; config.json table_split.shift)
    tasks: tuple = ("text", "formula", "table")  # the tasks config.json names (a model without the table task: text, formula)

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("split_axial", "split_tiled", "split_shift"):  # a splitter's settings (exported in table_split): named only where used
            if not d[k]:
                del d[k]
        del d["tasks"]  # config.json names them in task_tokens
        d["model_type"] = "docvlm_small"
        d.update(pad_token_id=C.PAD, eos_token_id=C.EOS, task_tokens={k: v for k, v in C.TASKS.items() if k in self.tasks},
                 task_height={k: min(v, self.max_rows * self.patch) for k, v in C.TASK_HEIGHT.items() if k in self.tasks},
                 ink_threshold=C.INK)
        if "table" in self.tasks:
            d["table"] = {"format": "grid", "line_height": C.TABLE_LINE_H, "max_width": min(C.TABLE_MAX_W, self.max_cols * self.patch),
                          "coord_unit": C.TABLE_Q, "coord_token": C.COORD0, "coords": C.TABLE_COORDS,
                          "tokens": {name: t for t, name in C.OTSL.items()}}
        return d

    @staticmethod
    def from_json(d: dict) -> "Config":
        """The Config of a config.json (a model folder's or a run's): its fields, and its tasks."""
        c = Config(**{k: v for k, v in d.items() if k in Config.__dataclass_fields__ and k != "tasks"})
        if "task_tokens" in d:
            c.tasks = tuple(d["task_tokens"])
        return c


def fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    s = w.detach().abs().amax(dim=1, keepdim=True).float() / 127.0
    s = torch.where(s > 0, s, torch.ones_like(s))
    q = torch.clamp(torch.round(w.detach().float() / s), -127, 127) * s
    return w + (q.to(w.dtype) - w).detach()


def fake_quant_rows(x: torch.Tensor) -> torch.Tensor:
    a = x.detach().abs().amax(dim=-1, keepdim=True).float()
    inv = torch.where(a > 0, 127.0 / a, torch.zeros_like(a))
    q = torch.clamp(torch.round(x.detach().float() * inv), -127, 127) * (a / 127.0)
    return x + (q.to(x.dtype) - x).detach()


class QLinear(nn.Linear):
    qat = False

    def forward(self, x):
        if QLinear.qat:
            return F.linear(fake_quant_rows(x), fake_quant_weight(self.weight), self.bias)
        return super().forward(x)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


def attention(q, k, v, heads, kv_heads, bias):
    """q [B, n, h*d], k/v [B, m, kv*d], bias broadcastable to [B, h, n, m] (additive, -inf masks)."""
    b, n, _ = q.shape
    m = k.shape[1]
    d = q.shape[-1] // heads
    q = q.view(b, n, heads, d).transpose(1, 2)
    k = k.view(b, m, kv_heads, d).transpose(1, 2)
    v = v.view(b, m, kv_heads, d).transpose(1, 2)
    if kv_heads != heads:
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
    s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d))
    if bias is not None:
        s = s + bias
    p = torch.softmax(s.float(), dim=-1).to(q.dtype)
    return torch.matmul(p, v).transpose(1, 2).reshape(b, n, heads * d)


def window_anchor_attention(q, k, v, heads, window, anchors, valid):
    """What attention() computes with the window/anchor mask of DocVLM.vision_mask, in
    O(n · (anchors + 3 · window)) instead of O(n²): anchor queries attend to every key; the queries
    of patch tokens, in blocks of `window`, attend to the anchors and to the keys within `window`
    positions (a slice of 3 · window keys per block). q, k, v [B, n, h*d]; valid [B, n] bool or None
    (padded keys masked)."""
    b, n, hd_all = q.shape
    d = hd_all // heads
    A, w = anchors, window
    q = q.view(b, n, heads, d).transpose(1, 2)  # [B, h, n, d]
    k = k.view(b, n, heads, d).transpose(1, 2)
    v = v.view(b, n, heads, d).transpose(1, 2)
    scale = 1.0 / math.sqrt(d)
    dev = q.device
    key_ok = valid if valid is not None else torch.ones(b, n, dtype=torch.bool, device=dev)
    neg = torch.tensor(float("-inf"), dtype=q.dtype, device=dev)
    # anchors: full rows
    s_a = torch.matmul(q[:, :, :A], k.transpose(-1, -2)) * scale
    s_a = s_a.masked_fill(~key_ok[:, None, None, :], neg)
    out_a = torch.matmul(torch.softmax(s_a.float(), dim=-1).to(q.dtype), v)
    # patch tokens, in blocks of w queries
    m = n - A
    nb = (m + w - 1) // w
    pad_q = nb * w - m
    qp = F.pad(q[:, :, A:], (0, 0, 0, pad_q))  # [B, h, nb*w, d]
    # keys of token positions [A + i*w - w, A + i*w + 2w) for block i, over the whole sequence
    kpad = F.pad(k, (0, 0, w, pad_q + w))  # position p of k at p + w
    vpad = F.pad(v, (0, 0, w, pad_q + w))
    span = 3 * w
    starts = A + torch.arange(nb, device=dev) * w  # first query position of each block; keys from start - w
    idx = (starts[:, None] - w + torch.arange(span, device=dev)[None, :])  # [nb, span] token positions
    gather = (idx + w).reshape(-1)
    kb = kpad[:, :, gather].view(b, heads, nb, span, d)
    vb = vpad[:, :, gather].view(b, heads, nb, span, d)
    qb = qp.view(b, heads, nb, w, d)
    s_w = torch.matmul(qb, kb.transpose(-1, -2)) * scale  # [B, h, nb, w, span]
    qpos = starts[:, None] + torch.arange(w, device=dev)[None, :]  # [nb, w]
    rel = idx[:, None, :] - qpos[:, :, None]  # [nb, w, span]
    in_range = (idx >= A) & (idx < n)  # anchors come separately
    key_valid = torch.zeros(b, nb, span, dtype=torch.bool, device=dev)
    key_valid[:, in_range] = key_ok[:, idx[in_range]]
    allowed = (rel.abs() <= w)[None] & key_valid[:, :, None, :]  # [B, nb, w, span]
    s_w = s_w.masked_fill(~allowed[:, None], neg)
    s_an = torch.matmul(qb, k[:, :, None, :A].transpose(-1, -2)) * scale  # [B, h, nb, w, A]
    s_an = s_an.masked_fill(~key_ok[:, None, None, None, :A], neg)
    p = torch.softmax(torch.cat([s_an, s_w], dim=-1).float(), dim=-1).to(q.dtype)
    out_w = torch.matmul(p[..., :A], v[:, :, None, :A]) + torch.matmul(p[..., A:], vb)  # [B, h, nb, w, d]
    out_w = out_w.reshape(b, heads, nb * w, d)[:, :, :m]
    out = torch.cat([out_a, out_w], dim=2)
    return out.transpose(1, 2).reshape(b, n, heads * d)


class VisionBlock(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        d = c.vision_dim
        self.norm1 = nn.LayerNorm(d, eps=c.norm_eps)
        self.q, self.k, self.v, self.o = (QLinear(d, d) for _ in range(4))
        self.norm2 = nn.LayerNorm(d, eps=c.norm_eps)
        self.fc1 = QLinear(d, c.vision_mlp)
        self.fc2 = QLinear(c.vision_mlp, d)
        self.heads = c.vision_heads

    def forward(self, x, bias, local=None):
        """bias: the additive mask of attention(); or local = (window, anchors, valid) for
        window_anchor_attention (the same result in linear memory)."""
        h = self.norm1(x)
        if local is not None:
            a = window_anchor_attention(self.q(h), self.k(h), self.v(h), self.heads, *local)
        else:
            a = attention(self.q(h), self.k(h), self.v(h), self.heads, self.heads, bias)
        x = x + self.o(a)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class SwiGLU(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.gate = QLinear(d, hidden, bias=False)
        self.up = QLinear(d, hidden, bias=False)
        self.down = QLinear(hidden, d, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class CrossBlock(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        d, hd = c.text_dim, c.text_dim // c.text_heads
        self.norm1 = RMSNorm(d, c.norm_eps)
        self.q = QLinear(d, d, bias=False)
        self.k = QLinear(c.vision_dim, c.text_kv_heads * hd, bias=False)
        self.v = QLinear(c.vision_dim, c.text_kv_heads * hd, bias=False)
        self.o = QLinear(d, d, bias=False)
        self.attn_gate = nn.Parameter(torch.full((1,), 0.5))
        self.norm2 = RMSNorm(d, c.norm_eps)
        self.mlp = SwiGLU(d, c.xattn_mlp)
        self.mlp_gate = nn.Parameter(torch.full((1,), 0.5))
        self.heads, self.kv_heads = c.text_heads, c.text_kv_heads

    def forward(self, x, vk, vv, bias):
        a = self.o(attention(self.q(self.norm1(x)), vk, vv, self.heads, self.kv_heads, bias))
        x = x + torch.tanh(self.attn_gate).to(x.dtype) * a
        return x + torch.tanh(self.mlp_gate).to(x.dtype) * self.mlp(self.norm2(x))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class TextBlock(nn.Module):
    def __init__(self, c: Config, cross: bool):
        super().__init__()
        d, hd = c.text_dim, c.text_dim // c.text_heads
        self.cross = CrossBlock(c) if cross else None
        self.norm1 = RMSNorm(d, c.norm_eps)
        self.q = QLinear(d, d, bias=True)
        self.k = QLinear(d, c.text_kv_heads * hd, bias=True)
        self.v = QLinear(d, c.text_kv_heads * hd, bias=True)
        self.o = QLinear(d, d, bias=False)
        self.norm2 = RMSNorm(d, c.norm_eps)
        self.mlp = SwiGLU(d, c.text_mlp)
        self.heads, self.kv_heads, self.hd = c.text_heads, c.text_kv_heads, hd

    def forward(self, x, cos, sin, causal, vis_kv, vis_bias):
        if self.cross is not None:
            x = self.cross(x, vis_kv[0], vis_kv[1], vis_bias)
        h = self.norm1(x)
        b, n, _ = h.shape
        q = self.q(h).view(b, n, self.heads, self.hd)
        k = self.k(h).view(b, n, self.kv_heads, self.hd)
        q = (q * cos + rotate_half(q) * sin).reshape(b, n, -1)
        k = (k * cos + rotate_half(k) * sin).reshape(b, n, -1)
        x = x + self.o(attention(q, k, self.v(h), self.heads, self.kv_heads, causal))
        return x + self.mlp(self.norm2(x))


class VisionTower(nn.Module):
    """The vision encoder alone (patch embedding, row/column embeddings, anchors, ViT blocks, final
    LayerNorm, out_pos): DocVLM's, and the table splitter's (TableSplit) second one. Attribute
    names are the exported tensor names."""
    # Vision attention as window_anchor_attention (linear in the tokens) instead of a masked n x n
    # product; the same function of the weights.
    local_attention = False

    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        P = c.patch * c.patch
        self.patch_embed = QLinear(P, c.vision_dim)
        self.row_embed = nn.Parameter(torch.randn(c.max_rows, c.vision_dim) * 0.02)
        self.col_embed = nn.Parameter(torch.randn(c.max_cols, c.vision_dim) * 0.02)
        self.anchor = nn.Parameter(torch.randn(c.anchors, c.vision_dim) * 0.02)
        self.vision = nn.ModuleList(VisionBlock(c) for _ in range(c.vision_layers))
        self.vision_norm = nn.LayerNorm(c.vision_dim, eps=c.norm_eps)
        if c.out_pos:  # zero at first: a model trained without them computes the same
            self.out_row_embed = nn.Parameter(torch.zeros(c.max_rows, c.vision_dim))
            self.out_col_embed = nn.Parameter(torch.zeros(c.max_cols, c.vision_dim))

    def vision_mask(self, n_tokens: int, valid: torch.Tensor | None, dtype) -> torch.Tensor:
        """Additive [B or 1, 1, n, n] bias: window + anchors, and padded keys masked."""
        c = self.c
        dev = self.anchor.device
        i = torch.arange(n_tokens, device=dev)
        allowed = ((i[:, None] - i[None, :]).abs() <= c.window) | (i[:, None] < c.anchors) | (i[None, :] < c.anchors)
        bias = torch.zeros(n_tokens, n_tokens, device=dev).masked_fill(~allowed, float("-inf"))[None, None]
        if valid is not None:
            bias = bias + torch.zeros(valid.shape, device=dev).masked_fill(~valid, float("-inf"))[:, None, None, :]
        return bias.to(dtype)

    def encode(self, patches: torch.Tensor, rows: int, cols: int, valid: torch.Tensor | None = None):
        """patches [B, cols*rows, P*P] (column-major); valid [B, anchors + cols*rows] bool or None."""
        b = patches.shape[0]
        c = self.c
        pos = (self.col_embed[:cols, None, :] + self.row_embed[None, :rows, :]).reshape(cols * rows, -1)
        x = self.patch_embed(patches) + pos.to(patches.dtype)
        x = torch.cat([self.anchor.to(x.dtype).expand(b, -1, -1), x], dim=1)
        if self.local_attention:
            for blk in self.vision:
                x = blk(x, None, (c.window, c.anchors, valid))
        else:
            bias = self.vision_mask(x.shape[1], valid, x.dtype)
            for blk in self.vision:
                x = blk(x, bias)
        x = self.vision_norm(x)
        if c.out_pos:
            out = (self.out_col_embed[:cols, None, :] + self.out_row_embed[None, :rows, :]).reshape(cols * rows, -1)
            x = torch.cat([x[:, :c.anchors], x[:, c.anchors:] + out.to(x.dtype)], dim=1)
        return x


class DocVLM(VisionTower):
    def __init__(self, c: Config):
        super().__init__(c)
        self.embed = nn.Embedding(c.vocab, c.text_dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.text = nn.ModuleList(TextBlock(c, i % c.xattn_every == 0) for i in range(c.text_layers))
        self.norm = RMSNorm(c.text_dim, c.norm_eps)
        if c.ctc_head:
            self.ctc = nn.Linear(c.vision_dim, C.VOCAB + 1)  # index VOCAB: the CTC blank
        hd = c.text_dim // c.text_heads
        inv = 1.0 / (c.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        self.register_buffer("inv_freq", inv, persistent=False)

    # -- text -------------------------------------------------------------------------------------
    def rope(self, n: int, dtype, offset: int = 0):
        t = torch.arange(offset, offset + n, dtype=torch.float32, device=self.inv_freq.device)
        f = torch.outer(t, self.inv_freq)
        e = torch.cat([f, f], dim=-1)
        return e.cos()[None, :, None, :].to(dtype), e.sin()[None, :, None, :].to(dtype)

    def decode(self, tokens: torch.Tensor, vis: torch.Tensor, vis_valid: torch.Tensor | None = None):
        """Teacher-forced logits [B, n, vocab] for tokens [B, n] reading vision tokens vis [B, m, D]."""
        b, n = tokens.shape
        x = self.embed(tokens).to(vis.dtype)
        cos, sin = self.rope(n, x.dtype)
        causal = torch.full((n, n), float("-inf"), device=x.device).triu(1)[None, None].to(x.dtype)
        vbias = None
        if vis_valid is not None:
            vbias = torch.zeros(vis_valid.shape, device=x.device).masked_fill(~vis_valid, float("-inf"))[:, None, None, :].to(x.dtype)
        for blk in self.text:
            kv = (blk.cross.k(vis), blk.cross.v(vis)) if blk.cross is not None else None
            x = blk(x, cos, sin, causal, kv, vbias)
        x = self.norm(x)
        w = fake_quant_weight(self.embed.weight) if QLinear.qat else self.embed.weight
        xin = fake_quant_rows(x) if QLinear.qat else x
        return F.linear(xin, w.to(x.dtype))

    def forward(self, patches, rows, cols, tokens, valid=None, with_vision=False):
        vis = self.encode(patches, rows, cols, valid)
        logits = self.decode(tokens, vis, valid)
        return (logits, vis) if with_vision else logits

    def ctc_loss(self, vis, valid, targets):
        """CTC over the patch tokens in column-major order (a training aid that teaches the encoder
        to see characters early). targets [B, n] byte ids padded with PAD (EOS excluded)."""
        a = self.c.anchors
        logp = F.log_softmax(self.ctc(vis[:, a:]).float(), dim=-1).transpose(0, 1)  # [T, B, V+1]
        in_len = valid[:, a:].sum(dim=1)
        tgt_len = (targets != C.PAD).sum(dim=1)
        flat = torch.cat([t[:l] for t, l in zip(targets, tgt_len)])
        return F.ctc_loss(logp, flat, in_len, tgt_len, blank=C.VOCAB, zero_infinity=True)

    @torch.no_grad()
    def greedy_cached(self, patches, rows, cols, task_token: int, max_new: int = 160, allowed=None):
        """Greedy decoding of one crop (batch 1) with a KV cache: what greedy() gives, in O(n).
        allowed(generated) -> token ids: a constraint on the next token (common.otsl_allowed)."""
        vis = self.encode(patches, rows, cols)
        dtype = vis.dtype
        vkv = [(blk.cross.k(vis), blk.cross.v(vis)) if blk.cross is not None else None for blk in self.text]
        cache = [([], []) for _ in self.text]
        tok, out = task_token, []
        for pos in range(max_new):
            x = self.embed(torch.tensor([[tok]], device=vis.device)).to(dtype)
            cos, sin = self.rope(1, dtype, offset=pos)
            for blk, kv, (ks, vs) in zip(self.text, vkv, cache):
                if blk.cross is not None:
                    x = blk.cross(x, kv[0], kv[1], None)
                h = blk.norm1(x)
                q = blk.q(h).view(1, 1, blk.heads, blk.hd)
                k = blk.k(h).view(1, 1, blk.kv_heads, blk.hd)
                ks.append((k * cos + rotate_half(k) * sin).reshape(1, 1, -1))
                vs.append(blk.v(h))
                q = (q * cos + rotate_half(q) * sin).reshape(1, 1, -1)
                x = x + blk.o(attention(q, torch.cat(ks, 1), torch.cat(vs, 1), blk.heads, blk.kv_heads, None))
                x = x + blk.mlp(blk.norm2(x))
            x = self.norm(x)
            w = fake_quant_weight(self.embed.weight) if QLinear.qat else self.embed.weight
            xin = fake_quant_rows(x) if QLinear.qat else x
            logits = F.linear(xin, w.to(x.dtype))[0, -1].float()
            if allowed is not None:
                ok = torch.tensor(allowed(out), dtype=torch.long, device=logits.device)
                logits = torch.full_like(logits, float("-inf")).index_copy(0, ok, logits[ok])
            tok = int(logits.argmax())
            if tok == C.EOS:
                break
            out.append(tok)
        return out

    @torch.no_grad()
    def greedy(self, patches, rows, cols, task_token: int, max_new: int = 160, valid=None):
        """Greedy decoding without a cache (reference; O(n^2) but simple and exact)."""
        vis = self.encode(patches, rows, cols, valid)
        b = patches.shape[0]
        toks = torch.full((b, 1), task_token, dtype=torch.long, device=vis.device)
        done = torch.zeros(b, dtype=torch.bool, device=vis.device)
        for _ in range(max_new):
            logits = self.decode(toks, vis, valid)[:, -1].float()
            nxt = logits.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, C.PAD), nxt)
            toks = torch.cat([toks, nxt[:, None]], dim=1)
            done |= nxt == C.EOS
            if done.all():
                break
        return toks[:, 1:]


SPLIT_MAPS = 6  # per patch token: SPLIT_MAPS maps x PATCH sub-positions (see TableSplit)


class TableSplit(VisionTower):
    """The table task as split-and-merge maps (docvlm's learned table structure): a vision tower of
    its own (same architecture as DocVLM's, with rows for a whole table crop) and a linear head that
    gives every patch token SPLIT_MAPS x PATCH logits, in groups of PATCH (one per pixel row or
    column the patch covers):
        0: row separator here (local: between two different cells of this patch column)
        1: column separator here (local: between two different cells of this patch row)
        2: row separator across the table, this patch column's vote
        3: column separator across the table, this patch row's vote
        4: the weight of vote 2 (softmax over the patch columns, per pixel row)
        5: the weight of vote 3 (softmax over the patch rows, per pixel column)
    so that a column that sees a cell going on (the next line of a paragraph) can outvote the white
    columns around it. Rows and columns come from the pooled votes, spanning cells from maps 0
    and 1 (table_split.py)."""

    def __init__(self, c: Config):
        super().__init__(c)
        self.head = QLinear(c.vision_dim, SPLIT_MAPS * c.patch)
        # split_axial pairs: full attention along each row of patch tokens, then along each column
        # (the tower's window sees one patch column either side); output projections zero, so a
        # model without them computes the same at first
        self.axial = nn.ModuleList(VisionBlock(c) for _ in range(2 * c.split_axial))
        with torch.no_grad():
            for blk in self.axial:
                blk.o.weight.zero_(), blk.o.bias.zero_(), blk.fc2.weight.zero_(), blk.fc2.bias.zero_()

    def axial_context(self, x, rows: int, cols: int, valid=None):
        """x [B, cols*rows, D] patch tokens (column-major) through the row-wise and column-wise blocks."""
        b, _, d = x.shape
        bias_row = None
        if valid is not None:  # padded columns are no keys of a row
            ok = valid[:, self.c.anchors:].view(b, cols, rows)[:, :, 0]  # [B, cols]
            bias_row = torch.zeros(b, cols, device=x.device).masked_fill(~ok, float("-inf"))
            bias_row = bias_row[:, None, :].expand(b, rows, cols).reshape(b * rows, 1, 1, cols).to(x.dtype)
        for k in range(0, len(self.axial), 2):
            t = x.view(b, cols, rows, d).transpose(1, 2).reshape(b * rows, cols, d)  # one sequence per row
            t = self.axial[k](t, bias_row)
            t = t.view(b, rows, cols, d).transpose(1, 2).reshape(b * cols, rows, d)  # one per column
            t = self.axial[k + 1](t, None)
            x = t.view(b, cols * rows, d)
        return x

    def head_logits(self, patches, rows: int, cols: int, valid=None):
        """-> [B, cols, rows, SPLIT_MAPS, P]: the head's logits of every patch token."""
        x = self.encode(patches, rows, cols, valid)[:, self.c.anchors:]
        if len(self.axial):
            x = self.axial_context(x, rows, cols, valid)
        return self.head(x).float().view(patches.shape[0], cols, rows, SPLIT_MAPS, self.c.patch)

    def maps(self, patches, rows: int, cols: int, valid=None):
        """-> (local row logits [B, cols, rows*P], local column logits [B, rows, cols*P],
        row logits [B, rows*P], column logits [B, cols*P]); padded columns (valid False) are left
        out of the row votes."""
        return self.pool(self.head_logits(patches, rows, cols, valid), valid)

    def pool(self, y, valid=None):
        """maps() from head logits y [B, cols, rows, SPLIT_MAPS, P]."""
        b, cols, rows, _, P = y.shape
        local_r = y[:, :, :, 0].reshape(b, cols, rows * P)
        local_c = y[:, :, :, 1].permute(0, 2, 1, 3).reshape(b, rows, cols * P)
        w_r = y[:, :, :, 4]
        if valid is not None:
            ok = valid[:, self.c.anchors:].view(b, cols, rows)[:, :, 0]
            w_r = w_r.masked_fill(~ok[:, :, None, None], float("-inf"))
        g_r = (torch.softmax(w_r, dim=1) * y[:, :, :, 2]).sum(1)
        g_c = (torch.softmax(y[:, :, :, 5], dim=2) * y[:, :, :, 3]).sum(2)
        return local_r, local_c, g_r.reshape(b, rows * P), g_c.reshape(b, cols * P)

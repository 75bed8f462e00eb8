// docvlm/model/decoder.hpp — Decoder<W>: the text decoder of every family.
//
//   embed → for each block: [gated cross-attention to the image's tokens] → DecoderBlock → RMSNorm → LM head
//
// A family fills the parts (model/*: its tensor names) and computes the rope rows of the tokens it
// feeds (Rope1D, or MRope for Qwen2-VL); the Decoder runs them. Decoder::State is one sequence: its
// KV cache, the projected vision keys/values of its image, its activations and logits. States are
// independent, so many may share one Decoder, one per thread.
//
// to_device(backend) moves the decoder's work to a Backend (backend/device_decoder.hpp): its
// weights are uploaded once, and States made after it keep their KV caches on the device; the
// embeddings, rope rows and the vision keys/values are still computed here, and forward / step
// return the logits on the host as before. Traces then hold only what the host sees (logits).
#pragma once

#include <docvlm/backend/device_decoder.hpp>
#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/trace.hpp>
#include <docvlm/io/safetensors.hpp>
#include <docvlm/layers/attention.hpp>
#include <docvlm/layers/decoder_block.hpp>
#include <docvlm/layers/embedding.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/layers/rope.hpp>
#include <docvlm/model/weights.hpp>

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

template <WeightPolicy W>
struct Decoder {
    Embedding embed;
    std::vector<DecoderBlock<W>> blocks;
    /// Gated cross-attention layers and, per block, the one that runs before it (-1: none). Both
    /// empty for families that put the image into the token sequence.
    std::vector<GatedCrossAttentionLayer<W>> cross;
    std::vector<int> cross_before;
    RMSNorm norm;
    Linear<W> head;
    /// Null: the CPU kernels run the decoder; else the device holding its weights (to_device).
    std::shared_ptr<backend::DeviceDecoder> device;

    /// One sequence: KV cache for `capacity` tokens, vision keys/values, activations, logits.
    class State {
    public:
        State(const Decoder& dec, std::size_t capacity);
        std::size_t length() const { return len_; }
        std::size_t capacity() const { return cap_; }
        /// Room for `n` more tokens.
        bool room(std::size_t n = 1) const { return len_ + n <= cap_; }
        /// Forgets the tokens (the vision keys/values stay).
        void clear() { len_ = 0; }
        /// Keeps the first n tokens and forgets the rest: the next tokens follow the n (their keys
        /// and values are written over the forgotten ones').
        void truncate(std::size_t n) {
            if (n > len_) detail::fail("context: cannot keep ", n, " tokens of ", len_);
            len_ = n;
        }

    private:
        friend struct Decoder;
        std::size_t cap_ = 0, len_ = 0;
        std::vector<AlignedBuffer<float>> k_, v_;  // per block [capacity][kv_heads · head_dim]
        std::shared_ptr<const std::vector<VisionKV>> vis_;  // per cross-attention layer; shared by the states of one image
        std::vector<float> x_, logits_;            // [n, hidden], [n or 1, vocab]
        Workspace ws_;
        std::unique_ptr<backend::DeviceDecoder::State> dev_;  // with a device: its KV caches (k_, v_ stay empty)
    };

    /// The keys and values of cross-attention layer c of the image attached to s.
    const VisionKV& vision_of(const State& s, int c) const {
        if (!s.vis_) detail::fail("decoder: no image attached (prefill or attach first)");
        return (*s.vis_)[std::size_t(c)];
    }
    /// The device half of a state (with a device); a state made before to_device has none.
    backend::DeviceDecoder::State& device_state(State& s) const {
        return const_cast<backend::DeviceDecoder::State&>(device_state(std::as_const(s)));
    }
    const backend::DeviceDecoder::State& device_state(const State& s) const {
        if (!s.dev_) detail::fail("decoder: this context was made before the decoder moved to ", device->backend().name());
        return *s.dev_;
    }

    /// Batched decoding scratch (Decoder::step).
    struct Batch {
        std::vector<float> x, logits;
        Workspace ws;
        std::vector<float*> kc, vc;
        std::vector<const VisionKV*> vis;
        std::vector<std::size_t> len;
        std::vector<backend::DeviceDecoder::State*> dev;
    };

    /// Checks that the parts fit together (called by the families' loaders).
    void validate() const;
    /// Uploads the weights to `be` and runs there from now on (States made before stay on the
    /// CPU path and are refused). The CPU weights stay: a family's other parts may read them.
    void to_device(std::shared_ptr<backend::Backend> be);
    std::size_t hidden() const { return embed.dim(); }
    std::size_t vocab() const { return head.out_features(); }
    std::size_t head_dim() const { return blocks.front().head_dim; }

    /// Empties `s` and projects one image's vision tokens [tokens, vision_dim] through every
    /// cross-attention layer into it.
    void attach(State& s, const float* vision, std::size_t tokens) const;
    /// Empties `dst` and gives it the image attached to `src`: the same projected keys and values,
    /// shared on the CPU (uploaded again on a device), not projected again. For sequences that
    /// read one image side by side (beam search).
    void share_vision(State& dst, const State& src) const;

    /// Runs n tokens after the state's cached ones: x [n, hidden] their embeddings, rope one row
    /// per token. Returns the logits of the last token, or of every token [n, vocab] with
    /// all_logits. Trace names: dec_l0_* (layer 0's pieces), dec_layer_out_<l>, final_hidden,
    /// logits (all_logits only).
    std::span<const float> forward(State& s, const float* x, std::size_t n, const RopeTable& rope, const Trace& trace = {},
                                   bool all_logits = false) const;

    /// One token for each of n states (ids[r] for states[r], rope row r at its position): the
    /// same arithmetic per row as forward() with n = 1, but every weight matrix is read once for
    /// all rows. Returns logits [n, vocab] (in b).
    std::span<float> step(State* const* states, const std::int32_t* ids, std::size_t n, const RopeTable& rope, Batch& b) const;

    /// Makes dst hold src's tokens (their keys and values; dst's capacity must take them), for a
    /// sequence that forks (beam search). The vision keys/values are not copied: dst must share
    /// src's image (share_vision), or neither has one.
    void copy_tokens(State& dst, const State& src) const;
};

/// The sizes of a Hugging Face LLaMA / Qwen2 decoder.
struct HfDecoderDims {
    std::size_t layers = 0, hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, mlp = 0, vocab = 0;
    float rms_eps = 1e-6f;
    bool qkv_bias = false;        ///< Qwen2: q/k/v have biases; LLaMA: none
    bool tie_embeddings = false;  ///< no lm_head tensor: the head is the embedding
};

/// Loads a decoder stored under transformers' LlamaModel / Qwen2Model names:
/// <prefix>embed_tokens.weight, <prefix>layers.<i>.{input_layernorm, self_attn.{q,k,v,o}_proj,
/// post_attention_layernorm, mlp.{gate,up,down}_proj}, <prefix>norm.weight, and the LM head
/// `head` (or the embedding where tie_embeddings and the checkpoint has no `head`). The embedding
/// is kept in bfloat16 unless the weights are F32.
template <WeightPolicy W>
Decoder<W> load_hf_decoder(const io::Checkpoint& ck, const std::string& prefix, const std::string& head, const HfDecoderDims& d,
                           bool int8_attention);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

template <WeightPolicy W>
Decoder<W>::State::State(const Decoder& dec, std::size_t capacity) : cap_(capacity) {
    if (capacity == 0) detail::fail("context: max_tokens must be positive");
    logits_.resize(dec.vocab());
    if (dec.device) {
        dev_ = dec.device->new_state(capacity);
        return;
    }
    for (const auto& b : dec.blocks) {
        k_.emplace_back(capacity * b.kv_dim());
        v_.emplace_back(capacity * b.kv_dim());
    }
}

template <WeightPolicy W>
void Decoder<W>::copy_tokens(State& dst, const State& src) const {
    if (&dst == &src) return;
    if (src.len_ > dst.cap_) detail::fail("context: ", src.len_, " tokens do not fit a context of ", dst.cap_);
    if (dst.vis_ != src.vis_)  // tokens are read against their image: the same one, attached once and shared
        detail::fail("context: the two sequences have different images attached (share_vision the source's first)");
    if (device) {
        device->copy_tokens(device_state(dst), device_state(src), src.len_);
    } else {
        for (std::size_t l = 0; l < blocks.size(); ++l) {
            const std::size_t n = src.len_ * blocks[l].kv_dim();
            std::copy_n(src.k_[l].data(), n, dst.k_[l].data());
            std::copy_n(src.v_[l].data(), n, dst.v_[l].data());
        }
    }
    dst.len_ = src.len_;
}

template <WeightPolicy W>
void Decoder<W>::validate() const {
    if (blocks.empty()) detail::fail("decoder: no layers");
    for (const auto& b : blocks) {
        b.validate();
        if (b.dim() != hidden()) detail::fail("decoder: a layer takes ", b.dim(), " channels, the embedding gives ", hidden());
    }
    if (norm.dim() != hidden() || head.in_features() != hidden())
        detail::fail("decoder: final norm / LM head do not take ", hidden(), " channels");
    if (!cross_before.empty() && cross_before.size() != blocks.size()) detail::fail("decoder: cross_before needs one entry per layer");
    for (int c : cross_before)
        if (c >= int(cross.size())) detail::fail("decoder: cross-attention layer ", c, " does not exist");
}

template <WeightPolicy W>
void Decoder<W>::attach(State& s, const float* vision, std::size_t tokens) const {
    if (tokens == 0) detail::fail("prefill: no vision tokens");
    s.len_ = 0;
    auto vis = std::make_shared<std::vector<VisionKV>>();
    for (const auto& c : cross) vis->push_back(c.project(vision, tokens));
    s.vis_ = std::move(vis);
    if (device)
        for (std::size_t c = 0; c < cross.size(); ++c) device->attach(device_state(s), c, (*s.vis_)[c].k, (*s.vis_)[c].v, tokens);
}

template <WeightPolicy W>
void Decoder<W>::share_vision(State& dst, const State& src) const {
    if (!src.vis_) detail::fail("context: no image is attached to the sequence to share it from");
    if (src.vis_->size() != cross.size()) detail::fail("context: the image to share was attached by another decoder");
    dst.len_ = 0;
    dst.vis_ = src.vis_;
    if (device)
        for (std::size_t c = 0; c < cross.size(); ++c) {
            const VisionKV& kv = (*dst.vis_)[c];
            device->attach(device_state(dst), c, kv.k, kv.v, kv.tokens);
        }
}

template <WeightPolicy W>
std::span<const float> Decoder<W>::forward(State& s, const float* x_in, std::size_t n, const RopeTable& rope, const Trace& trace,
                                           bool all_logits) const {
    if (!s.room(n)) detail::fail("context: ", s.len_ + n, " tokens exceed this context's capacity of ", s.cap_);
    if (rope.tokens < n || rope.head_dim != head_dim()) detail::fail("decoder: a rope table for ", n, " tokens of ", head_dim(), " is needed");
    if (device) {
        const std::size_t rows = all_logits ? n : 1;
        s.logits_.resize(rows * vocab());
        device->forward(device_state(s), s.len_, x_in, n, rope.cos.data(), rope.sin.data(), all_logits, s.logits_.data());
        s.len_ += n;
        if (all_logits) detail::emit(trace, "logits", s.logits_.data(), n, vocab());
        return s.logits_;
    }
    const std::size_t h = hidden();
    if (s.x_.size() < n * h) s.x_.resize(n * h);
    float* x = s.x_.data();
    std::copy_n(x_in, n * h, x);
    for (std::size_t l = 0; l < blocks.size(); ++l) {
        if (!cross_before.empty() && cross_before[l] >= 0) cross[std::size_t(cross_before[l])].forward(x, n, vision_of(s, cross_before[l]), s.ws_);
        const bool detailed = bool(trace) && l == 0;
        blocks[l].forward(x, n, rope, s.k_[l].data(), s.v_[l].data(), s.len_, s.ws_, detailed ? trace : Trace{},
                          detailed ? "dec_l" + std::to_string(l) + "_" : std::string());
        if (trace) trace("dec_layer_out_" + std::to_string(l), x, n, h);
    }
    s.len_ += n;
    float* y = s.ws_.h.data();  // [n, hidden], free after the last block
    norm.forward(x, n, h, y, h);
    detail::emit(trace, "final_hidden", y, n, h);
    const std::size_t rows = all_logits ? n : 1;
    s.logits_.resize(rows * vocab());
    head.forward(y + (n - rows) * h, rows, h, s.logits_.data(), vocab());
    if (all_logits) detail::emit(trace, "logits", s.logits_.data(), n, vocab());
    return s.logits_;
}

template <WeightPolicy W>
std::span<float> Decoder<W>::step(State* const* states, const std::int32_t* ids, std::size_t n, const RopeTable& rope, Batch& b) const {
    const std::size_t h = hidden();
    b.x.resize(n * h), b.kc.resize(n), b.vc.resize(n), b.vis.resize(n), b.len.resize(n);
    for (std::size_t r = 0; r < n; ++r) {
        const State& s = *states[r];
        if (!s.room()) detail::fail("context: ", s.len_ + 1, " tokens exceed this context's capacity of ", s.cap_);
        embed.row(ids[r], b.x.data() + r * h);
        b.len[r] = s.len_;
    }
    if (device) {
        b.dev.resize(n);
        for (std::size_t r = 0; r < n; ++r) b.dev[r] = &device_state(*states[r]);
        b.logits.resize(n * vocab());
        device->step(b.dev.data(), b.len.data(), b.x.data(), n, rope.cos.data(), rope.sin.data(), b.logits.data());
        for (std::size_t r = 0; r < n; ++r) states[r]->len_ += 1;
        return b.logits;
    }
    for (std::size_t l = 0; l < blocks.size(); ++l) {
        if (!cross_before.empty() && cross_before[l] >= 0) {
            const std::size_t c = std::size_t(cross_before[l]);
            for (std::size_t r = 0; r < n; ++r) b.vis[r] = &vision_of(*states[r], cross_before[l]);
            cross[c].forward_rows(b.x.data(), n, b.vis.data(), b.ws);
        }
        for (std::size_t r = 0; r < n; ++r) b.kc[r] = states[r]->k_[l].data(), b.vc[r] = states[r]->v_[l].data();
        blocks[l].forward_rows(b.x.data(), n, rope, b.kc.data(), b.vc.data(), b.len.data(), b.ws);
    }
    for (std::size_t r = 0; r < n; ++r) states[r]->len_ += 1;
    float* y = b.ws.h.data();
    norm.forward(b.x.data(), n, h, y, h);
    b.logits.resize(n * vocab());
    head.forward(y, n, h, b.logits.data(), vocab());
    return b.logits;
}

template <WeightPolicy W>
void Decoder<W>::to_device(std::shared_ptr<backend::Backend> be) {
    using backend::upload_linear, backend::upload_mlp, backend::upload_norm, backend::upload_floats;
    auto dev = std::make_shared<backend::DeviceDecoder>(be, hidden(), vocab());
    backend::Backend& on = *be;
    for (const auto& b : blocks) {
        backend::DeviceDecoder::Block d;
        d.norm1 = upload_norm(on, b.norm1), d.norm2 = upload_norm(on, b.norm2);
        d.q = upload_linear(on, b.q), d.k = upload_linear(on, b.k), d.v = upload_linear(on, b.v), d.o = upload_linear(on, b.o);
        d.mlp = upload_mlp(on, b.mlp);
        d.heads = b.heads, d.kv_heads = b.kv_heads, d.head_dim = b.head_dim;
        dev->add_block(std::move(d));
    }
    for (const auto& c : cross) {
        backend::DeviceDecoder::Cross d;
        d.norm1 = upload_norm(on, c.norm1()), d.norm2 = upload_norm(on, c.norm2());
        d.q = upload_linear(on, c.q()), d.o = upload_linear(on, c.o());
        d.mlp = upload_mlp(on, c.mlp());
        d.attn_gate = upload_floats(on, c.attn_gate()), d.attn_gate_size = c.attn_gate().size();
        d.mlp_gate = upload_floats(on, c.mlp_gate()), d.mlp_gate_size = c.mlp_gate().size();
        d.heads = c.heads(), d.kv_heads = c.kv_heads(), d.head_dim = c.head_dim();
        dev->add_cross(std::move(d));
    }
    dev->set_tail(cross_before, upload_norm(on, norm), upload_linear(on, head));
    device = std::move(dev);
}

template <WeightPolicy W>
Decoder<W> load_hf_decoder(const io::Checkpoint& ck, const std::string& prefix, const std::string& head, const HfDecoderDims& d,
                           bool int8_attention) {
    const std::size_t h = d.hidden, qd = d.heads * d.head_dim, kvd = d.kv_heads * d.head_dim;
    Decoder<W> dec;
    for (std::size_t i = 0; i < d.layers; ++i) {
        const std::string l = prefix + "layers." + std::to_string(i) + ".";
        auto lin = [&](const std::string& name, std::size_t out, std::size_t in, bool bias) {
            return load_linear<W>(ck, l + name + ".weight", bias ? l + name + ".bias" : std::string(), out, in);
        };
        DecoderBlock<W> b;
        b.norm1 = load_rms_norm(ck, l + "input_layernorm.weight", h, d.rms_eps);
        b.norm2 = load_rms_norm(ck, l + "post_attention_layernorm.weight", h, d.rms_eps);
        b.q = lin("self_attn.q_proj", qd, h, d.qkv_bias);
        b.k = lin("self_attn.k_proj", kvd, h, d.qkv_bias);
        b.v = lin("self_attn.v_proj", kvd, h, d.qkv_bias);
        b.o = lin("self_attn.o_proj", h, qd, false);
        b.mlp = Mlp<W>::gated(lin("mlp.gate_proj", d.mlp, h, false), lin("mlp.up_proj", d.mlp, h, false), lin("mlp.down_proj", h, d.mlp, false));
        b.heads = d.heads, b.kv_heads = d.kv_heads, b.head_dim = d.head_dim, b.int8_attention = int8_attention;
        dec.blocks.push_back(std::move(b));
    }
    dec.norm = load_rms_norm(ck, prefix + "norm.weight", h, d.rms_eps);
    const Array<float> emb = load_tensor(ck, prefix + "embed_tokens.weight", {d.vocab, h});
    dec.embed = Embedding(emb.data(), d.vocab, h, !std::is_same_v<W, F32>);
    if (ck.contains(head) || ck.contains(PackedNames(head).data)) dec.head = load_linear<W>(ck, head, "", d.vocab, h);
    else if (d.tie_embeddings) dec.head = Linear<W>(emb.data(), d.vocab, h);
    else detail::fail(ck.source(), ": config.json says tie_word_embeddings = false but there is no ", head);
    dec.validate();
    return dec;
}

DOCVLM_NAMESPACE_END

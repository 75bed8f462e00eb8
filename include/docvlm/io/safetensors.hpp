// docvlm/io/safetensors.hpp — validated, zero-copy safetensors reader (single or sharded) and writer.
//
// Format (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
// N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}},
// then the data section. Files are untrusted: every size and offset is checked before use and
// every problem is a docvlm::Error naming the file, the tensor and what is wrong.
//
//   auto ckpt = docvlm::io::Checkpoint::open("MinerU2.5-2509-1.2B");   // dir, file or index.json
//   auto w = ckpt.view<docvlm::bf16, 2>("model.embed_tokens.weight");   // zero-copy [vocab, hidden]
//   docvlm::Array<float> n = ckpt.to_f32("model.norm.weight");          // converted copy
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/dtype.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/io/mapped_file.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace io {

/// One tensor's entry in a safetensors header.
struct TensorInfo {
    std::string name;
    DType dtype = DType::f32;
    std::vector<std::size_t> shape;
    std::size_t offset = 0;  ///< byte offset inside the data section
    std::size_t nbytes = 0;

    std::size_t numel() const {
        std::size_t n = 1;
        for (std::size_t d : shape) n *= d;
        return n;
    }
};

/// One safetensors file: validated header plus zero-copy access to the data.
class SafeTensors {
public:
    /// Largest header accepted (the format's own reference implementation uses the same limit).
    static constexpr std::size_t max_header_bytes = 100u << 20;

    /// Maps and validates a file.
    static SafeTensors open(const std::string& path);
    /// Validates a buffer that outlives the result; `source` names it in error messages.
    static SafeTensors parse(std::span<const std::byte> bytes, std::string source = "<memory>");

    const std::string& source() const { return source_; }
    /// Every tensor, in data-offset order.
    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    /// The "__metadata__" string map (empty if absent).
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    bool contains(std::string_view name) const { return index_.count(std::string(name)) != 0; }
    /// Header entry of `name`; throws docvlm::Error naming the file if absent.
    const TensorInfo& info(std::string_view name) const;
    /// Raw bytes of `name` (little-endian, row-major).
    std::span<const std::byte> bytes(std::string_view name) const;
    /// Zero-copy typed view; checks dtype, rank and alignment.
    template <class T, std::size_t N>
    TensorView<const T, N> view(std::string_view name) const;
    /// Copy converted to float (any dtype), with the tensor's shape.
    Array<float> to_f32(std::string_view name) const;

private:
    std::shared_ptr<MappedFile> file_;  // null when parsing caller-owned memory
    std::string source_;
    std::span<const std::byte> data_;   // the data section
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string, std::size_t> index_;
    std::map<std::string, std::string> metadata_;
};

/// A checkpoint: one safetensors file, or several shards listed by model.safetensors.index.json.
class Checkpoint {
public:
    /// `path` is a .safetensors file, a *.safetensors.index.json, or a directory holding
    /// model.safetensors.index.json or model.safetensors.
    static Checkpoint open(const std::string& path);

    /// Names of all tensors, sorted.
    std::vector<std::string> names() const;
    bool contains(std::string_view name) const { return where_.count(std::string(name)) != 0; }
    const TensorInfo& info(std::string_view name) const { return shard_of(name).info(name); }
    std::span<const std::byte> bytes(std::string_view name) const { return shard_of(name).bytes(name); }
    template <class T, std::size_t N>
    TensorView<const T, N> view(std::string_view name) const { return shard_of(name).template view<T, N>(name); }
    Array<float> to_f32(std::string_view name) const { return shard_of(name).to_f32(name); }
    /// The shard holding `name`; throws docvlm::Error if no shard has it.
    const SafeTensors& shard_of(std::string_view name) const;
    const std::vector<SafeTensors>& shards() const { return shards_; }
    /// Where the checkpoint was opened from.
    const std::string& source() const { return source_; }

private:
    std::string source_;
    std::vector<SafeTensors> shards_;
    std::unordered_map<std::string, std::size_t> where_;
};

/// Builds a safetensors file in memory and writes it atomically (temporary file, then rename).
class SafeTensorsWriter {
public:
    /// Adds a tensor (bytes copied). Throws on a duplicate name or a size that does not match.
    void add(std::string name, DType dtype, std::vector<std::size_t> shape, std::span<const std::byte> data);
    template <class T>
    void add(std::string name, std::vector<std::size_t> shape, const T* data);
    void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }
    /// The complete file contents.
    std::vector<std::byte> serialize() const;
    void write(const std::string& path) const;

private:
    struct Entry {
        std::string name;
        DType dtype;
        std::vector<std::size_t> shape;
        std::vector<std::byte> data;
    };
    std::vector<Entry> entries_;
    std::unordered_set<std::string> names_;
    std::map<std::string, std::string> metadata_;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

inline std::uint64_t read_le64(const std::byte* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | std::uint64_t(p[i]);
    return v;
}

// Reads a non-negative integer from a JSON value; throws with `what` in the message.
inline std::size_t json_size(const nlohmann::json& v, const std::string& where) {
    if (!v.is_number_unsigned()) docvlm::detail::fail(where, ": expected a non-negative integer, got ", v.dump());
    return v.get<std::uint64_t>();
}

}  // namespace detail

inline SafeTensors SafeTensors::open(const std::string& path) {
    auto file = std::make_shared<MappedFile>(path);
    SafeTensors st = parse(file->bytes(), path);
    st.file_ = std::move(file);
    return st;
}

inline SafeTensors SafeTensors::parse(std::span<const std::byte> bytes, std::string source) {
    using docvlm::detail::fail;
    using nlohmann::json;
    SafeTensors st;
    st.source_ = std::move(source);
    const std::string& src = st.source_;
    if (bytes.size() < 8) fail(src, ": ", bytes.size(), " bytes is too short for a safetensors file (8-byte header length)");
    const std::uint64_t header_len = detail::read_le64(bytes.data());
    if ((header_len > max_header_bytes || header_len > bytes.size() - 8) && (bytes.size() < 9 || char(bytes[8]) != '{'))
        fail(src, ": not a safetensors file (no JSON header after the 8-byte length)");
    if (header_len > max_header_bytes)
        fail(src, ": header length ", header_len, " bytes is above the ", max_header_bytes, "-byte limit");
    if (header_len > bytes.size() - 8)
        fail(src, ": header length ", header_len, " bytes runs past the end of the file (", bytes.size(), " bytes)");
    const char* hdr = reinterpret_cast<const char*>(bytes.data() + 8);
    st.data_ = bytes.subspan(8 + header_len);

    // Parse, rejecting duplicate top-level names and nesting deeper than the format has.
    std::unordered_set<std::string> seen;
    json header;
    try {
        header = json::parse(hdr, hdr + header_len, [&](int depth, json::parse_event_t ev, json& v) {
            if (depth > 4) fail(src, ": header JSON is nested deeper than a safetensors header can be");
            if (ev == json::parse_event_t::key && depth == 1) {
                const std::string& k = v.get_ref<const std::string&>();
                if (!seen.insert(k).second) fail(src, ": tensor '", k, "' appears twice in the header");
            }
            return true;
        });
    } catch (const json::exception& e) {
        fail(src, ": header is not valid JSON: ", e.what());
    }
    if (!header.is_object()) fail(src, ": header must be a JSON object, got ", header.type_name());

    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const json& e = it.value();
        if (name == "__metadata__") {
            if (!e.is_object()) fail(src, ": __metadata__ must be an object of strings");
            for (auto m = e.begin(); m != e.end(); ++m) {
                if (!m.value().is_string()) fail(src, ": __metadata__ entry '", m.key(), "' is not a string");
                st.metadata_[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        const std::string where = docvlm::detail::concat(src, ": tensor '", name, "'");
        if (name.empty()) fail(src, ": a tensor has an empty name");
        if (!e.is_object()) fail(where, ": entry must be an object");
        TensorInfo info;
        info.name = name;
        auto dt = e.find("dtype");
        if (dt == e.end() || !dt->is_string()) fail(where, ": missing string field 'dtype'");
        auto parsed = dtype_from_name(dt->get_ref<const std::string&>());
        if (!parsed) fail(where, ": unknown dtype '", dt->get<std::string>(), "'");
        info.dtype = *parsed;
        auto sh = e.find("shape");
        if (sh == e.end() || !sh->is_array()) fail(where, ": missing array field 'shape'");
        std::size_t numel = 1;
        for (const json& d : *sh) {
            const std::size_t dim = detail::json_size(d, where + " shape");
            if (__builtin_mul_overflow(numel, dim, &numel)) fail(where, ": shape ", sh->dump(), " overflows");
            info.shape.push_back(dim);
        }
        std::size_t expected = 0;
        if (__builtin_mul_overflow(numel, dtype_size(info.dtype), &expected))
            fail(where, ": shape ", sh->dump(), " overflows");
        auto off = e.find("data_offsets");
        if (off == e.end() || !off->is_array() || off->size() != 2)
            fail(where, ": 'data_offsets' must be an array [begin, end]");
        const std::size_t begin = detail::json_size((*off)[0], where + " data_offsets"),
                          end = detail::json_size((*off)[1], where + " data_offsets");
        if (begin > end) fail(where, ": data_offsets [", begin, ", ", end, "] end before they begin");
        if (end > st.data_.size())
            fail(where, ": data_offsets [", begin, ", ", end, "] run past the data section (", st.data_.size(),
                 " bytes; file truncated?)");
        if (end - begin != expected)
            fail(where, ": data_offsets span ", end - begin, " bytes but ", dtype_name(info.dtype), " ", sh->dump(),
                 " needs ", expected);
        info.offset = begin;
        info.nbytes = end - begin;
        st.tensors_.push_back(std::move(info));
    }

    // The data section must be covered exactly, without overlaps or holes.
    std::sort(st.tensors_.begin(), st.tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
        return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
    });
    std::size_t pos = 0;
    const TensorInfo* prev = nullptr;
    for (const TensorInfo& t : st.tensors_) {
        if (t.offset < pos)
            fail(src, ": tensor '", t.name, "' overlaps tensor '", prev->name, "' (bytes ", t.offset, "..", pos, ")");
        if (t.offset > pos)
            fail(src, ": ", t.offset - pos, " bytes before tensor '", t.name, "' (offset ", pos,
                 ") belong to no tensor");
        pos = t.offset + t.nbytes;
        if (t.nbytes) prev = &t;
    }
    if (pos != st.data_.size())
        fail(src, ": the data section has ", st.data_.size() - pos, " bytes after the last tensor that belong to no tensor");
    for (std::size_t i = 0; i < st.tensors_.size(); ++i) st.index_.emplace(st.tensors_[i].name, i);
    return st;
}

inline const TensorInfo& SafeTensors::info(std::string_view name) const {
    auto it = index_.find(std::string(name));
    if (it == index_.end()) docvlm::detail::fail(source_, ": no tensor named '", name, "'");
    return tensors_[it->second];
}

inline std::span<const std::byte> SafeTensors::bytes(std::string_view name) const {
    const TensorInfo& t = info(name);
    return data_.subspan(t.offset, t.nbytes);
}

template <class T, std::size_t N>
TensorView<const T, N> SafeTensors::view(std::string_view name) const {
    const TensorInfo& t = info(name);
    if (t.dtype != dtype_of<T>)
        docvlm::detail::fail(source_, ": tensor '", name, "' is ", dtype_name(t.dtype), ", not ", dtype_name(dtype_of<T>));
    if (t.shape.size() != N)
        docvlm::detail::fail(source_, ": tensor '", name, "' has ", t.shape.size(), " dimensions, expected ", N);
    const std::byte* p = data_.data() + t.offset;
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) != 0)
        docvlm::detail::fail(source_, ": tensor '", name, "' is not aligned to ", alignof(T),
                             " bytes in the file; use to_f32() for a converted copy");
    std::array<std::size_t, N> shape{};
    std::copy(t.shape.begin(), t.shape.end(), shape.begin());
    return make_view(reinterpret_cast<const T*>(p), shape);
}

inline Array<float> SafeTensors::to_f32(std::string_view name) const {
    const TensorInfo& t = info(name);
    Array<float> out(t.shape);
    convert_to_f32(t.dtype, data_.data() + t.offset, out.data(), t.numel());
    return out;
}

inline Checkpoint Checkpoint::open(const std::string& path) {
    namespace fs = std::filesystem;
    using docvlm::detail::fail;
    Checkpoint ck;
    ck.source_ = path;
    fs::path p(path);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
        if (fs::exists(p / "model.safetensors.index.json", ec)) p /= "model.safetensors.index.json";
        else if (fs::exists(p / "model.safetensors", ec)) p /= "model.safetensors";
        else fail(path, ": directory has neither model.safetensors.index.json nor model.safetensors");
    }
    const std::string file = p.string();
    if (file.size() < 5 || file.compare(file.size() - 5, 5, ".json") != 0) {
        ck.shards_.push_back(SafeTensors::open(file));
        for (const TensorInfo& t : ck.shards_[0].tensors()) ck.where_.emplace(t.name, 0);
        return ck;
    }

    // Sharded: {"metadata": {...}, "weight_map": {tensor: shard file name}}
    std::ifstream in(file, std::ios::binary);
    if (!in) fail(file, ": cannot open");
    nlohmann::json index;
    try {
        index = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        fail(file, ": not valid JSON: ", e.what());
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
        fail(file, ": missing object 'weight_map'");
    std::map<std::string, std::size_t> shard_ids;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
        if (!it.value().is_string()) fail(file, ": weight_map entry '", it.key(), "' is not a file name");
        const std::string shard = it.value().get<std::string>();
        if (shard.empty() || shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos ||
            shard == "." || shard == "..")
            fail(file, ": weight_map entry '", it.key(), "' names '", shard, "', which is not a file in the same directory");
        auto [pos, fresh] = shard_ids.emplace(shard, ck.shards_.size());
        if (fresh) ck.shards_.push_back(SafeTensors::open((p.parent_path() / shard).string()));
        if (!ck.shards_[pos->second].contains(it.key()))
            fail(file, ": weight_map puts tensor '", it.key(), "' in ", shard, ", which has no such tensor");
        ck.where_.emplace(it.key(), pos->second);
    }
    return ck;
}

inline std::vector<std::string> Checkpoint::names() const {
    std::vector<std::string> out;
    out.reserve(where_.size());
    for (const auto& [name, shard] : where_) out.push_back(name);
    std::sort(out.begin(), out.end());
    return out;
}

inline const SafeTensors& Checkpoint::shard_of(std::string_view name) const {
    auto it = where_.find(std::string(name));
    if (it == where_.end()) docvlm::detail::fail(source_, ": checkpoint has no tensor named '", name, "'");
    return shards_[it->second];
}

inline void SafeTensorsWriter::add(std::string name, DType dtype, std::vector<std::size_t> shape,
                                   std::span<const std::byte> data) {
    std::size_t numel = 1;
    for (std::size_t d : shape) numel *= d;
    if (numel * dtype_size(dtype) != data.size())
        docvlm::detail::fail("SafeTensorsWriter: tensor '", name, "' has ", data.size(), " bytes, its shape needs ",
                             numel * dtype_size(dtype));
    if (name.empty() || name == "__metadata__") docvlm::detail::fail("SafeTensorsWriter: invalid tensor name '", name, "'");
    if (!names_.insert(name).second) docvlm::detail::fail("SafeTensorsWriter: tensor '", name, "' added twice");
    entries_.push_back({std::move(name), dtype, std::move(shape), std::vector<std::byte>(data.begin(), data.end())});
}

template <class T>
void SafeTensorsWriter::add(std::string name, std::vector<std::size_t> shape, const T* data) {
    std::size_t numel = 1;
    for (std::size_t d : shape) numel *= d;
    add(std::move(name), dtype_of<T>, std::move(shape),
        std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), numel * sizeof(T)));
}

inline std::vector<std::byte> SafeTensorsWriter::serialize() const {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    // Data in order of decreasing element size (stable): every tensor then starts at a multiple of
    // its element size, as the format's reference writer arranges it.
    std::vector<const Entry*> order;
    for (const Entry& e : entries_) order.push_back(&e);
    std::stable_sort(order.begin(), order.end(),
                     [](const Entry* a, const Entry* b) { return dtype_size(a->dtype) > dtype_size(b->dtype); });
    std::size_t offset = 0;
    for (const Entry* ep : order) {
        const Entry& e = *ep;
        header[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.data.size()}}};
        offset += e.data.size();
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
    std::vector<std::byte> out(8 + text.size() + offset);
    for (int i = 0; i < 8; ++i) out[i] = std::byte((std::uint64_t(text.size()) >> (8 * i)) & 0xff);
    std::memcpy(out.data() + 8, text.data(), text.size());
    std::byte* dst = out.data() + 8 + text.size();
    for (const Entry* e : order) {
        if (!e->data.empty()) std::memcpy(dst, e->data.data(), e->data.size());
        dst += e->data.size();
    }
    return out;
}

inline void SafeTensorsWriter::write(const std::string& path) const {
    const std::vector<std::byte> bytes = serialize();
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) docvlm::detail::fail(tmp, ": cannot create");
        out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        if (!out.flush()) docvlm::detail::fail(tmp, ": write failed");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) docvlm::detail::fail(path, ": cannot rename ", tmp, ": ", ec.message());
}

}  // namespace io
DOCVLM_NAMESPACE_END

// docvlm/serve/multipart.hpp — multipart/form-data bodies (RFC 7578 over RFC 2046): the form
// fields of an upload. Read here rather than by the HTTP library so every client's spelling is
// accepted (a preamble before the first boundary, as Node's undici sends; quoted boundaries;
// LF-only line ends) and so the fuzzer covers it. Bytes → parts; nothing is written to disk.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/serve/openai_api.hpp>

#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace serve {

struct FormPart {
    std::string name, filename, content_type;
    std::string data;
};

/// The boundary of a "multipart/form-data; boundary=..." content type; ApiError 400 otherwise.
std::string multipart_boundary(std::string_view content_type);
/// The parts of a multipart body, in order; ApiError 400 for a malformed body or more than
/// `max_parts` parts.
std::vector<FormPart> parse_multipart(std::string_view body, std::string_view content_type, std::size_t max_parts = 32);
/// The first part named `name`, if any.
const FormPart* form_field(const std::vector<FormPart>& parts, std::string_view name);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

inline std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// The value of `key` in a header's parameters (`; key=value` or `; key="value"`), if present.
inline std::optional<std::string> header_param(std::string_view header, std::string_view key) {
    const std::string low = lower(header);
    for (std::size_t at = low.find(';'); at != std::string::npos; at = low.find(';', at + 1)) {
        std::size_t k = at + 1;
        while (k < low.size() && (low[k] == ' ' || low[k] == '\t')) ++k;
        if (low.compare(k, key.size(), key) != 0 || k + key.size() >= low.size() || low[k + key.size()] != '=') continue;
        std::size_t v = k + key.size() + 1;
        if (v < header.size() && header[v] == '"') {
            const std::size_t end = header.find('"', v + 1);
            if (end == std::string_view::npos) return std::nullopt;
            return std::string(header.substr(v + 1, end - v - 1));
        }
        std::size_t end = v;
        while (end < header.size() && header[end] != ';' && header[end] != ' ' && header[end] != '\t') ++end;
        return std::string(header.substr(v, end - v));
    }
    return std::nullopt;
}

}  // namespace detail

inline std::string multipart_boundary(std::string_view content_type) {
    if (!detail::lower(content_type).starts_with("multipart/form-data"))
        reject(400, "not_multipart", "send the document as multipart/form-data with a 'file' field");
    const auto b = detail::header_param(content_type, "boundary");
    if (!b || b->empty() || b->size() > 200) reject(400, "invalid_multipart", "the multipart content type has no usable boundary");
    return *b;
}

inline std::vector<FormPart> parse_multipart(std::string_view body, std::string_view content_type, std::size_t max_parts) {
    const std::string delim = "--" + multipart_boundary(content_type);
    std::vector<FormPart> parts;
    // The first delimiter may follow a preamble; each later one follows a line end.
    std::size_t at = body.starts_with(delim) ? 0 : body.find("\n" + delim);
    if (at == std::string_view::npos) reject(400, "invalid_multipart", "the body holds no multipart boundary");
    at = body.find(delim, at);
    for (;;) {
        at += delim.size();
        if (body.substr(at, 2) == "--") return parts;  // the closing delimiter
        const std::size_t line = body.find('\n', at);
        if (line == std::string_view::npos) break;
        // headers up to the first empty line (CRLF or LF line ends)
        const std::size_t h0 = line + 1;
        std::size_t head_end = std::string_view::npos, data = 0;
        if (body.substr(h0, 2) == "\r\n") head_end = h0, data = h0 + 2;
        else if (body.substr(h0, 1) == "\n") head_end = h0, data = h0 + 1;
        else if (const std::size_t crlf = body.find("\r\n\r\n", h0), lf = body.find("\n\n", h0); crlf != std::string_view::npos && crlf < lf)
            head_end = crlf, data = crlf + 4;
        else if (lf != std::string_view::npos)
            head_end = lf, data = lf + 2;
        if (head_end == std::string_view::npos) break;
        FormPart part;
        std::string_view headers = body.substr(h0, head_end - h0);
        while (!headers.empty()) {
            const std::size_t eol = headers.find('\n');
            std::string_view h = headers.substr(0, eol);
            headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 1);
            if (!h.empty() && h.back() == '\r') h.remove_suffix(1);
            const std::string low = detail::lower(h);
            if (low.starts_with("content-disposition:")) {
                part.name = detail::header_param(h, "name").value_or("");
                part.filename = detail::header_param(h, "filename").value_or("");
            } else if (low.starts_with("content-type:")) {
                std::string_view v = h.substr(13);
                while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
                part.content_type = std::string(v);
            }
        }
        const std::size_t next = body.find("\n" + delim, data);
        if (next == std::string_view::npos) break;
        const std::size_t end = next > data && body[next - 1] == '\r' ? next - 1 : next;
        part.data = std::string(body.substr(data, end - data));
        if (parts.size() >= max_parts) reject(400, "invalid_multipart", "more than ", max_parts, " form fields");
        parts.push_back(std::move(part));
        at = next + 1;
    }
    reject(400, "invalid_multipart", "the multipart body is truncated (no closing boundary)");
}

inline const FormPart* form_field(const std::vector<FormPart>& parts, std::string_view name) {
    for (const FormPart& p : parts)
        if (p.name == name) return &p;
    return nullptr;
}

}  // namespace serve
DOCVLM_NAMESPACE_END

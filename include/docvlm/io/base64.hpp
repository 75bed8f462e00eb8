// docvlm/io/base64.hpp — RFC 4648 base64 (standard alphabet, with padding): the tiktoken
// vocabulary's token bytes, and images written into documents as data: URIs.
#pragma once

#include <docvlm/core/config.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

DOCVLM_NAMESPACE_BEGIN
namespace io {

/// base64 of `bytes`, padded with '=' to a multiple of 4 characters.
std::string base64_encode(std::string_view bytes);
/// The bytes of padded base64 text; nullopt for anything else (wrong length, a character outside
/// the alphabet, padding before the end).
std::optional<std::string> base64_decode(std::string_view text);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline std::string base64_encode(std::string_view bytes) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
        std::uint32_t x = 0;
        for (std::size_t k = 0; k < 3; ++k) x = x << 8 | (k < n ? std::uint8_t(bytes[i + k]) : 0u);
        for (std::size_t k = 0; k < 4; ++k) out += k <= n ? alphabet[(x >> (18 - 6 * k)) & 63] : '=';
    }
    return out;
}

inline std::optional<std::string> base64_decode(std::string_view s) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        return c == '+' ? 62 : c == '/' ? 63 : -1;
    };
    if (s.size() % 4) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < s.size(); i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = s[i + std::size_t(k)];
            if (c == '=' && i + 4 == s.size() && k >= 2) v[k] = 0, ++pad;
            else if ((v[k] = value(c)) < 0 || pad) return std::nullopt;
        }
        const std::uint32_t x = std::uint32_t(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
        out += char(x >> 16);
        if (pad < 2) out += char((x >> 8) & 0xff);
        if (pad < 1) out += char(x & 0xff);
    }
    return out;
}

}  // namespace io
DOCVLM_NAMESPACE_END

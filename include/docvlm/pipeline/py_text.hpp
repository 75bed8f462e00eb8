// docvlm/pipeline/py_text.hpp — Python's str semantics on UTF-8 text, for code that reproduces a
// Python client exactly: code points, str.isspace() (= re's \s), str.strip(), str.splitlines(),
// str.lower(), repr(), int(), re's \d (Unicode decimal digits, category Nd). Byte positions are
// used throughout; a stray byte counts as one code point.
#pragma once

#include <docvlm/core/config.hpp>

#include <utf8proc.h>

#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline::py {

/// Byte length of the code point starting at s[i] (1 for a stray or truncated sequence).
inline std::size_t cp_len(std::string_view s, std::size_t i) {
    utf8proc_int32_t cp;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                    static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    return n > 0 ? static_cast<std::size_t>(n) : 1;
}

/// The code point starting at s[i]; -1 for a stray byte.
inline char32_t cp_at(std::string_view s, std::size_t i) {
    utf8proc_int32_t cp;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                    static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    return n > 0 ? static_cast<char32_t>(cp) : static_cast<char32_t>(-1);
}

/// str.isspace() of one code point: bidirectional class WS, B or S, or category Zs.
inline bool is_space(char32_t c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/// re's \d in a str pattern: a decimal digit of any script (category Nd).
inline bool is_decimal(char32_t c) {
    if (c >= '0' && c <= '9') return true;
    if (c < 0x80 || c > 0x10ffff) return false;
    return utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_ND;
}

/// int() of one decimal digit (is_decimal(c)): Unicode encodes each script's digits as a run of
/// 0..9, and adjacent runs (the mathematical digits) each hold ten, so the value is the distance
/// from the first digit of the contiguous run, modulo 10.
inline int decimal_value(char32_t c) {
    if (c >= '0' && c <= '9') return int(c - '0');
    char32_t first = c;
    while (first > 0 && is_decimal(first - 1)) --first;
    return int((c - first) % 10);
}

/// Byte length of the whitespace code point at s[i], else 0.
inline std::size_t space_at(std::string_view s, std::size_t i) {
    if (i >= s.size()) return 0;
    return is_space(cp_at(s, i)) ? cp_len(s, i) : 0;
}

/// Byte length of the whitespace code point that ends at s[i - 1], else 0.
inline std::size_t space_before(std::string_view s, std::size_t i) {
    std::size_t b = i;
    while (b > 0 && i - b < 4) {
        --b;
        if ((static_cast<unsigned char>(s[b]) & 0xc0) != 0x80) break;  // the first byte of a code point
    }
    if (b == i || cp_len(s, b) != i - b) return 0;
    return is_space(cp_at(s, b)) ? i - b : 0;
}

/// str.strip(): without leading and trailing whitespace.
inline std::string_view strip(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e)
        if (const std::size_t n = space_at(s, b)) b += n;
        else break;
    while (e > b)
        if (const std::size_t n = space_before(s, e)) e -= n;
        else break;
    return s.substr(b, e - b);
}

/// len(): the number of code points.
inline std::size_t length(std::string_view s) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size(); i += cp_len(s, i)) ++n;
    return n;
}

/// Byte length of the line boundary str.splitlines() sees at s[i] (\n, \r, \r\n, \v, \f, \x1c-\x1e,
/// U+0085, U+2028, U+2029), else 0.
inline std::size_t line_break_at(std::string_view s, std::size_t i) {
    if (i >= s.size()) return 0;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\r') return i + 1 < s.size() && s[i + 1] == '\n' ? 2 : 1;
    if (c == '\n' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e)) return 1;
    if (c < 0x80) return 0;
    const char32_t cp = cp_at(s, i);
    return cp == 0x85 || cp == 0x2028 || cp == 0x2029 ? cp_len(s, i) : 0;
}

/// str.splitlines(): the lines without their boundaries (no empty last line for a final boundary).
inline std::vector<std::string_view> splitlines(std::string_view s) {
    std::vector<std::string_view> lines;
    std::size_t start = 0, i = 0;
    while (i < s.size()) {
        if (const std::size_t n = line_break_at(s, i)) {
            lines.push_back(s.substr(start, i - start));
            i += n;
            start = i;
        } else {
            i += cp_len(s, i);
        }
    }
    if (start < s.size()) lines.push_back(s.substr(start));
    return lines;
}

/// str.lower() with the simple (one code point to one) case mapping.
inline std::string lower(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = cp_len(s, i);
        const char32_t c = cp_at(s, i);
        if (c == static_cast<char32_t>(-1) || c < 'A' || (c > 'Z' && c < 0x80)) {
            out.append(s.substr(i, n));
        } else {
            utf8proc_uint8_t buf[4];
            const auto m = utf8proc_encode_char(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)), buf);
            out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(m));
        }
        i += n;
    }
    return out;
}

/// re.sub(r"\s+", " ", s): every run of whitespace as one space.
inline std::string collapse_spaces(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        if (space_at(s, i)) {
            while (const std::size_t n = space_at(s, i)) i += n;
            out += ' ';
        } else {
            out += s[i++];
        }
    }
    return out;
}

/// "".join(s.split()): s without any whitespace.
inline std::string remove_spaces(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();)
        if (const std::size_t n = space_at(s, i)) i += n;
        else out += s[i++];
    return out;
}

/// str.isprintable() of one code point: not a control, format, surrogate, private-use,
/// unassigned, line or paragraph separator, nor a space other than ' '.
inline bool is_printable(char32_t c) {
    if (c < 0x80) return c >= 0x20 && c < 0x7f;
    if (c > 0x10ffff) return false;
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
        case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS: case UTF8PROC_CATEGORY_CO:
        case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
            return false;
        default:
            return true;
    }
}

/// repr() of a str: single quotes unless s holds ' and no ", backslash escapes for the quote,
/// \\, \t, \n, \r, and \xNN / \uNNNN / \UNNNNNNNN for code points that are not printable.
inline std::string repr(std::string_view s) {
    const char quote = s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos ? '"' : '\'';
    std::string out(1, quote);
    for (std::size_t i = 0; i < s.size(); i += cp_len(s, i)) {
        char32_t c = cp_at(s, i);
        if (c == static_cast<char32_t>(-1)) c = 0xfffd;  // a stray byte reads as U+FFFD
        if (c == char32_t(quote) || c == '\\') out += '\\', out += char(c);
        else if (c == '\t') out += "\\t";
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (is_printable(c)) out.append(c == 0xfffd ? std::string_view("\xef\xbf\xbd") : s.substr(i, cp_len(s, i)));
        else {
            char buf[12];
            std::snprintf(buf, sizeof buf, c <= 0xff ? "\\x%02x" : c <= 0xffff ? "\\u%04x" : "\\U%08x", unsigned(c));
            out += buf;
        }
    }
    return out + quote;
}

/// int() of a str: surrounding whitespace, a sign, decimal digits of any script with single '_'
/// between them; nullopt where Python raises ValueError (or beyond ±10^15).
inline std::optional<long long> to_int(std::string_view text) {
    const std::string_view t = strip(text);
    std::size_t i = 0;
    bool negative = false;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) negative = t[i++] == '-';
    long long v = 0;
    bool digit_before = false;
    if (i >= t.size()) return std::nullopt;
    while (i < t.size()) {
        if (t[i] == '_') {
            if (!digit_before || i + 1 >= t.size()) return std::nullopt;
            digit_before = false, ++i;
            continue;
        }
        const char32_t c = cp_at(t, i);
        if (!is_decimal(c)) return std::nullopt;
        v = v * 10 + decimal_value(c);
        if (v > 1000000000000000LL) return std::nullopt;
        digit_before = true, i += cp_len(t, i);
    }
    if (!digit_before) return std::nullopt;
    return negative ? -v : v;
}

/// True when every code point of s satisfies pred (also for an empty s).
template <class Pred>
bool all_code_points(std::string_view s, Pred pred) {
    for (std::size_t i = 0; i < s.size(); i += cp_len(s, i))
        if (!pred(cp_at(s, i))) return false;
    return true;
}

}  // namespace pipeline::py
DOCVLM_NAMESPACE_END

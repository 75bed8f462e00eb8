// docvlm/pipeline/html_parse.hpp — HTML markup → a Tree (html_tree.hpp), built as BeautifulSoup
// 4.11's "html.parser" builder builds it on Python 3.11's html.parser:
//   - tokens as html.parser reads them, fed whole and then closed (two passes: what the first
//     leaves unfinished the second reads as text); tag and attribute names lower-cased; entity
//     and character references resolved as BeautifulSoup does (HTML5 names with or without ';',
//     numbers below 256 as windows-1252, anything invalid as U+FFFD);
//   - no implied structure: a start tag opens an element under the current one, an end tag closes
//     back to the most recent open element of its name (or does nothing), void elements (br, img,
//     ...) close at once; adjacent text is one node, all-ASCII-whitespace text becomes " " or "\n"
//     (outside pre and textarea).
// Markup html.parser refuses (a "<![" section it does not know) throws docvlm::Error.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/pipeline/html_entities.hpp>
#include <docvlm/pipeline/html_tree.hpp>
#include <docvlm/pipeline/py_text.hpp>

#include <utf8proc.h>

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline::html {

/// Parses `markup` (UTF-8) as BeautifulSoup(markup, "html.parser") does.
Tree parse(std::string_view markup);


// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

inline void append_utf8(std::string& out, char32_t c) {
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;  // a lone surrogate cannot be UTF-8
    utf8proc_uint8_t buf[4];
    const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
    out.append(reinterpret_cast<const char*>(buf), std::size_t(n));
}

inline bool one_of(std::string_view chars, char c) { return chars.find(c) != std::string_view::npos; }
inline bool ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool ascii_alnum(char c) { return ascii_alpha(c) || (c >= '0' && c <= '9'); }
inline bool hex_digit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
inline std::string ascii_lower(std::string_view s) {
    std::string r(s);
    for (char& c : r)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return r;
}
// re's \s at s[i] (Unicode whitespace): its byte length, else 0.
inline std::size_t space(std::string_view s, std::size_t i) { return py::space_at(s, i); }

// handle_charref: the number's character; below 256 read as windows-1252 (its five unassigned
// bytes stay Latin-1), beyond Unicode U+FFFD.
inline std::string charref_text(std::string_view digits) {
    static constexpr char16_t cp1252[32] = {0x20ac, 0x81,   0x201a, 0x192,  0x201e, 0x2026, 0x2020, 0x2021,
                                            0x2c6,  0x2030, 0x160,  0x2039, 0x152,  0x8d,   0x17d,  0x8f,
                                            0x90,   0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
                                            0x2dc,  0x2122, 0x161,  0x203a, 0x153,  0x9d,   0x17e,  0x178};
    const bool hex = digits[0] == 'x' || digits[0] == 'X';
    unsigned long long v = 0;
    for (char c : digits.substr(hex ? 1 : 0)) {
        v = v * (hex ? 16 : 10) + unsigned(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        if (v > 0x10ffff) v = 0x110000;  // saturate: all out-of-range values read alike
    }
    std::string out;
    append_utf8(out, v >= 0x80 && v < 0xa0 ? char32_t(cp1252[v - 0x80]) : v > 0x10ffff ? char32_t(0xfffd) : char32_t(v));
    return out;
}

// The text of the named reference `name`, or nullopt for an unknown name.
inline std::optional<std::string> named_text(std::string_view name) {
    const NamedReference* r = named_reference(name);
    if (!r) return std::nullopt;
    std::string out;
    append_utf8(out, r->first);
    if (r->second) append_utf8(out, r->second);
    return out;
}

// handle_entityref: a known name's text, else the reference as written (without its ';').
inline std::string entity_text(std::string_view name) { return named_text(name).value_or("&" + std::string(name)); }

// html.unescape() of an attribute value, for the references a table carries: named ones ending
// in ';' and numeric ones.
inline std::string unescape_attribute(std::string_view v) {
    std::string out;
    for (std::size_t i = 0; i < v.size();) {
        const std::size_t semi = v[i] == '&' ? v.find(';', i) : std::string_view::npos;
        if (semi != std::string_view::npos && semi > i + 1) {
            const std::string_view name = v.substr(i + 1, semi - i - 1);
            const bool hex = name.size() > 1 && (name[1] == 'x' || name[1] == 'X');
            const std::string_view digits = name.substr(std::min(name.size(), std::size_t(1 + hex)));
            if (name[0] == '#' && !digits.empty() &&
                std::all_of(digits.begin(), digits.end(), [&](char c) { return hex ? hex_digit(c) : c >= '0' && c <= '9'; })) {
                out += charref_text(name.substr(1)), i = semi + 1;
                continue;
            }
            if (auto text = named_text(name)) {
                out += *text, i = semi + 1;
                continue;
            }
        }
        out += v[i++];
    }
    return out;
}

// BeautifulSoup's tree building: the open-element stack, pending text, string containers.
class Builder {
public:
    Tree tree;

    Builder() {
        tree.nodes.push_back(Node{Node::Kind::document, "[document]", {}, {}, -1, {}});
        stack_.push_back(0);
    }

    void data(std::string_view s) { pending_ += s, has_pending_ = true; }  // even "": an empty comment is a string

    void end_data(Node::Kind kind = Node::Kind::text) {
        if (!has_pending_) return;
        std::string s = std::move(pending_);
        pending_.clear(), has_pending_ = false;
        if (!preserve_whitespace() && std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\f' || c == '\r'; }))
            s = s.find('\n') != std::string::npos ? "\n" : " ";
        if (kind == Node::Kind::text && in_string_container()) kind = Node::Kind::special_text;
        add(Node{kind, {}, {}, std::move(s), -1, {}});
    }

    void start_tag(std::string name, std::vector<std::pair<std::string, std::string>> attrs, bool empty_element_form) {
        end_data();
        Node n{Node::Kind::element, std::move(name), {}, {}, -1, {}};
        for (auto& kv : attrs) {  // a repeated attribute keeps its first place and its last value
            if (list_attribute(n.name, kv.first)) kv.second = join_words(kv.second);
            auto it = std::find_if(n.attrs.begin(), n.attrs.end(), [&](const auto& a) { return a.first == kv.first; });
            if (it != n.attrs.end()) it->second = std::move(kv.second);
            else n.attrs.push_back(std::move(kv));
        }
        const bool is_void = void_element(n.name);
        const std::string tag = n.name;
        stack_.push_back(add(std::move(n)));
        if (is_void && !empty_element_form) {
            end_tag(tag, false);
            already_closed_.push_back(tag);
        }
    }

    // <name .../>: opened, then closed by an end tag of its name.
    void start_end_tag(std::string name, std::vector<std::pair<std::string, std::string>> attrs) {
        const std::string tag = name;
        start_tag(std::move(name), std::move(attrs), true);
        end_tag(tag, true);
    }

    void end_tag(const std::string& name, bool check_already_closed = true) {
        if (check_already_closed) {
            auto it = std::find(already_closed_.begin(), already_closed_.end(), name);
            if (it != already_closed_.end()) {
                already_closed_.erase(it);
                return;
            }
        }
        end_data();
        for (std::size_t i = stack_.size(); i-- > 1;)
            if (tree[stack_[i]].name == name) {
                stack_.resize(i);
                return;
            }
    }

    Tree finish() {
        end_data();
        return std::move(tree);
    }

private:
    std::vector<int> stack_;  // open elements, the document first
    std::string pending_;
    bool has_pending_ = false;
    std::vector<std::string> already_closed_;  // void elements closed at their start tag

    // Attributes BeautifulSoup keeps as a list of words (written back joined by one space).
    static bool list_attribute(std::string_view tag, std::string_view a) {
        if (a == "class" || a == "accesskey" || a == "dropzone") return true;
        if (tag == "a" || tag == "link") return a == "rel" || a == "rev";
        if (tag == "td" || tag == "th") return a == "headers";
        return (tag == "form" && a == "accept-charset") || (tag == "object" && a == "archive") || (tag == "area" && a == "rel") ||
               (tag == "icon" && a == "sizes") || (tag == "iframe" && a == "sandbox") || (tag == "output" && a == "for");
    }
    static std::string join_words(std::string_view v) {
        std::string out;
        for (std::size_t i = 0; i < v.size();) {
            if (std::size_t s = py::space_at(v, i)) {
                i += s;
                continue;
            }
            if (!out.empty() && i > 0 && py::space_before(v, i)) out += ' ';
            const std::size_t n = py::cp_len(v, i);
            out.append(v.substr(i, n));
            i += n;
        }
        return out;
    }

    bool open_named(std::initializer_list<std::string_view> names) const {
        for (int e : stack_)
            for (std::string_view n : names)
                if (tree[e].name == n) return true;
        return false;
    }
    bool preserve_whitespace() const { return open_named({"pre", "textarea"}); }
    bool in_string_container() const { return open_named({"rt", "rp", "style", "script", "template"}); }

    int add(Node n) {
        n.parent = stack_.back();
        tree.nodes.push_back(std::move(n));
        const int id = int(tree.nodes.size()) - 1;
        tree[stack_.back()].children.push_back(id);
        return id;
    }
};

// Python html.parser's tokenizer (convert_charrefs=False), driving the Builder.
class Tokenizer {
public:
    explicit Tokenizer(std::string_view raw) : raw_(raw) {}

    Tree run() {
        go_ahead(false);  // feed()
        go_ahead(true);   // close()
        return b_.finish();
    }

private:
    std::string raw_;
    std::string cdata_elem_;  // script or style while inside one
    Builder b_;

    std::size_t find_interesting(std::size_t i) const;
    void go_ahead(bool end);
    long parse_start_tag(std::size_t i);
    long parse_end_tag(std::size_t i);
    long parse_declaration(std::size_t i);
    long whole_start_tag_end(std::size_t i) const;
    std::size_t scan_attributes(std::size_t j) const;
    bool attribute_at(std::size_t& k, std::string* name, std::string* value, bool* has_value, bool trailing_space) const;
};

inline std::size_t Tokenizer::find_interesting(std::size_t i) const {
    if (cdata_elem_.empty()) {
        const std::size_t j = raw_.find_first_of("&<", i);
        return j == std::string::npos ? raw_.size() : j;
    }
    for (std::size_t j = raw_.find("</", i); j != std::string::npos; j = raw_.find("</", j + 1)) {  // </\s*elem\s*>
        std::size_t k = j + 2;
        while (std::size_t n = space(raw_, k)) k += n;
        if (ascii_lower(std::string_view(raw_).substr(k, cdata_elem_.size())) != cdata_elem_) continue;
        k += cdata_elem_.size();
        while (std::size_t n = space(raw_, k)) k += n;
        if (k < raw_.size() && raw_[k] == '>') return j;
    }
    return std::string::npos;
}

inline void Tokenizer::go_ahead(bool end) {
    std::size_t i = 0;
    const std::size_t n = raw_.size();
    while (i < n) {
        std::size_t j = find_interesting(i);
        if (j == std::string::npos) {
            if (!cdata_elem_.empty()) break;
            j = n;
        }
        if (i < j) b_.data(std::string_view(raw_).substr(i, j - i));
        i = j;
        if (i == n) break;
        if (raw_[i] == '<') {
            long k;
            if (i + 1 < n && ascii_alpha(raw_[i + 1])) k = parse_start_tag(i);
            else if (raw_.compare(i, 2, "</") == 0) k = parse_end_tag(i);
            else if (raw_.compare(i, 2, "<!") == 0 || raw_.compare(i, 2, "<?") == 0) k = parse_declaration(i);
            else if (i + 1 < n) {
                b_.data("<");
                k = long(i + 1);
            } else break;
            if (k < 0) {
                if (!end) break;
                std::size_t e = raw_.find('>', i + 1);
                if (e == std::string::npos) {
                    e = raw_.find('<', i + 1);
                    if (e == std::string::npos) e = i + 1;
                } else ++e;
                b_.data(std::string_view(raw_).substr(i, e - i));
                k = long(e);
            }
            i = std::size_t(k);
        } else if (raw_.compare(i, 2, "&#") == 0) {  // &#(?:[0-9]+|[xX][0-9a-fA-F]+)[^0-9a-fA-F]
            std::size_t k = i + 2;
            const bool hex = k < n && (raw_[k] == 'x' || raw_[k] == 'X');
            const std::size_t d0 = k + hex;
            k = d0;
            while (k < n && (hex ? hex_digit(raw_[k]) : raw_[k] >= '0' && raw_[k] <= '9')) ++k;
            if (k > d0 && k < n && !hex_digit(raw_[k])) {
                b_.data(charref_text(std::string_view(raw_).substr(i + 2, k - i - 2)));
                i = raw_[k] == ';' ? k + 1 : k;
                continue;
            }
            if (raw_.find(';', i) != std::string::npos) b_.data("&#"), i += 2;  // bail out, consuming "&#"
            break;
        } else {  // &([a-zA-Z][-.a-zA-Z0-9]*)[^a-zA-Z0-9]
            std::size_t k = i + 1;
            if (k < n && ascii_alpha(raw_[k])) {
                while (k < n && (ascii_alnum(raw_[k]) || raw_[k] == '-' || raw_[k] == '.')) ++k;
                if (k == n) {  // no terminator: the regex backs off to the name's last '-' or '.'
                    const std::size_t p = raw_.find_last_of("-.", n - 1);
                    if (p != std::string::npos && p > i + 1) k = p;
                }
                if (k < n) {
                    b_.data(entity_text(std::string_view(raw_).substr(i + 1, k - i - 1)));
                    i = raw_[k] == ';' ? k + 1 : k;
                    continue;
                }
                if (end && k - i == 2) ++i;  // "&x" ending the input: html.parser drops the '&'
                break;
            }
            if (i + 1 < n) b_.data("&"), ++i;
            else break;
        }
    }
    if (end && i < n && cdata_elem_.empty()) b_.data(std::string_view(raw_).substr(i)), i = n;
    raw_.erase(0, i);
}

// html.parser's locatestarttagend_tolerant from `i` (at '<' + letter): the end of the name and
// attributes, then check_for_whole_start_tag's verdict: the tag's end, or -1 when unfinished.
inline long Tokenizer::whole_start_tag_end(std::size_t i) const {
    std::size_t j = i + 2;
    while (j < raw_.size() && !one_of("\t\n\r\f />", raw_[j]) && raw_[j] != '\0') j += py::cp_len(raw_, j);
    j = scan_attributes(j);
    while (std::size_t s = space(raw_, j)) j += s;
    if (j >= raw_.size()) return -1;
    const char next = raw_[j];
    if (next == '>') return long(j + 1);
    if (next == '/') return raw_.compare(j, 2, "/>") == 0 ? long(j + 2) : -1;
    if (ascii_alpha(next) || next == '=' || next == '/') return -1;
    return long(j > i ? j : i + 1);
}

// (?:[\s/]* (?:attribute (?:\s*=+\s* value \s*)? (?:\s|/(?!>))* )* )?
inline std::size_t Tokenizer::scan_attributes(std::size_t j) const {
    for (;;) {
        if (std::size_t s = space(raw_, j)) j += s;
        else if (j < raw_.size() && raw_[j] == '/') ++j;
        else break;
    }
    while (attribute_at(j, nullptr, nullptr, nullptr, true)) {}
    return j;
}

// One attribute at k (attrfind_tolerant; with trailing_space, locatestarttagend's variant that
// takes \s* after the value): advances k and returns true, or leaves k and returns false.
inline bool Tokenizer::attribute_at(std::size_t& k, std::string* name, std::string* value, bool* has_value,
                                    bool trailing_space) const {
    const std::size_t n = raw_.size();
    if (k == 0 || k >= n) return false;
    const char before = raw_[k - 1];
    if (!(before == '\'' || before == '"' || before == '/' || py::space_before(raw_, k))) return false;
    if (space(raw_, k) || raw_[k] == '/' || raw_[k] == '>') return false;
    std::size_t e = k + py::cp_len(raw_, k);
    while (e < n && !space(raw_, e) && raw_[e] != '/' && raw_[e] != '=' && raw_[e] != '>') e += py::cp_len(raw_, e);
    if (name) *name = py::lower(std::string_view(raw_).substr(k, e - k));
    std::size_t p = e;  // \s*=+\s*value
    while (std::size_t s = space(raw_, p)) p += s;
    bool valued = false;
    if (p < n && raw_[p] == '=') {
        while (p < n && raw_[p] == '=') ++p;
        while (std::size_t s = space(raw_, p)) p += s;
        std::size_t v0 = p, v1 = p;
        if (p < n && (raw_[p] == '\'' || raw_[p] == '"')) {
            const std::size_t close = raw_.find(raw_[p], p + 1);
            if (close != std::string::npos) v0 = p + 1, v1 = close, p = close + 1, valued = true;
        } else {
            while (p < n && raw_[p] != '>' && !space(raw_, p)) p += py::cp_len(raw_, p);
            v1 = p, valued = true;
        }
        if (valued) {
            if (value) *value = unescape_attribute(std::string_view(raw_).substr(v0, v1 - v0));
            if (trailing_space)
                while (std::size_t s = space(raw_, p)) p += s;
            e = p;
        }
    }
    if (has_value) *has_value = valued;
    for (;;) {  // (?:\s|/(?!>))*
        if (std::size_t s = space(raw_, e)) e += s;
        else if (e < n && raw_[e] == '/' && !(e + 1 < n && raw_[e + 1] == '>')) ++e;
        else break;
    }
    k = e;
    return true;
}

inline long Tokenizer::parse_start_tag(std::size_t i) {
    const long end_pos = whole_start_tag_end(i);
    if (end_pos < 0) return end_pos;
    const std::size_t endpos = std::size_t(end_pos);
    std::size_t k = i + 2;  // tagfind_tolerant: the name, then (?:\s|/(?!>))*
    while (k < raw_.size() && !one_of("\t\n\r\f />", raw_[k]) && raw_[k] != '\0') k += py::cp_len(raw_, k);
    std::string tag = py::lower(std::string_view(raw_).substr(i + 1, k - i - 1));
    for (;;) {
        if (std::size_t s = space(raw_, k)) k += s;
        else if (k < raw_.size() && raw_[k] == '/' && !(k + 1 < raw_.size() && raw_[k + 1] == '>')) ++k;
        else break;
    }
    std::vector<std::pair<std::string, std::string>> attrs;
    while (k < endpos) {
        std::string name, value;
        bool has_value = false;
        if (!attribute_at(k, &name, &value, &has_value, false)) break;
        attrs.emplace_back(std::move(name), has_value ? std::move(value) : std::string());
    }
    const std::string_view rest = py::strip(std::string_view(raw_).substr(std::min(k, endpos), endpos - std::min(k, endpos)));
    if (rest != ">" && rest != "/>") {
        b_.data(std::string_view(raw_).substr(i, endpos - i));
        return end_pos;
    }
    if (rest == "/>") {
        b_.start_end_tag(std::move(tag), std::move(attrs));
    } else {
        const bool cdata = tag == "script" || tag == "style";
        b_.start_tag(tag, std::move(attrs), false);
        if (cdata) cdata_elem_ = tag;
    }
    return end_pos;
}

inline long Tokenizer::parse_end_tag(std::size_t i) {
    const std::size_t gt = raw_.find('>', i + 1);
    if (gt == std::string::npos) return -1;
    // endtagfind: </\s*([a-zA-Z][-.a-zA-Z0-9:_]*)\s*>
    std::size_t k = i + 2;
    while (std::size_t s = space(raw_, k)) k += s;
    std::size_t e = k;
    if (e < raw_.size() && ascii_alpha(raw_[e])) {
        ++e;
        while (e < raw_.size() && (ascii_alnum(raw_[e]) || one_of("-.:_", raw_[e]))) ++e;
        std::size_t p = e;
        while (std::size_t s = space(raw_, p)) p += s;
        if (p < raw_.size() && raw_[p] == '>') {
            const std::string elem = ascii_lower(std::string_view(raw_).substr(k, e - k));
            if (!cdata_elem_.empty() && elem != cdata_elem_) {
                b_.data(std::string_view(raw_).substr(i, p + 1 - i));
                return long(p + 1);
            }
            b_.end_tag(elem);
            cdata_elem_.clear();
            return long(p + 1);
        }
    }
    if (!cdata_elem_.empty()) {
        b_.data(std::string_view(raw_).substr(i, gt + 1 - i));
        return long(gt + 1);
    }
    if (!(i + 2 < raw_.size() && ascii_alpha(raw_[i + 2]))) {  // no name right after "</"
        if (raw_.compare(i, 3, "</>") == 0) return long(i + 3);
        b_.end_data(), b_.data(std::string_view(raw_).substr(i + 2, gt - i - 2)), b_.end_data(Node::Kind::comment);
        return long(gt + 1);
    }
    std::size_t name_end = i + 3;
    while (name_end < raw_.size() && !one_of("\t\n\r\f />", raw_[name_end]) && raw_[name_end] != '\0')
        name_end += py::cp_len(raw_, name_end);
    const std::string tag = py::lower(std::string_view(raw_).substr(i + 2, name_end - i - 2));
    for (;;) {
        if (std::size_t s = space(raw_, name_end)) name_end += s;
        else if (name_end < raw_.size() && raw_[name_end] == '/' && !(name_end + 1 < raw_.size() && raw_[name_end + 1] == '>')) ++name_end;
        else break;
    }
    const std::size_t close = raw_.find('>', name_end);
    b_.end_tag(tag);
    return close == std::string::npos ? 0 : long(close + 1);
}

// "<!--", "<?", "<![CDATA[", "<!doctype" and other "<!" (a bogus comment).
inline long Tokenizer::parse_declaration(std::size_t i) {
    const std::string_view r(raw_);
    auto emit = [&](std::size_t a, std::size_t b, Node::Kind kind) { b_.end_data(), b_.data(r.substr(a, b - a)), b_.end_data(kind); };
    if (r.substr(i, 4) == "<!--") {  // closed by --\s*>
        for (std::size_t j = r.find("--", i + 4); j != std::string_view::npos; j = r.find("--", j + 1)) {
            std::size_t p = j + 2;
            while (std::size_t s = space(r, p)) p += s;
            if (p < r.size() && r[p] == '>') return emit(i + 4, j, Node::Kind::comment), long(p + 1);
        }
        return -1;
    }
    if (r.substr(i, 2) == "<?") {
        const std::size_t gt = r.find('>', i + 2);
        if (gt == std::string_view::npos) return -1;
        return emit(i + 2, gt, Node::Kind::pi), long(gt + 1);
    }
    if (r.substr(i, 3) == "<![") {  // a marked section; html.parser raises on unknown keywords
        std::size_t k = i + 3;
        if (k >= r.size()) return -1;
        if (!ascii_alpha(r[k])) throw Error("html: expected a name after '<![' at byte " + std::to_string(i));
        while (k < r.size() && (ascii_alnum(r[k]) || one_of("-_.", r[k]))) ++k;
        const std::string sect = ascii_lower(r.substr(i + 3, k - i - 3));
        const bool ms_office = sect == "if" || sect == "else" || sect == "endif";  // closed by ]\s*>
        if (!ms_office && sect != "cdata" && sect != "temp" && sect != "ignore" && sect != "include" && sect != "rcdata")
            throw Error("html: unknown marked section '<![" + sect + "' at byte " + std::to_string(i));
        for (std::size_t j = r.find(']', i + 3); j != std::string_view::npos; j = r.find(']', j + 1)) {  // ]\s*]\s*>
            std::size_t p = j + 1;
            while (std::size_t s = space(r, p)) p += s;
            if (!ms_office) {
                if (p >= r.size() || r[p] != ']') continue;
                ++p;
                while (std::size_t s = space(r, p)) p += s;
            }
            if (p < r.size() && r[p] == '>') {
                const std::string_view body = r.substr(i + 3, j - i - 3);
                const bool cdata = ascii_lower(body.substr(0, 6)) == "cdata[";
                emit(i + 3 + (cdata ? 6 : 0), j, cdata ? Node::Kind::cdata : Node::Kind::declaration);
                return long(p + 1);
            }
        }
        return -1;
    }
    const std::size_t gt = r.find('>', i + 2);
    if (gt == std::string_view::npos) return -1;
    if (ascii_lower(r.substr(i, 9)) == "<!doctype") {
        const std::string_view decl = r.substr(i + 2, gt - i - 2);
        return emit(i + 2 + std::min<std::size_t>(8, decl.size()), gt, Node::Kind::doctype), long(gt + 1);
    }
    return emit(i + 2, gt, Node::Kind::comment), long(gt + 1);
}

}  // namespace detail

inline Tree parse(std::string_view markup) { return detail::Tokenizer(markup).run(); }

}  // namespace pipeline::html
DOCVLM_NAMESPACE_END

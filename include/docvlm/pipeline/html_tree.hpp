// docvlm/pipeline/html_tree.hpp — an HTML document as BeautifulSoup 4.11 holds it ("html.parser"
// builder; html_parse.hpp builds it), for code that reproduces MinerU's table merge exactly:
// nodes in one arena (elements with their attributes in order, strings of each kind BeautifulSoup
// tells apart), queries (find_all, get_text, attribute), the edits the merge makes (extract,
// append, insert_before, clear, deep copy, attributes set and dropped), and str(): the markup
// BeautifulSoup writes with its "minimal" formatter.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

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

/// One node. Text kinds: `text` (NavigableString), `special_text` (text inside script, style, rt,
/// rp or template: not part of get_text), `cdata`, `comment`, `declaration`, `doctype`, `pi`.
struct Node {
    enum class Kind { document, element, text, special_text, cdata, comment, declaration, doctype, pi };
    Kind kind = Kind::element;
    std::string name;                                        ///< element name, lower-case
    std::vector<std::pair<std::string, std::string>> attrs;  ///< in order; a repeated name keeps its last value
    std::string text;                                        ///< the string of a text kind
    int parent = -1;
    std::vector<int> children;
};

/// A parsed document: nodes[0] is the document, every other node is reachable from it (a node
/// moved out of the tree keeps its slot with parent -1).
struct Tree {
    std::vector<Node> nodes;

    const Node& operator[](int i) const { return nodes[std::size_t(i)]; }
    Node& operator[](int i) { return nodes[std::size_t(i)]; }
    /// Every element under `node` (depth first, document order) whose name is one of `names`.
    std::vector<int> find_all(int node, std::initializer_list<std::string_view> names) const;
    /// The first element under `node` named `name`, or -1.
    int find(int node, std::string_view name) const;
    /// Tag.get_text(): the text and CDATA strings under `node`, concatenated.
    std::string get_text(int node) const;
    /// The value of attribute `name`, or nullopt.
    std::optional<std::string> attribute(int node, std::string_view name) const;
    /// tag[name] = value: replaced in place, or added last.
    void set_attribute(int node, std::string_view name, std::string value);
    /// tag.attrs.pop(name).
    void remove_attribute(int node, std::string_view name);

    /// extract(): `node` leaves its parent (its slot stays, parentless).
    void extract(int node);
    /// append(): `node` (taken from where it was) becomes the last child of `parent`.
    void append(int parent, int node);
    /// insert_before(): `node` (taken from where it was) goes just before `ref`, under ref's parent.
    void insert_before(int ref, int node);
    /// clear(): every child of `node` extracted.
    void clear(int node);
    /// deepcopy(): a copy of `node` of `from` (this tree or another) and all it holds, parentless
    /// here; its index.
    int copy(const Tree& from, int node);
    /// Moves every node of `other` into this tree, indices shifted by the returned offset; other's
    /// document node comes along parentless.
    int adopt(Tree&& other);

    /// str(): the markup BeautifulSoup writes for `node` (formatter "minimal"): attributes sorted
    /// by name, values quoted with " (or ' when they hold " only; &quot; when both), & < >
    /// escaped in text and values (not in script or style), empty void elements as <br/>.
    std::string to_html(int node = 0) const;
};


// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {

// Void elements: closed at their start tag, written as <br/> when empty.
inline bool void_element(std::string_view n) {
    for (std::string_view v : {"area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "menuitem",
                               "meta", "param", "source", "track", "wbr", "basefont", "bgsound", "command", "frame",
                               "image", "isindex", "nextid", "spacer"})
        if (n == v) return true;
    return false;
}

}  // namespace detail

inline std::vector<int> Tree::find_all(int node, std::initializer_list<std::string_view> names) const {
    std::vector<int> out, todo((*this)[node].children.rbegin(), (*this)[node].children.rend());
    while (!todo.empty()) {
        const int i = todo.back();
        todo.pop_back();
        const Node& n = (*this)[i];
        if (n.kind != Node::Kind::element) continue;
        if (std::find(names.begin(), names.end(), std::string_view(n.name)) != names.end()) out.push_back(i);
        todo.insert(todo.end(), n.children.rbegin(), n.children.rend());
    }
    return out;
}

inline int Tree::find(int node, std::string_view name) const {
    const std::vector<int> all = find_all(node, {name});
    return all.empty() ? -1 : all.front();
}

inline std::string Tree::get_text(int node) const {
    std::string out;
    std::vector<int> todo((*this)[node].children.rbegin(), (*this)[node].children.rend());
    while (!todo.empty()) {
        const Node& n = (*this)[todo.back()];
        todo.pop_back();
        if (n.kind == Node::Kind::text || n.kind == Node::Kind::cdata) out += n.text;
        todo.insert(todo.end(), n.children.rbegin(), n.children.rend());
    }
    return out;
}

inline std::optional<std::string> Tree::attribute(int node, std::string_view name) const {
    for (const auto& [k, v] : (*this)[node].attrs)
        if (k == name) return v;
    return std::nullopt;
}

inline void Tree::set_attribute(int node, std::string_view name, std::string value) {
    for (auto& [k, v] : (*this)[node].attrs)
        if (k == name) {
            v = std::move(value);
            return;
        }
    (*this)[node].attrs.emplace_back(std::string(name), std::move(value));
}

inline void Tree::remove_attribute(int node, std::string_view name) {
    auto& a = (*this)[node].attrs;
    a.erase(std::remove_if(a.begin(), a.end(), [&](const auto& kv) { return kv.first == name; }), a.end());
}

inline void Tree::extract(int node) {
    Node& n = (*this)[node];
    if (n.parent < 0) return;
    auto& siblings = (*this)[n.parent].children;
    siblings.erase(std::find(siblings.begin(), siblings.end(), node));
    n.parent = -1;
}

inline void Tree::append(int parent, int node) {
    extract(node);
    (*this)[parent].children.push_back(node);
    (*this)[node].parent = parent;
}

inline void Tree::insert_before(int ref, int node) {
    if (node == ref) return;
    extract(node);
    const int parent = (*this)[ref].parent;
    if (parent < 0) throw Error("html: insert_before a node that has no parent");
    auto& siblings = (*this)[parent].children;
    siblings.insert(std::find(siblings.begin(), siblings.end(), ref), node);
    (*this)[node].parent = parent;
}

inline void Tree::clear(int node) {
    for (int c : std::vector<int>((*this)[node].children)) extract(c);
}

inline int Tree::copy(const Tree& from, int node) {
    Node n = from[node];
    const std::vector<int> children = std::move(n.children);  // `from` may be this tree: nodes grows below
    n.parent = -1;
    n.children.clear();
    nodes.push_back(std::move(n));
    const int id = int(nodes.size()) - 1;
    for (int c : children) {
        const int child = copy(from, c);
        nodes[std::size_t(child)].parent = id;
        nodes[std::size_t(id)].children.push_back(child);
    }
    return id;
}

inline int Tree::adopt(Tree&& other) {
    const int offset = int(nodes.size());
    for (Node& n : other.nodes) {
        if (n.parent >= 0) n.parent += offset;
        for (int& c : n.children) c += offset;
        nodes.push_back(std::move(n));
    }
    other.nodes.clear();
    return offset;
}

namespace detail {

// formatter "minimal": & < > as entities.
inline void escape_into(std::string& out, std::string_view s) {
    for (char c : s) {
        if (c == '&') out += "&amp;";
        else if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else out += c;
    }
}

inline void attribute_into(std::string& out, const std::string& key, const std::string& value) {
    std::string v;
    escape_into(v, value);
    char quote = '"';
    if (v.find('"') != std::string::npos) {
        if (v.find('\'') != std::string::npos) {
            std::string q;
            for (char c : v) q += c == '"' ? std::string("&quot;") : std::string(1, c);
            v = std::move(q);
        } else {
            quote = '\'';
        }
    }
    out += ' ' + key + '=' + quote + v + quote;
}

inline void html_into(const Tree& t, int node, std::string& out) {
    const Node& n = t[node];
    switch (n.kind) {
        case Node::Kind::text:
        case Node::Kind::special_text: {
            const int p = n.parent;
            if (p >= 0 && (t[p].name == "script" || t[p].name == "style")) out += n.text;
            else escape_into(out, n.text);
            return;
        }
        case Node::Kind::cdata: out += "<![CDATA[" + n.text + "]]>"; return;
        case Node::Kind::comment: out += "<!--" + n.text + "-->"; return;
        case Node::Kind::declaration: out += "<?" + n.text + "?>"; return;
        case Node::Kind::doctype: out += "<!DOCTYPE " + n.text + ">\n"; return;
        case Node::Kind::pi: out += "<?" + n.text + ">"; return;
        case Node::Kind::document:
            for (int c : n.children) html_into(t, c, out);
            return;
        case Node::Kind::element: break;
    }
    out += '<' + n.name;
    std::vector<const std::pair<std::string, std::string>*> attrs;
    for (const auto& a : n.attrs) attrs.push_back(&a);
    std::sort(attrs.begin(), attrs.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
    for (const auto* a : attrs) attribute_into(out, a->first, a->second);
    if (n.children.empty() && void_element(n.name)) {
        out += "/>";
        return;
    }
    out += '>';
    for (int c : n.children) html_into(t, c, out);
    out += "</" + n.name + '>';
}

}  // namespace detail

inline std::string Tree::to_html(int node) const {
    std::string out;
    detail::html_into(*this, node, out);
    return out;
}

}  // namespace pipeline::html
DOCVLM_NAMESPACE_END

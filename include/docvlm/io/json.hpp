// docvlm/io/json.hpp — reading JSON files that come from anywhere (config.json, tokenizer.json,
// preprocessor_config.json): every value is checked for its type and range before it is read, so
// a wrong file gives a docvlm::Error naming the file and the field, never nlohmann's own
// exception or a value silently converted (nlohmann's value(key, fallback) throws on a wrong type
// and get<int>() truncates).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <string>

DOCVLM_NAMESPACE_BEGIN
namespace io {

/// The JSON document in `path`; throws docvlm::Error when it cannot be opened or is not JSON.
inline nlohmann::json read_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) docvlm::detail::fail(path, ": cannot open");
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        docvlm::detail::fail(path, ": not valid JSON: ", e.what());
    }
}

/// obj[key] as true / false, `fallback` when absent; `where` names the file (and object) in errors.
inline bool json_flag(const nlohmann::json& obj, const char* key, bool fallback, const std::string& where) {
    if (!obj.is_object() || !obj.contains(key)) return fallback;
    if (!obj[key].is_boolean()) docvlm::detail::fail(where, ": '", key, "' must be true or false, not ", obj[key].dump());
    return obj[key].get<bool>();
}

/// obj[key] as a string, `fallback` when absent.
inline std::string json_string(const nlohmann::json& obj, const char* key, const std::string& fallback, const std::string& where) {
    if (!obj.is_object() || !obj.contains(key)) return fallback;
    if (!obj[key].is_string()) docvlm::detail::fail(where, ": '", key, "' must be a string, not ", obj[key].dump());
    return obj[key].get<std::string>();
}

/// A number in [lo, hi] (integral when `integer`), `fallback` when absent.
inline double json_number(const nlohmann::json& obj, const char* key, double fallback, double lo, double hi, bool integer,
                          const std::string& where) {
    if (!obj.is_object() || !obj.contains(key)) return fallback;
    const nlohmann::json& v = obj[key];
    if (!v.is_number() || (integer && !v.is_number_integer()))
        docvlm::detail::fail(where, ": '", key, "' must be ", integer ? "an integer" : "a number", ", not ", v.dump());
    const double x = v.get<double>();
    if (!(x >= lo && x <= hi)) docvlm::detail::fail(where, ": '", key, "' = ", v.dump(), " is outside [", lo, ", ", hi, "]");
    return x;
}

}  // namespace io
DOCVLM_NAMESPACE_END

// docvlm/core/error.hpp — the one exception type docvlm throws.
#pragma once

#include <docvlm/core/config.hpp>

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

DOCVLM_NAMESPACE_BEGIN

/// Thrown for every failure docvlm can name: bad files, bad shapes, bad configs, bad arguments.
/// The message says what is wrong and where (file, tensor, field or byte offset).
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

/// Streams all arguments into one string: concat("tensor ", name, " has ", n, " dims").
template <class... Args>
std::string concat(Args&&... args) {
    std::ostringstream out;
    (out << ... << std::forward<Args>(args));
    return out.str();
}

/// Throws docvlm::Error with the concatenated message.
template <class... Args>
[[noreturn]] void fail(Args&&... args) {
    throw Error(concat(std::forward<Args>(args)...));
}

}  // namespace detail

DOCVLM_NAMESPACE_END

// Helpers shared by the docvlm tests.
#pragma once

#include <docvlm/core/error.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace test {

/// Path of a file under tests/data ($DOCVLM_TEST_DATA where a test binary runs away from the
/// tree it was built in: tools/cuda/check_on_gpu.sh).
inline std::string data(const std::string& rel) {
    const char* env = std::getenv("DOCVLM_TEST_DATA");
    return std::string(env && *env ? env : DOCVLM_TEST_DATA) + "/" + rel;
}

/// The larger of a running worst error and a new one, where NaN wins and stays (std::max would
/// skip a NaN error, so a kernel writing NaN would pass a bound).
inline double worse(double worst, double e) {
    if (std::isnan(worst) || std::isnan(e)) return std::numeric_limits<double>::quiet_NaN();
    return std::max(worst, e);
}

/// A fresh temporary directory, removed when the object dies.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "docvlm-test-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const { return (path / name).string(); }
};

/// Sets an environment variable for the object's life (the previous value restored after).
struct ScopedEnv {
    std::string name;
    std::string old;
    bool had = false;
    ScopedEnv(const std::string& n, const std::string& value) : name(n) {
        if (const char* v = std::getenv(n.c_str())) had = true, old = v;
        ::setenv(n.c_str(), value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (had) ::setenv(name.c_str(), old.c_str(), 1);
        else ::unsetenv(name.c_str());
    }
};

}  // namespace test

/// Checks that `expr` throws docvlm::Error whose message contains every given fragment.
#define CHECK_ERROR_HAS(expr, ...)                                                           \
    do {                                                                                     \
        bool thrown_ = false;                                                                \
        try {                                                                                \
            (void)(expr);                                                                    \
        } catch (const docvlm::Error& e_) {                                                  \
            thrown_ = true;                                                                  \
            const std::string msg_ = e_.what();                                              \
            for (const std::string frag_ : std::initializer_list<const char*>{__VA_ARGS__}) {                                        \
                INFO("message: ", msg_);                                                     \
                CHECK_MESSAGE(msg_.find(frag_) != std::string::npos, "missing '", frag_, "'"); \
            }                                                                                \
        }                                                                                    \
        CHECK_MESSAGE(thrown_, #expr " did not throw docvlm::Error");                        \
    } while (0)

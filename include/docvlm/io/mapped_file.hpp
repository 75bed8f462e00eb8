// docvlm/io/mapped_file.hpp — read-only memory map of a whole file (RAII).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

DOCVLM_NAMESPACE_BEGIN
namespace io {

/// The bytes of a file, mapped read-only. Move-only; unmaps on destruction.
class MappedFile {
public:
    MappedFile() = default;
    /// Maps `path`; throws docvlm::Error naming the file if it cannot be opened, is not a regular
    /// file, or cannot be mapped. An empty file maps to an empty span.
    explicit MappedFile(std::string path);
    ~MappedFile() { release(); }
    MappedFile(MappedFile&& o) noexcept { *this = std::move(o); }
    MappedFile& operator=(MappedFile&& o) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    std::span<const std::byte> bytes() const { return {data_, size_}; }
    std::size_t size() const { return size_; }
    const std::string& path() const { return path_; }

private:
    void release() noexcept;
    std::string path_;
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

// ------------------------------------------------------------------------------------------------

inline MappedFile::MappedFile(std::string path) : path_(std::move(path)) {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) docvlm::detail::fail(path_, ": cannot open: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        docvlm::detail::fail(path_, ": cannot stat: ", std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        docvlm::detail::fail(path_, ": not a regular file");
    }
    size_ = std::size_t(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int e = errno;
            ::close(fd);
            size_ = 0;
            docvlm::detail::fail(path_, ": cannot map ", st.st_size, " bytes: ", std::strerror(e));
        }
        data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);
}

inline MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
    if (this != &o) {
        release();
        path_ = std::move(o.path_);
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

inline void MappedFile::release() noexcept {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
}

}  // namespace io
DOCVLM_NAMESPACE_END

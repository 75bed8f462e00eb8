// libFuzzer target: any byte string given to the safetensors parser must either parse into a
// consistent header or raise docvlm::Error; anything else (crash, hang, other exception) is a bug.
#include <docvlm/io/safetensors.hpp>

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        auto st = docvlm::io::SafeTensors::parse({reinterpret_cast<const std::byte*>(data), size}, "fuzz");
        for (const auto& t : st.tensors()) {
            if (t.offset + t.nbytes > size || t.numel() * docvlm::dtype_size(t.dtype) != t.nbytes) std::abort();
            if (t.numel() < (1u << 20)) (void)st.to_f32(t.name);  // touch the bytes
        }
    } catch (const docvlm::Error&) {
    }
    return 0;
}

// Consumer of an installed docvlm: writes a checkpoint, reads it back, resizes an image; with the
// CUDA backend installed too (docvlm::cuda), asks it for a device.
#include <docvlm/backend/cpu_backend.hpp>
#include <docvlm/docvlm.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    const std::string path = argc > 1 ? argv[1] : "consumer.safetensors";
    docvlm::io::SafeTensorsWriter writer;
    const float w[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    writer.add("w", {2, 2}, w);
    writer.write(path);
    auto ckpt = docvlm::io::Checkpoint::open(path);
    auto view = ckpt.view<float, 2>("w");
    docvlm::io::Image img(4, 4, 3, 200);
    auto small = docvlm::io::resize(img, 2, 2);
    const bool ok = view(1, 1) == 4.0f && small.at(1, 1, 2) == 200;
#ifdef DOCVLM_WITH_CUDA
    std::printf("consumer: docvlm::cuda linked, %d CUDA device(s)\n", docvlm::backend::cuda_device_count());
    try {
        std::printf("consumer: %s\n", docvlm::backend::make_backend("cuda")->name().c_str());
    } catch (const docvlm::Error& e) {
        std::printf("consumer: %s\n", e.what());
    }
#endif
    std::printf("consumer: docvlm %d.%d.%d %s\n", DOCVLM_VERSION_MAJOR, DOCVLM_VERSION_MINOR, DOCVLM_VERSION_PATCH,
                ok ? "works" : "FAILED");
    return ok ? 0 : 1;
}

// libFuzzer target: what the server reads from a client before any model runs. The first byte
// picks the part:
//   0  a chat-completions body (parse_chat_request): a request that decodes has a user message
//      last, at most the limits' images, and text whose total fits the limit; then the Qwen2-VL
//      chat text of it holds one <|vision_start|> per image;
//   1  a batch body (parse_batch_request): every conversation decodes as a chat body would;
//   2  an uploaded file (decode_chat_image: type sniffing, polyglots, PNG / JPEG / BMP / TIFF
//      with a pixel limit): an image has the size within the limit and 3 channels;
//   3  the cross-page merge prompt (cross_page_merge_answer, parse_python_rows): an answer is a
//      bracketed list of 0/1 the client's regex reads;
//   4  a multipart form (parse_multipart, boundary "b1"): every part's data lies in the body.
// Anything else must be a docvlm::Error (ApiError for the server's parts).
#include "fuzz_util.hpp"

#include <docvlm/serve/chat_engine.hpp>
#include <docvlm/serve/embedded_engine.hpp>
#include <docvlm/serve/multipart.hpp>
#include <docvlm/serve/openai_api.hpp>
#include <docvlm/serve/uploads.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

using namespace docvlm::serve;

void check_chat(const ChatRequest& r, const RequestLimits& lim) {
    if (r.messages.empty() || r.messages.back().role != "user") std::abort();
    if (r.image_count() > lim.max_images) std::abort();
    std::size_t text = 0;
    for (const auto& m : r.messages)
        for (const auto& p : m.parts) text += p.is_image ? 0 : p.text.size();
    if (text > lim.max_text_bytes) std::abort();
    const std::string chat = qwen2vl_chat_text(r.messages, std::vector<std::size_t>(r.image_count(), 2));
    std::size_t starts = 0;
    for (std::size_t i = chat.find("<|vision_start|>"); i != std::string::npos; i = chat.find("<|vision_start|>", i + 1)) ++starts;
    if (starts < r.image_count()) std::abort();  // text parts may spell the tag themselves, never fewer
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::string_view in = fuzz::text(data + 1, size - 1);
    RequestLimits lim;
    lim.max_images = 3, lim.max_text_bytes = 4096, lim.max_image_bytes = 1 << 16;
    try {
        switch (data[0] % 5) {
            case 0: check_chat(parse_chat_request(in, lim), lim); break;
            case 1:
                for (const auto& r : parse_batch_request(in, lim)) check_chat(r, lim);
                break;
            case 2: {
                UploadLimits ul;
                ul.max_pixels = 1 << 20;
                const docvlm::io::Image img = decode_chat_image(in, ul);
                if (img.channels != 3 || std::size_t(img.width) * std::size_t(img.height) > ul.max_pixels) std::abort();
                if (img.pixels.size() != std::size_t(img.width) * std::size_t(img.height) * 3) std::abort();
                break;
            }
            case 4:
                for (const auto& p : parse_multipart(in, "multipart/form-data; boundary=b1"))
                    if (p.data.size() > in.size() || (!p.data.empty() && in.find(p.data) == std::string_view::npos)) std::abort();
                break;
            default:
                if (auto a = cross_page_merge_answer(in)) {
                    if (a->size() < 2 || a->front() != '[' || a->back() != ']') std::abort();
                    for (char c : a->substr(1, a->size() - 2))
                        if (c != '0' && c != '1' && c != ',' && c != ' ') std::abort();
                }
        }
    } catch (const docvlm::Error&) {
    }
    return 0;
}

// Reading the PyTorch references of the embedded models (tools/train/reference.py writes them):
// crops, tokens, tasks and the generation bounds it used. Shared by tests/test_embedded.cpp and
// the backend checks (tests/backend_checks.hpp).
#pragma once

#include "test_util.hpp"

#include <docvlm/io/safetensors.hpp>
#include <docvlm/model/beam_search.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/model/sequence_score.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace embedded_test {

using namespace docvlm;

inline io::Image crop_of(const io::Checkpoint& ref, int i) {
    const std::string name = "crop" + std::to_string(i);
    const auto& info = ref.info(name);
    io::Image img(int(info.shape[1]), int(info.shape[0]), 1);
    const auto bytes = ref.bytes(name);
    std::copy(bytes.begin(), bytes.end(), reinterpret_cast<std::byte*>(img.pixels.data()));
    return img;
}

inline std::vector<std::int32_t> tokens_of(const io::Checkpoint& ref, const std::string& name) {
    const auto a = ref.to_f32(name);
    return std::vector<std::int32_t>(a.begin(), a.end());
}

inline double rel_err(const float* got, const Array<float>& want) {
    double e = 0, s = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        e = test::worse(e, std::fabs(double(got[i]) - want.data()[i]));
        s = std::max(s, std::fabs(double(want.data()[i])));
    }
    return e / s;
}

// The task of reference crop i (reference.py stores its task token; references made before the
// table task hold only text crops, 24 pixels high, and formula crops, 48 high). A table crop of a
// model with a table splitter but no table task: "table".
inline std::string task_of(const io::Checkpoint& ref, const GatedVlmDims& d, int i) {
    if (!ref.contains("task" + std::to_string(i))) return crop_of(ref, i).height == 48 ? "formula" : "text";
    const auto id = std::int32_t(ref.to_f32("task" + std::to_string(i))(0));
    for (const auto& [name, token] : d.task_tokens)
        if (token == id) return name;
    if (d.split.present && ref.contains("split_cells" + std::to_string(i))) return "table";
    FAIL("reference crop ", i, " has an unknown task token ", id);
    return "";
}

// The greedy length bound reference.py used: --max-new, or the whole context for tables.
inline GenerationOptions gen_for(const io::Checkpoint& ref, const GatedVlmDims& d, std::string_view task) {
    GenerationOptions gen;
    gen.max_new_tokens = task == "table" ? d.max_tokens - 2 : std::size_t(ref.to_f32("max_new")(0));
    return gen;
}

// The teacher-forced log-probability of a beam search reading of the text task: its tokens, and its
// end token when it ended (what BeamReading::score sums).
template <class Model>
double teacher_score(const Model& model, const Tensor<float, 2>& vision, const BeamReading& r) {
    if (r.ids.empty()) return sequence_logprob(model, vision, "text", r.ids);
    return ReadingScorer<Model>(model, vision, "text").logprob(r.ids, 0, r.ended ? r.ids.size() + 1 : r.ids.size());
}

// The top two fifths of the sample page (a title and paragraphs), gray.
inline io::Image sample_page_top() {
    const io::Image page = io::load_image(std::string(DOCVLM_TEST_DATA) + "/../../examples/data/sample_page.png", io::ColorMode::gray);
    io::Image top(page.width, page.height * 2 / 5, 1, 255);
    for (int y = 0; y < top.height; ++y) std::copy_n(page.row(y), std::size_t(page.width), top.row(y));
    return top;
}

inline std::vector<std::string> words_of(const std::string& s) {
    std::vector<std::string> w;
    std::istringstream in(s);
    for (std::string x; in >> x;) w.push_back(x);
    return w;
}

// How many words of text `a` text `b` has too, in the same order (longest common subsequence).
inline std::size_t words_in_order(const std::string& a_text, const std::string& b_text) {
    const auto a = words_of(a_text), b = words_of(b_text);
    std::vector<std::vector<std::size_t>> lcs(a.size() + 1, std::vector<std::size_t>(b.size() + 1, 0));
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j)
            lcs[i][j] = a[i - 1] == b[j - 1] ? lcs[i - 1][j - 1] + 1 : std::max(lcs[i - 1][j], lcs[i][j - 1]);
    return lcs[a.size()][b.size()];
}

// Sanitizer builds are unoptimised and slow: they check a few crops, release builds all of them.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr int max_crops = 6;
#else
inline constexpr int max_crops = 1 << 20;
#endif

inline int count_crops(const io::Checkpoint& ref) {
    int n = 0;
    while (n < max_crops && ref.contains("crop" + std::to_string(n))) ++n;
    return n;
}

// The crops a model test checks: count_crops's, and in sanitizer builds also the first table crop
// for the splitter (those come after the text and formula crops).
inline std::vector<int> crops_to_check(const io::Checkpoint& ref) {
    std::vector<int> at;
    for (int i = 0; ref.contains("crop" + std::to_string(i)); ++i)
        if (i < max_crops || (at.size() == std::size_t(max_crops) && ref.contains("split_cells" + std::to_string(i)))) at.push_back(i);
    return at;
}

// Crop i's teacher-forced logits (its task token, then PyTorch's greedy tokens `toks`) against
// PyTorch's: max |difference| / max |PyTorch's|.
template <class M>
double teacher_forced_error(const M& model, const io::Checkpoint& ref, int i, const Tensor<float, 2>& vis, const std::string& task,
                            const std::vector<std::int32_t>& toks) {
    std::vector<std::int32_t> seq{model.dims().task_token(task)};
    seq.insert(seq.end(), toks.begin(), toks.end());
    auto ctx = model.context();
    const auto logits = ctx.prefill(vis, seq, {}, true);
    const Array<float> want = ref.to_f32("logits" + std::to_string(i));
    REQUIRE(logits.size() == want.size());
    return rel_err(logits.data(), want);
}

}  // namespace embedded_test

// docvlm/pipeline/page_parser.hpp — MinerU2.5's two-stage page parsing, as the official client does it:
//   1. layout: the whole page resized to 1036 × 1036 (bicubic, aspect not kept), prompt
//      "\nLayout Detection:", output parsed into Blocks (see mineru.hpp);
//   2. content: every block that has content is cut from the ORIGINAL page (box × page size,
//      rounded as Pillow's crop does), rotated back by its angle, padded to an aspect ratio of at
//      most 50 on white and upscaled to a 28-pixel short side if needed (resize_by_need), then
//      recognised with its task's prompt and sampling settings;
//   3. post-processing: OTSL tables → HTML, equations wrapped in \[ \]; Document renders
//      Markdown, HTML or JSON.
// The geometry (crops_for) and the assembly are plain functions, tested against Pillow; the
// parser class only adds the model calls.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/io/image_processor.hpp>
#include <docvlm/io/tokenizer.hpp>
#include <docvlm/model/generation.hpp>
#include <docvlm/model/rope_index.hpp>
#include <docvlm/model/token_concat.hpp>
#include <docvlm/pipeline/document.hpp>
#include <docvlm/pipeline/mineru.hpp>
#include <docvlm/pipeline/mineru_cross_page.hpp>
#include <docvlm/pipeline/mineru_post_process.hpp>
#include <docvlm/pipeline/mineru_table_images.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace pipeline {


/// Client settings (mineru-vl-utils defaults).
struct PageParserOptions {
    int layout_width = 1036, layout_height = 1036;
    int min_image_edge = 28;
    double max_image_edge_ratio = 50.0;
    std::size_t max_new_tokens = 4096;  ///< per block (the client leaves it to the model's limit)
    std::size_t batch = 8;              ///< stage-2 crops decoded together (1: one at a time)
    bool image_analysis = false;        ///< the client's image analysis: images and charts read too (off, as the client's default)
    MinerUPostProcessOptions post;      ///< what the client's post-processing keeps and joins
    /// Called as work progresses: phase ("layout", "content"), items done, items in total.
    std::function<void(std::string_view phase, std::size_t done, std::size_t total)> progress;
};

/// Seconds spent per phase (accumulated over every call of a parser; `docvlm parse --profile`).
struct PhaseTimes {
    double decode_image = 0, layout = 0, crops = 0, preprocess = 0, vision = 0, prefill = 0, decode = 0, postprocess = 0;
    std::size_t pages = 0, blocks = 0, prompt_tokens = 0, generated_tokens = 0, vision_cache_hits = 0;
};

/// The crop of one block, ready for the model.
struct Crop {
    std::size_t block = 0;  ///< index into the blocks
    Task task = Task::text;
    io::Image image;
};

/// Pillow's crop with a float box: corners rounded half to even, outside pixels black.
io::Image crop_box(const io::Image& page, double x0, double y0, double x1, double y1);
/// The client's resize_by_need: pad to max aspect ratio on white (centred), then upscale the
/// short side to min_edge with bicubic (sizes rounded half to even).
io::Image resize_by_need(const io::Image& img, int min_edge = 28, double max_ratio = 50.0);
/// Crops of every block with content (not list / equation_block / image_block, nor image and chart
/// unless `opt.image_analysis`), in block order.
/// Blocks whose crop would be empty are skipped with a warning. As the client does, images lying
/// ≥ 90 % inside a table are painted over in the table's crop with a token each
/// (mineru_table_images.hpp): the blocks record it (Block::absorbed_by_table on the images,
/// Block::table_images on the table) for post-processing.
std::vector<Crop> crops_for(const io::Image& page, std::vector<Block>& blocks, const PageParserOptions& opt,
                            std::vector<std::string>* warnings = nullptr);
/// The client's post-processing of one block's raw output, as its content_extract does (the
/// block alone through mineru_post_process); "" when the client drops the block.
std::string postprocess_content(std::string_view type, std::string_view raw);

/// Vision features of recently seen images, keyed by a hash of the pixels and the preprocessing
/// settings, so a second question about the same image skips the vision encoder. Bounded (least
/// recently used entries go first); thread-safe.
class VisionCache {
public:
    explicit VisionCache(std::size_t capacity = 16) : capacity_(capacity) {}
    /// 64-bit FNV-1a of the image (size, channels, pixels) and of `settings`.
    static std::uint64_t key(const io::Image& img, std::string_view settings);
    /// key() for an image preprocessed with Qwen2-VL's processor settings `ic`.
    static std::uint64_t key(const io::Image& img, const io::Qwen2VLImageConfig& ic);
    /// The cached features, or nullptr.
    std::shared_ptr<const Tensor<float, 2>> find(std::uint64_t key);
    void insert(std::uint64_t key, std::shared_ptr<const Tensor<float, 2>> features);
    std::size_t hits() const { return hits_; }
    std::size_t misses() const { return misses_; }

private:
    std::size_t capacity_;
    std::mutex mutex_;
    std::vector<std::pair<std::uint64_t, std::shared_ptr<const Tensor<float, 2>>>> entries_;  // most recent last
    std::size_t hits_ = 0, misses_ = 0;
};

/// Two-stage parsing with a Qwen2-VL-family model (Model<Config>) and its tokenizer.
template <class M>
class MinerUPageParser {
public:
    MinerUPageParser(const M& model, const io::Tokenizer& tokenizer, PageParserOptions opt = {})
        : model_(&model), tok_(&tokenizer), opt_(std::move(opt)) {}

    /// Layout and content of one page image (RGB).
    Document parse(const io::Image& page) const;
    /// Stage 1 only.
    std::vector<Block> detect_layout(const io::Image& page, std::vector<std::string>* warnings = nullptr) const;
    /// Runs one prompt on one image and returns the model's text (special tokens kept, the stop
    /// token removed), e.g. recognise(crop, mineru_prompt(Task::table), sampling_for(Task::table)).
    /// `on_token`, if given, sees every generated token id as it comes.
    std::string recognise(const io::Image& image, std::string_view prompt, GenerationOptions opt,
                          const std::function<void(std::int32_t)>& on_token = {}) const;
    /// recognise() for several (image, prompt, options) at once: the decoder steps them together
    /// (Model::generate_batch); each result is what recognise() gives for it alone.
    std::vector<std::string> recognise_batch(std::span<const io::Image> images, std::span<const std::string> prompts,
                                             std::span<const GenerationOptions> options) const;
    /// Prompts without an image (chat_prompt_text), decoded together; each answer is what the
    /// prompt gives alone.
    std::vector<std::string> answer_text_batch(std::span<const std::string> prompts, const GenerationOptions& options) const;
    /// The client's cross-page table check (enable_cross_page_table_merge) over a document's pages
    /// in order: its text-only questions answered by the model with the client's sampling;
    /// Block::cell_merge set on tables that continue the previous page's (mineru_cross_page.hpp).
    void check_cross_page_tables(std::vector<Document>& pages) const;
    /// The vision-feature cache used by recognise().
    VisionCache& vision_cache() const { return *cache_; }
    /// Time per phase so far (layout time is also split into its preprocess/vision/prefill/decode).
    PhaseTimes phase_times() const {
        std::lock_guard lock(*times_mutex_);
        return *times_;
    }
    /// Adds time spent outside the parser (e.g. decoding the page image) to the profile.
    void add_decode_image_time(double seconds) const {
        std::lock_guard lock(*times_mutex_);
        times_->decode_image += seconds;
    }

private:
    template <class F>
    void timed(double PhaseTimes::*field, F&& f) const;
    // An image's vision tokens (from the cache or the encoder), its prompt ids and options.
    struct Prepared {
        std::shared_ptr<const Tensor<float, 2>> vision;
        ImageGrid grid;
        std::vector<std::int32_t> ids;
        GenerationOptions opt;
    };
    Prepared prepare(const io::Image& image, std::string_view prompt, GenerationOptions opt) const;
    // The prompt ids of `chat` and the options fitted to the model's context.
    void fit(Prepared& p, const std::string& chat, GenerationOptions opt) const;
    // Prepared requests (with an image's vision tokens, or text only) decoded together.
    std::vector<std::string> decode_together(const std::vector<Prepared>& prepared) const;
    // Records the generation's times and drops the stop tokens at the end of `out`.
    std::string finish(const Prepared& p, std::vector<std::int32_t> out, const GenerationStats& stats) const;

    const M* model_;
    const io::Tokenizer* tok_;
    PageParserOptions opt_;
    std::shared_ptr<VisionCache> cache_ = std::make_shared<VisionCache>();
    std::shared_ptr<PhaseTimes> times_ = std::make_shared<PhaseTimes>();
    std::shared_ptr<std::mutex> times_mutex_ = std::make_shared<std::mutex>();
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline io::Image crop_box(const io::Image& page, double x0, double y0, double x1, double y1) {
    auto r = [](double v) { return int(std::nearbyint(v)); };  // Python round(): half to even
    return io::crop(page, r(x0), r(y0), r(x1), r(y1));
}

inline io::Image resize_by_need(const io::Image& input, int min_edge, double max_ratio) {
    io::Image img = input;
    if (img.width <= 0 || img.height <= 0) docvlm::detail::fail("resize_by_need: empty image");
    const int lo = std::min(img.width, img.height), hi = std::max(img.width, img.height);
    if (double(hi) / lo > max_ratio) {
        const int nw = img.width > img.height ? img.width : int(std::ceil(img.height / max_ratio));
        const int nh = img.width > img.height ? int(std::ceil(img.width / max_ratio)) : img.height;
        io::Image canvas(nw, nh, img.channels, 255);
        const int ox = int((nw - img.width) / 2.0), oy = int((nh - img.height) / 2.0);
        for (int y = 0; y < img.height; ++y)
            std::memcpy(canvas.row(y + oy) + std::size_t(ox) * img.channels, img.row(y), std::size_t(img.width) * img.channels);
        img = std::move(canvas);
    }
    if (std::min(img.width, img.height) < min_edge) {
        const double scale = double(min_edge) / std::min(img.width, img.height);
        img = io::resize(img, int(std::nearbyint(img.width * scale)), int(std::nearbyint(img.height * scale)), io::Resample::bicubic);
    }
    return img;
}

inline std::vector<Crop> crops_for(const io::Image& page, std::vector<Block>& blocks, const PageParserOptions& opt,
                                   std::vector<std::string>* warnings) {
    std::vector<std::size_t> tables;
    for (std::size_t i = 0; i < blocks.size(); ++i)
        if (blocks[i].type == "table") tables.push_back(i);
    const std::vector<std::vector<std::size_t>> table_images = table_image_map(blocks, tables);
    for (const auto& images : table_images)
        for (std::size_t k : images) blocks[k].absorbed_by_table = true;
    TableImageTokens tokens;
    const io::TrueTypeFont* font = table_token_font();
    // Image analysis reads images and charts that stand alone (not ≥ 90 % inside an image_block)
    // and are large enough: both sides over a tenth of the page, or over a hundredth of its area.
    auto analysed = [&](const Block& b) {
        const double w = b.x1 - b.x0, h = b.y1 - b.y0;
        return !detail::inside_another(blocks, b, {"image_block"}) && ((w > 0.1 && h > 0.1) || w * h > 0.01);
    };
    std::vector<Crop> out;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        Block& b = blocks[i];
        if (skips_content(b.type, opt.image_analysis) || (b.type == "image" && b.absorbed_by_table)) continue;
        if ((b.type == "image" || b.type == "chart") && !analysed(b)) continue;
        io::Image c = crop_box(page, b.x0 * page.width, b.y0 * page.height, b.x1 * page.width, b.y1 * page.height);
        if (c.width == 0 || c.height == 0) {
            if (warnings) warnings->push_back("block " + std::to_string(i) + " (" + b.type + ") is empty after cropping: skipped");
            continue;
        }
        if (b.type == "table") {
            std::vector<const Block*> images;
            for (std::size_t k : table_images[std::size_t(std::find(tables.begin(), tables.end(), i) - tables.begin())])
                images.push_back(&blocks[k]);
            if (!images.empty() && !font && warnings)
                warnings->push_back("block " + std::to_string(i) + " (table): no DejaVu Sans font to label the images inside it");
            c = mask_table_images(page, b, images, std::move(c), tokens, font, b.table_images);
        } else if (b.angle.value_or(0) != 0) {
            c = io::rotate(c, *b.angle);
        }
        out.push_back({i, task_for(b.type), resize_by_need(c, opt.min_image_edge, opt.max_image_edge_ratio)});
    }
    return out;
}

inline std::string postprocess_content(std::string_view type, std::string_view raw) {
    Block b;
    b.type = type;
    b.x1 = b.y1 = 1;
    b.content = raw;
    const std::vector<Block> out = mineru_post_process({std::move(b)});
    return out.empty() ? std::string() : out.front().content;
}

inline std::uint64_t VisionCache::key(const io::Image& img, std::string_view settings) {
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&](const void* p, std::size_t n) {
        const auto* b = static_cast<const unsigned char*>(p);
        for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    };
    const int dims[3] = {img.width, img.height, img.channels};
    mix(dims, sizeof dims);
    mix(img.pixels.data(), img.pixels.size());
    mix(settings.data(), settings.size());
    return h;
}

inline std::uint64_t VisionCache::key(const io::Image& img, const io::Qwen2VLImageConfig& ic) {
    return key(img, std::to_string(ic.min_pixels) + "/" + std::to_string(ic.max_pixels) + "/" + std::to_string(ic.patch_size) + "/" +
                        std::to_string(ic.merge_size) + "/" + std::to_string(ic.rescale_factor));
}

inline std::shared_ptr<const Tensor<float, 2>> VisionCache::find(std::uint64_t key) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < entries_.size(); ++i)
        if (entries_[i].first == key) {
            auto e = entries_[i];
            entries_.erase(entries_.begin() + std::ptrdiff_t(i));
            entries_.push_back(e);
            ++hits_;
            return e.second;
        }
    ++misses_;
    return nullptr;
}

inline void VisionCache::insert(std::uint64_t key, std::shared_ptr<const Tensor<float, 2>> features) {
    std::lock_guard lock(mutex_);
    if (capacity_ == 0) return;
    if (entries_.size() >= capacity_) entries_.erase(entries_.begin());
    entries_.emplace_back(key, std::move(features));
}

template <class M>
template <class F>
void MinerUPageParser<M>::timed(double PhaseTimes::*field, F&& f) const {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::lock_guard lock(*times_mutex_);
    (*times_).*field += s;
}

template <class M>
typename MinerUPageParser<M>::Prepared MinerUPageParser<M>::prepare(const io::Image& image, std::string_view prompt,
                                                                     GenerationOptions opt) const {
    Prepared p;
    io::PixelValues px;
    timed(&PhaseTimes::preprocess, [&] { px = io::preprocess_qwen2vl(image, model_->image_config()); });
    const auto& ic = model_->image_config();
    const std::uint64_t key = VisionCache::key(image, ic);
    p.vision = cache_->find(key);
    if (!p.vision) {
        timed(&PhaseTimes::vision, [&] { p.vision = std::make_shared<const Tensor<float, 2>>(model_->encode_image(px)); });
        cache_->insert(key, p.vision);
    } else {
        std::lock_guard lock(*times_mutex_);
        ++times_->vision_cache_hits;
    }
    p.grid = {px.grid_t, px.grid_h, px.grid_w};
    fit(p, chat_prompt(prompt, p.vision->shape()[0]), std::move(opt));
    return p;
}

template <class M>
void MinerUPageParser<M>::fit(Prepared& p, const std::string& chat, GenerationOptions opt) const {
    const auto& d = model_->dims();
    p.ids = tok_->encode(chat);
    if (opt.stop_tokens.empty()) opt.stop_tokens = {d.eos_token_id};
    if (p.ids.size() + 1 > d.max_positions)
        docvlm::detail::fail("prompt of ", p.ids.size(), " tokens exceeds the model's limit of ", d.max_positions);
    opt.max_new_tokens = std::min(opt.max_new_tokens, d.max_positions - p.ids.size());
    p.opt = std::move(opt);
}

template <class M>
std::string MinerUPageParser<M>::finish(const Prepared& p, std::vector<std::int32_t> out, const GenerationStats& stats) const {
    {
        std::lock_guard lock(*times_mutex_);
        times_->prefill += stats.prefill_seconds;
        times_->decode += stats.decode_seconds;
        times_->prompt_tokens += stats.prompt_tokens;
        times_->generated_tokens += stats.generated_tokens;
    }
    while (!out.empty() && std::find(p.opt.stop_tokens.begin(), p.opt.stop_tokens.end(), out.back()) != p.opt.stop_tokens.end())
        out.pop_back();
    return tok_->decode(out);
}

template <class M>
std::string MinerUPageParser<M>::recognise(const io::Image& image, std::string_view prompt, GenerationOptions opt,
                                           const std::function<void(std::int32_t)>& on_token) const {
    const Prepared p = prepare(image, prompt, std::move(opt));
    auto ctx = model_->context(p.ids.size() + p.opt.max_new_tokens);
    GenerationStats stats;
    std::vector<std::int32_t> out = ctx.generate(p.ids, {p.vision.get(), 1}, {&p.grid, 1}, p.opt, on_token, &stats);
    return finish(p, std::move(out), stats);
}

template <class M>
std::vector<std::string> MinerUPageParser<M>::recognise_batch(std::span<const io::Image> images, std::span<const std::string> prompts,
                                                              std::span<const GenerationOptions> options) const {
    if (prompts.size() != images.size() || options.size() != images.size())
        docvlm::detail::fail("recognise_batch: ", images.size(), " images, ", prompts.size(), " prompts, ", options.size(), " options");
    std::vector<Prepared> prepared;
    prepared.reserve(images.size());
    for (std::size_t i = 0; i < images.size(); ++i) prepared.push_back(prepare(images[i], prompts[i], options[i]));
    return decode_together(prepared);
}

template <class M>
std::vector<std::string> MinerUPageParser<M>::answer_text_batch(std::span<const std::string> prompts,
                                                                const GenerationOptions& options) const {
    std::vector<Prepared> prepared(prompts.size());
    for (std::size_t i = 0; i < prompts.size(); ++i) fit(prepared[i], chat_prompt_text(prompts[i]), options);
    return decode_together(prepared);
}

template <class M>
std::vector<std::string> MinerUPageParser<M>::decode_together(const std::vector<Prepared>& prepared) const {
    std::vector<BatchRequest> reqs;
    for (const Prepared& p : prepared)
        if (p.vision) reqs.push_back({p.ids, {p.vision.get(), 1}, {&p.grid, 1}, p.opt});
        else reqs.push_back({p.ids, {}, {}, p.opt});
    GenerationStats stats;
    auto outs = model_->generate_batch(reqs, &stats);
    std::vector<std::string> texts;
    for (std::size_t i = 0; i < prepared.size(); ++i)
        texts.push_back(finish(prepared[i], std::move(outs[i]), i == 0 ? stats : GenerationStats{}));
    return texts;
}

template <class M>
void MinerUPageParser<M>::check_cross_page_tables(std::vector<Document>& pages) const {
    pipeline::check_cross_page_tables(pages, [&](const std::vector<std::string>& prompts) {
        std::vector<std::string> answers;
        for (std::size_t i = 0; i < prompts.size(); i += std::max<std::size_t>(1, opt_.batch)) {  // the client's batch, in slices
            const std::size_t n = std::min(prompts.size() - i, std::max<std::size_t>(1, opt_.batch));
            for (std::string& a : answer_text_batch({prompts.data() + i, n}, sampling_for(Task::text, opt_.max_new_tokens)))
                answers.push_back(std::move(a));
        }
        return answers;
    });
}

template <class M>
std::vector<Block> MinerUPageParser<M>::detect_layout(const io::Image& page, std::vector<std::string>* warnings) const {
    const io::Image small = io::resize(page, opt_.layout_width, opt_.layout_height, io::Resample::bicubic);
    const std::string out = recognise(small, mineru_prompt(Task::layout), sampling_for(Task::layout, opt_.max_new_tokens));
    return parse_layout(out, warnings);
}

template <class M>
Document MinerUPageParser<M>::parse(const io::Image& page) const {
    if (page.channels != 3) docvlm::detail::fail("parse: expected an RGB page image");
    Document doc;
    if (opt_.progress) opt_.progress("layout", 0, 1);
    timed(&PhaseTimes::layout, [&] { doc.blocks = drop_captions_inside_images(detect_layout(page, &doc.warnings)); });
    if (opt_.progress) opt_.progress("layout", 1, 1);
    std::vector<Crop> crops;
    timed(&PhaseTimes::crops, [&] { crops = crops_for(page, doc.blocks, opt_, &doc.warnings); });
    // the crops in batches: prefilled one by one, decoded together
    const std::size_t batch = std::max<std::size_t>(1, opt_.batch);
    for (std::size_t b0 = 0; b0 < crops.size(); b0 += batch) {
        if (opt_.progress) opt_.progress("content", b0, crops.size());
        const std::size_t b1 = std::min(crops.size(), b0 + batch);
        std::vector<io::Image> images;
        std::vector<std::string> prompts;
        std::vector<GenerationOptions> options;
        for (std::size_t i = b0; i < b1; ++i) {
            images.push_back(crops[i].image);
            prompts.emplace_back(mineru_prompt(crops[i].task));
            options.push_back(sampling_for(crops[i].task, opt_.max_new_tokens));
        }
        const std::vector<std::string> raw = recognise_batch(images, prompts, options);
        for (std::size_t i = b0; i < b1; ++i) {
            doc.blocks[crops[i].block].content = raw[i - b0];
        }
    }
    timed(&PhaseTimes::postprocess, [&] { doc.blocks = mineru_post_process(std::move(doc.blocks), opt_.post); });
    {
        std::lock_guard lock(*times_mutex_);
        ++times_->pages;
        times_->blocks += crops.size();
    }
    if (opt_.progress) opt_.progress("content", crops.size(), crops.size());
    return doc;
}

}  // namespace pipeline
DOCVLM_NAMESPACE_END

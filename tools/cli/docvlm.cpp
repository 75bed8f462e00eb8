// docvlm — the command-line tool.
//
//   docvlm parse INPUT... [--model DIR]   pages (images, PDFs, folders) to Markdown / JSON / HTML
//   docvlm ocr|table|formula IMAGE [--model DIR]   one crop, one task
// Without --model the embedded model (models/docvlm-small) reads the pages; with it, MinerU2.5 or
// any Qwen2-VL-family folder (or another docvlm-small folder).
//   docvlm serve [--model DIR]      HTTP server: OpenAI-compatible chat API (MinerU's client), /v1/parse, web page
//   docvlm info CHECKPOINT          what a checkpoint holds: architecture, sizes, dtypes, parameters
//   docvlm golden-check DIR         compare docvlm with Hugging Face reference tensors in DIR
//   docvlm --help | COMMAND --help
#include <docvlm/docvlm.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/model/quantize.hpp>
#include <docvlm/pipeline/page_parser.hpp>
#include <docvlm/presets/docvlm_small.hpp>
#include <docvlm/presets/llava15.hpp>
#include <docvlm/presets/qwen2vl.hpp>

#include "golden_check.hpp"
#include "help.hpp"
#include "serve.hpp"
#include <docvlm/io/pdf.hpp>
#include <docvlm/io/tiff.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <limits>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <vector>

namespace {

using namespace cli_help;

struct Options {
    std::vector<std::string> inputs;
    std::string model, out = ".", format = "md", weights = "int8", device = "cpu";
    std::size_t threads = 0, max_tokens = 4096, jobs = 1, shard_index = 1, shard_count = 1;
    std::string pages;
    double dpi = 150;
    std::optional<double> min_confidence, reread, lexicon, respell;  // embedded model: the parser's defaults unless given
    std::optional<std::size_t> beam;
    bool force = false, quiet = false, stream = false, profile = false, segmenter_tables = false, grid_tables = false,
         normalise = true, image_analysis = false, cross_page_tables = false;
};

// Parses --flags; positional arguments go to inputs. Throws docvlm::Error for bad flags.
Options parse_options(const std::vector<std::string>& args, std::size_t from) {
    Options o;
    auto value = [&](std::size_t& i) -> const std::string& {
        if (i + 1 >= args.size()) docvlm::detail::fail("option ", args[i], " needs a value");
        return args[++i];
    };
    auto number = [&](std::size_t& i) {
        const std::string& v = value(i);
        char* end = nullptr;
        const long n = std::strtol(v.c_str(), &end, 10);
        if (!end || *end || n < 1) docvlm::detail::fail("option ", args[i - 1], ": '", v, "' is not a positive number");
        return std::size_t(n);
    };
    // a real number in [lo, hi], or `off` (returned as `off_value`)
    auto real_or_off = [&](std::size_t& i, double lo, double hi, double off_value, const char* what) {
        const std::string& v = value(i);
        if (v == "off") return off_value;
        char* end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (v.empty() || *end || !(x >= lo && x <= hi)) docvlm::detail::fail(args[i - 1], ": '", v, "' is not ", what, " or 'off'");
        return x;
    };
    for (std::size_t i = from; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--model") o.model = value(i);
        else if (a == "-o" || a == "--output") o.out = value(i);
        else if (a == "--format") o.format = value(i);
        else if (a == "--weights") o.weights = value(i);
        else if (a == "--device") o.device = value(i);
        else if (a == "--threads") o.threads = number(i);
        else if (a == "--max-tokens") o.max_tokens = number(i);
        else if (a == "--pages") o.pages = value(i);
        else if (a == "--jobs") o.jobs = number(i);
        else if (a == "--shard") {
            const std::string& v = value(i);
            const auto slash = v.find('/');
            const std::string a_str = slash == std::string::npos ? std::string() : v.substr(0, slash);
            const std::string b_str = slash == std::string::npos ? std::string() : v.substr(slash + 1);
            char* e1 = nullptr;
            char* e2 = nullptr;
            const long idx = std::strtol(a_str.c_str(), &e1, 10);
            const long cnt = std::strtol(b_str.c_str(), &e2, 10);
            if (a_str.empty() || b_str.empty() || *e1 || *e2 || cnt < 1 || idx < 1 || idx > cnt)
                docvlm::detail::fail("--shard: '", v, "' is not I/N with 1 <= I <= N (e.g. --shard 2/8)");
            o.shard_index = std::size_t(idx), o.shard_count = std::size_t(cnt);
        }
        else if (a == "--dpi") o.dpi = double(number(i));
        else if (a == "--force") o.force = true;
        else if (a == "--quiet") o.quiet = true;
        else if (a == "--stream") o.stream = true;
        else if (a == "--profile") o.profile = true;
        else if (a == "--segmenter-tables") o.segmenter_tables = true;
        else if (a == "--grid-tables") o.grid_tables = true;
        else if (a == "--image-analysis") o.image_analysis = true;
        else if (a == "--cross-page-tables") o.cross_page_tables = true;
        else if (a == "--no-normalise") o.normalise = false;
        else if (a == "--min-confidence" || a == "--reread") {
            constexpr double inf = std::numeric_limits<double>::infinity();
            (a == "--reread" ? o.reread : o.min_confidence) = real_or_off(i, -inf, 0, -inf, "a log-probability <= 0");
        }
        else if (a == "--beam") {
            const double w = real_or_off(i, 0, 64, 0, "a beam width of 1 to 64");
            if (w != std::floor(w)) docvlm::detail::fail("--beam: ", w, " is not a whole number");
            o.beam = std::size_t(w);
        }
        else if (a == "--lexicon" || a == "--respell") (a == "--lexicon" ? o.lexicon : o.respell) = real_or_off(i, 0, 100, 0, "a margin in [0, 100]");
        else if (!a.empty() && a[0] == '-') docvlm::detail::fail("unknown option ", a);
        else o.inputs.push_back(a);
    }
    if (o.format != "md" && o.format != "json" && o.format != "html") docvlm::detail::fail("--format must be md, json or html");
    if (o.weights != "int8" && o.weights != "bf16" && o.weights != "f32") docvlm::detail::fail("--weights must be int8, bf16 or f32");
    if (o.threads) docvlm::set_num_threads(o.threads);
    else if (o.jobs > 1) docvlm::set_num_threads(o.jobs);
    return o;
}

std::string lower_extension(const std::filesystem::path& p) {
    std::string e = p.extension().string();
    for (auto& c : e) c = char(std::tolower(static_cast<unsigned char>(c)));
    return e;
}
bool is_pdf(const std::filesystem::path& p) { return lower_extension(p) == ".pdf"; }
bool is_tiff(const std::filesystem::path& p) { return lower_extension(p) == ".tif" || lower_extension(p) == ".tiff"; }
bool is_input_file(const std::filesystem::path& p) {
    const std::string e = lower_extension(p);
    return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".bmp" || e == ".pdf" || is_tiff(p);
}

std::string file_bytes(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) docvlm::detail::fail(p.string(), ": cannot open");
    return {std::istreambuf_iterator<char>(in), {}};
}

// Page `index` of a multi-page TIFF (scanners write one page per directory).
docvlm::io::Image tiff_page(const std::filesystem::path& p, int index) {
    const std::string bytes = file_bytes(p);
    return docvlm::io::decode_tiff(std::as_bytes(std::span(bytes.data(), bytes.size())), std::size_t(index), docvlm::io::ColorMode::rgb, {},
                                   p.string());
}

// True if DIR holds a docvlm-small model (config.json model_type "docvlm_small").
bool is_docvlm_small(const std::string& dir) {
    std::ifstream in(std::filesystem::path(dir) / "config.json");
    if (!in) return false;
    const auto j = nlohmann::json::parse(in, nullptr, false);
    return j.is_object() && j.value("model_type", std::string()) == "docvlm_small";
}

std::string model_type(const std::string& dir) {
    std::ifstream in(std::filesystem::path(dir) / "config.json");
    if (!in) return "";
    const auto j = nlohmann::json::parse(in, nullptr, false);
    return j.is_object() && j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
}

// Greedy answer of a prompt with one image, printed (streamed with --stream) up to a stop token;
// decode(ids) gives the text of the answer so far.
template <class Context, class Decode>
void print_answer(Context& ctx, const std::vector<std::int32_t>& ids, const docvlm::Tensor<float, 2>& vision,
                  std::vector<std::int32_t> stop, Decode&& decode, const Options& o) {
    docvlm::GenerationOptions gen;
    gen.max_new_tokens = o.max_tokens;
    gen.stop_tokens = stop;
    std::vector<std::int32_t> answer;
    std::string shown;  // streamed so far; a trailing U+FFFD may be half a character, so it waits
    auto show = [&](bool last) {
        const std::string text = decode(answer);
        if (!last && text.ends_with("\xef\xbf\xbd")) return;
        if (text.compare(0, shown.size(), shown) == 0) std::fputs(text.c_str() + shown.size(), stdout);
        else std::printf("\n%s", text.c_str());  // a piece changed what came before it: print the whole answer again
        std::fflush(stdout);
        shown = text;
    };
    ctx.generate(ids, {&vision, 1}, {}, gen, [&](std::int32_t t) {
        if (std::find(stop.begin(), stop.end(), t) != stop.end()) return;
        answer.push_back(t);
        if (o.stream) show(false);
    });
    show(true);
    std::printf("\n");
}

// The ids a tokenizer of `size` tokens knows: a model's vocabulary may be larger, and its
// untrained rows (which a random test model does choose) have no text.
std::vector<std::int32_t> known(const std::vector<std::int32_t>& ids, std::size_t size) {
    std::vector<std::int32_t> out;
    for (std::int32_t t : ids)
        if (t >= 0 && std::size_t(t) < size) out.push_back(t);
    return out;
}

// `ask` with a LLaVA-1.5 (model_type llava) or Qwen-VL (qwen) checkpoint: the family's
// preprocessing and conversation prompt, an answer up to its end token.
int ask_family(const Options& o, const std::string& type) {
    auto run = [&](auto tag) {
        using W = decltype(tag);
        const auto image = docvlm::io::load_image(o.inputs[0]);
        if (type == "llava") {
            const auto tok = docvlm::io::SentencePieceTokenizer::from_folder(o.model);
            auto model = docvlm::load<docvlm::presets::Llava15<W>>(o.model);
            docvlm_cli::on_device(model, o.device);
            const docvlm::Tensor<float, 2> vision = model.encode_image(docvlm::io::preprocess_clip(image, model.image_config()));
            const auto ids = model.prompt(tok, o.inputs[1]);
            auto ctx = model.context(ids.size() + o.max_tokens);
            print_answer(ctx, ids, vision, {tok.eos_id()}, [&](const auto& a) { return tok.decode(known(a, tok.size()), true); }, o);
        } else {
            const auto tok = docvlm::qwen_vl_tokenizer(o.model);
            auto model = docvlm::load<docvlm::presets::QwenVL<W>>(o.model);
            docvlm_cli::on_device(model, o.device);
            const docvlm::Tensor<float, 2> vision = model.encode_image(docvlm::io::preprocess_square(image, model.image_size()));
            const auto ids = model.prompt(tok, o.inputs[1]);
            auto ctx = model.context(ids.size() + o.max_tokens);
            print_answer(ctx, ids, vision, {*tok.token_id("<|im_end|>"), *tok.token_id("<|endoftext|>")},
                         [&](const auto& a) { return tok.decode(known(a, tok.size()), true); }, o);
        }
        return 0;
    };
    if (o.weights == "f32") return run(docvlm::F32{});
    if (o.weights == "bf16") return run(docvlm::BF16{});
    return run(docvlm::Int8PerChannel{});
}

// Runs fn(parser, tokenizer-or-null) with the model the options ask for, under the weight policy
// they ask for: the embedded model (EmbeddedPageParser) or a Qwen2-VL-family one (MinerUPageParser).
template <class Fn>
int with_parser(const Options& o, Fn&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string dir = o.model.empty() ? docvlm::default_model_dir() : o.model;
    if (!o.quiet) std::fprintf(stderr, "loading %s (%s weights)...\n", dir.c_str(), o.weights.c_str());
    auto loaded = [&] {
        if (!o.quiet)
            std::fprintf(stderr, "loaded in %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
    auto run = [&](auto tag) {
        using W = decltype(tag);
        if (o.model.empty() || is_docvlm_small(dir)) {
            auto model = o.model.empty() ? docvlm::load_default_model<W>() : docvlm::load<docvlm::presets::DocvlmSmall<W>>(dir);
            docvlm_cli::on_device(model, o.device);
            loaded();
            docvlm::pipeline::EmbeddedParserOptions popt;
            popt.max_new_tokens = std::min(o.max_tokens, popt.max_new_tokens);  // per crop (the table task has its own bound)
            popt.tables = !o.segmenter_tables;
            popt.table_splitter = !o.grid_tables;
            if (!o.normalise) popt.normalise = {.flatten = false, .orient = false, .deskew = false};
            if (o.min_confidence) popt.min_confidence = *o.min_confidence;
            if (o.reread) popt.reread_below = *o.reread;
            if (o.beam) popt.reread_beam = *o.beam;
            if (o.lexicon) popt.lexicon_margin = *o.lexicon;
            if (o.respell) popt.respell_margin = *o.respell;
            const docvlm::pipeline::EmbeddedPageParser parser(model, popt);
            return fn(parser, static_cast<const docvlm::io::Tokenizer*>(nullptr));
        }
        const auto tok = docvlm::io::Tokenizer::from_json((std::filesystem::path(dir) / "tokenizer.json").string());
        auto model = docvlm::Model<docvlm::presets::Qwen2VL<W>>::load(dir);
        docvlm_cli::on_device(model, o.device);
        loaded();
        docvlm::pipeline::PageParserOptions popt;
        popt.max_new_tokens = o.max_tokens;
        popt.image_analysis = o.image_analysis;
        const docvlm::pipeline::MinerUPageParser parser(model, tok, popt);
        return fn(parser, &tok);
    };
    if (o.weights == "f32") return run(docvlm::F32{});
    if (o.weights == "bf16") return run(docvlm::BF16{});
    return run(docvlm::Int8PerChannel{});
}

// Writes `text` to `path` through a temporary file and a rename (never half-written).
void write_atomically(const std::filesystem::path& path, const std::string& text) {
    const std::filesystem::path tmp = path.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) docvlm::detail::fail(tmp.string(), ": cannot create");
        out << text;
        if (!out.flush()) docvlm::detail::fail(tmp.string(), ": write failed");
    }
    std::filesystem::rename(tmp, path);
}

// One unit of work: an image file, or one page of a PDF, and where its output goes.
struct WorkItem {
    std::filesystem::path file;
    int page = -1;  // 0-based PDF page, or -1 for an image
    std::filesystem::path out;
};

int cmd_parse(const Options& o) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    int failures = 0;
    for (const auto& in : o.inputs) {
        std::error_code ec;
        if (fs::is_directory(in, ec)) {
            std::vector<fs::path> found;
            for (const auto& e : fs::directory_iterator(in, ec))
                if (e.is_regular_file() && is_input_file(e.path())) found.push_back(e.path());
            std::sort(found.begin(), found.end());
            if (found.empty()) std::fprintf(stderr, "docvlm parse: %s: no images or PDFs in this folder\n", in.c_str());
            files.insert(files.end(), found.begin(), found.end());
        } else if (fs::exists(in, ec)) {
            files.emplace_back(in);
        } else {
            std::fprintf(stderr, "docvlm parse: %s: no such file or folder\n", in.c_str());
            ++failures;
        }
    }
    // Every page of every input, in a fixed order (the basis of --shard).
    std::vector<WorkItem> items;
    for (const auto& f : files) {
        if (!is_pdf(f) && !is_tiff(f)) {
            items.push_back({f, -1, fs::path(o.out) / (f.stem().string() + "." + o.format)});
            continue;
        }
        try {
            int count = 0;
            if (is_pdf(f)) {
                count = docvlm::io::PdfPages(f.string()).count();
            } else {
                const std::string bytes = file_bytes(f);
                count = int(docvlm::io::tiff_page_count(std::as_bytes(std::span(bytes.data(), bytes.size())), f.string()));
            }
            for (int p : docvlm::io::page_list(o.pages, count))
                items.push_back({f, p, fs::path(o.out) / (f.stem().string() + "_p" + std::to_string(p + 1) + "." + o.format)});
        } catch (const docvlm::Error& e) {
            std::fprintf(stderr, "docvlm parse: %s\n", e.what());
            ++failures;
        }
    }
    if (o.shard_count > 1) {  // pages i, i + n, i + 2n, ... of the list (1-based shard i)
        std::vector<WorkItem> mine;
        for (std::size_t k = 0; k < items.size(); ++k)
            if (k % o.shard_count == o.shard_index - 1) mine.push_back(items[k]);
        if (!o.quiet)
            std::fprintf(stderr, "shard %zu/%zu: %zu of %zu pages\n", o.shard_index, o.shard_count, mine.size(), items.size());
        items = std::move(mine);
    }
    // Resumable: outputs that exist are skipped unless --force.
    std::size_t skipped = 0;
    if (!o.force)
        std::erase_if(items, [&](const WorkItem& w) { return fs::exists(w.out) && ++skipped; });
    if (skipped && !o.quiet) std::fprintf(stderr, "%zu pages already done (their outputs exist; --force redoes them)\n", skipped);
    if (items.empty()) {
        if (!o.quiet) std::fprintf(stderr, "docvlm parse: nothing to do\n");
        return failures ? 1 : 0;
    }
    fs::create_directories(o.out);
    return with_parser(o, [&](const auto& parser, const docvlm::io::Tokenizer*) {
        const auto t0 = std::chrono::steady_clock::now();
        std::mutex io_mutex;      // stderr lines and poppler (not thread-safe) are used by one job at a time
        std::size_t done = 0;
        std::atomic<int> failed{0};
        const bool tty = ::isatty(2) != 0;
        auto render = [&](const docvlm::pipeline::Document& doc) {
            return o.format == "md" ? doc.markdown() : o.format == "json" ? doc.json() : doc.html();
        };
        // --cross-page-tables: a document's pages wait here until the last one is parsed (or has failed).
        struct PendingDocument {
            std::size_t left = 0;
            std::map<int, std::pair<const WorkItem*, docvlm::pipeline::Document>> pages;
        };
        std::map<fs::path, PendingDocument> pending;
        if (o.cross_page_tables)
            for (const auto& w : items)
                if (w.page >= 0) ++pending[w.file].left;
        // Holds page w (nullopt: it failed); all the document's pages once this was its last, else none.
        auto hold = [&](const WorkItem& w, std::optional<docvlm::pipeline::Document> doc) {
            std::vector<std::pair<const WorkItem*, docvlm::pipeline::Document>> ready;
            std::lock_guard lock(io_mutex);
            PendingDocument& d = pending.at(w.file);
            if (doc) d.pages.emplace(w.page, std::pair{&w, std::move(*doc)});
            if (--d.left == 0)
                for (auto& [page, entry] : d.pages) ready.push_back(std::move(entry));
            return ready;
        };
        // Checks and joins the document's tables, then writes its pages (as parsed if the check fails).
        auto write_document = [&](std::vector<std::pair<const WorkItem*, docvlm::pipeline::Document>> ready) {
            std::vector<docvlm::pipeline::Document> docs;
            for (auto& [w, doc] : ready) docs.push_back(std::move(doc));
            std::vector<std::size_t> warned;
            for (const auto& d : docs) warned.push_back(d.warnings.size());
            const std::vector<docvlm::pipeline::Document> parsed = docs;
            try {
                parser.check_cross_page_tables(docs);
                docvlm::pipeline::merge_cross_page_tables(docs);
            } catch (const docvlm::Error& e) {
                docs = parsed;
                std::lock_guard lock(io_mutex);
                std::fprintf(stderr, "docvlm parse: %s: tables across pages left apart: %s\n", ready[0].first->file.c_str(), e.what());
            }
            for (std::size_t i = 0; i < docs.size(); ++i) {
                write_atomically(ready[i].first->out, render(docs[i]));
                std::lock_guard lock(io_mutex);
                for (std::size_t k = warned[i]; k < docs[i].warnings.size() && !o.quiet; ++k)
                    std::fprintf(stderr, "  warning: %s page %d: %s\n", ready[i].first->file.c_str(), ready[i].first->page + 1,
                                 docs[i].warnings[k].c_str());
            }
        };
        // The page's pixels: an image decoded, a TIFF page or a PDF page rendered.
        auto load_page = [&](const WorkItem& w) {
            const auto td = std::chrono::steady_clock::now();
            docvlm::io::Image page;
            if (w.page < 0) {
                page = docvlm::io::load_image(w.file.string());
            } else if (is_tiff(w.file)) {
                page = tiff_page(w.file, w.page);
            } else {
                std::lock_guard lock(io_mutex);
                page = docvlm::io::PdfPages(w.file.string()).render(w.page, o.dpi);
            }
            parser.add_decode_image_time(std::chrono::duration<double>(std::chrono::steady_clock::now() - td).count());
            return page;
        };
        // `page`: the page's pixels, loaded by load_page (a failure is rethrown by get())
        auto run_item = [&](const WorkItem& w, std::future<docvlm::io::Image> page) {
            bool held = false;  // handed to hold(): its document goes out with the others
            const std::string label = w.file.string() + (w.page >= 0 ? " page " + std::to_string(w.page + 1) : std::string());
            try {
                auto doc = parser.parse(page.get());
                const std::vector<std::string> warnings = doc.warnings;
                if (o.cross_page_tables && w.page >= 0) {
                    held = true;
                    if (auto ready = hold(w, std::move(doc)); !ready.empty()) write_document(std::move(ready));
                } else {
                    write_atomically(w.out, render(doc));
                }
                std::lock_guard lock(io_mutex);
                ++done;
                for (const auto& warning : warnings)
                    if (!o.quiet) std::fprintf(stderr, "  warning: %s: %s\n", label.c_str(), warning.c_str());
                if (!o.quiet) {
                    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                    const double rate = double(done) / s;
                    std::fprintf(stderr, "%s[%zu/%zu] %s -> %s  %.2f pages/s, ETA %.0f s%s", tty ? "\r\033[K" : "", done, items.size(),
                                 label.c_str(), w.out.c_str(), rate, double(items.size() - done) / rate, tty ? "" : "\n");
                }
            } catch (const docvlm::Error& e) {
                {
                    std::lock_guard lock(io_mutex);
                    std::fprintf(stderr, "%sdocvlm parse: %s\n", tty && !o.quiet ? "\n" : "", e.what());
                    ++failed;
                }
                if (o.cross_page_tables && w.page >= 0 && !held)  // the document's other pages go out without this one
                    if (auto ready = hold(w, std::nullopt); !ready.empty()) try {
                            write_document(std::move(ready));
                        } catch (const docvlm::Error& e2) {
                            std::lock_guard lock(io_mutex);
                            std::fprintf(stderr, "docvlm parse: %s\n", e2.what());
                        }
            }
        };
        if (o.jobs > 1) {  // pages in parallel on the pool; each page's own work then runs on one thread
            docvlm::parallel_for(items.size(), [&](std::size_t b, std::size_t e) {
                for (std::size_t i = b; i < e; ++i) run_item(items[i], std::async(std::launch::deferred, load_page, std::cref(items[i])));
            }, 1);
        } else {  // one page at a time on every thread; the next page is decoded (or rendered) meanwhile
            std::future<docvlm::io::Image> next = std::async(std::launch::deferred, load_page, std::cref(items[0]));
            for (std::size_t i = 0; i < items.size(); ++i) {
                std::future<docvlm::io::Image> page = std::move(next);
                if (i + 1 < items.size()) {
                    try {
                        next = std::async(std::launch::async, load_page, std::cref(items[i + 1]));
                    } catch (const std::system_error&) {  // no thread to spare: loaded when its turn comes
                        next = std::async(std::launch::deferred, load_page, std::cref(items[i + 1]));
                    }
                }
                run_item(items[i], std::move(page));
            }
        }
        if (tty && !o.quiet) std::fputc('\n', stderr);
        failures += failed.load();
        if (o.profile) {
            const auto t = parser.phase_times();
            std::fprintf(stderr,
                         "profile: %zu pages, %zu blocks, %zu prompt + %zu generated tokens, %zu vision-cache hits\n"
                         "  decode image %8.2f s\n  layout       %8.2f s\n"
                         "  crops        %8.2f s\n  preprocess   %8.2f s\n  vision       %8.2f s\n  prefill      %8.2f s\n"
                         "  decode       %8.2f s\n  post-process %8.2f s\n",
                         t.pages, t.blocks, t.prompt_tokens, t.generated_tokens, t.vision_cache_hits, t.decode_image, t.layout,
                         t.crops, t.preprocess, t.vision, t.prefill, t.decode, t.postprocess);
        }
        return failures ? 1 : 0;
    });
}

int cmd_task(const std::string& cmd, const Options& o) {
    const bool ask = cmd == "ask";
    if (o.inputs.size() != (ask ? 2u : 1u)) docvlm::detail::fail(ask ? "give an IMAGE and a PROMPT" : "give exactly one IMAGE");
    const auto task = cmd == "table" ? docvlm::pipeline::Task::table : cmd == "formula" ? docvlm::pipeline::Task::formula
                                                                                          : docvlm::pipeline::Task::text;
    if (ask && (o.model.empty() || is_docvlm_small(o.model)))
        docvlm::detail::fail("the embedded model only knows its tasks (ocr, table, formula); for free prompts pass --model with an "
                             "instruction-following Qwen2-VL checkpoint, e.g. Qwen2-VL-2B-Instruct");
    if (const std::string type = ask ? model_type(o.model) : ""; type == "llava" || type == "qwen") return ask_family(o, type);
    const auto image = docvlm::io::load_image(o.inputs[0]);
    return with_parser(o, [&](const auto& parser, const docvlm::io::Tokenizer* tok) {
        using P = std::decay_t<decltype(parser)>;
        if constexpr (requires { parser.recognise(image, std::string_view("text"), std::function<void(std::string_view)>()); }) {  // embedded
            const std::string text = parser.recognise(image, cmd == "formula" ? "formula" : cmd == "table" ? "table" : "text",
                                                      [&](std::string_view piece) {
                if (o.stream) std::fwrite(piece.data(), 1, piece.size(), stdout), std::fflush(stdout);
            });
            if (o.stream) std::printf("\n---\n");
            std::printf("%s\n", text.c_str());
            return 0;
        } else {
            static_assert(!std::is_same_v<P, void>);
            docvlm::GenerationOptions gen = docvlm::pipeline::sampling_for(task, o.max_tokens);
            const std::string prompt = ask ? o.inputs[1] : std::string(docvlm::pipeline::mineru_prompt(task));
            if (ask) gen.presence_penalty = gen.frequency_penalty = 0.0f;
            docvlm::io::Tokenizer::StreamDecoder stream(*tok);
            const std::string raw = parser.recognise(image, prompt, gen, [&](std::int32_t t) {
                if (o.stream) std::fputs(stream.push(t).c_str(), stdout), std::fflush(stdout);
            });
            if (o.stream) std::printf("%s\n---\n", stream.finish().c_str());
            std::printf("%s\n", ask ? raw.c_str()
                                     : docvlm::pipeline::postprocess_content(cmd == "table" ? "table" : cmd == "formula" ? "equation" : "text", raw).c_str());
            return 0;
        }
    });
}

int cmd_info(const std::string& path) {
    namespace fs = std::filesystem;
    const auto ckpt = docvlm::io::Checkpoint::open(path);
    const fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
    if (fs::exists(dir / "config.json") && is_docvlm_small(dir.string())) {
        const auto d = docvlm::GatedVlmDims::from_config_json((dir / "config.json").string());
        std::printf("architecture  docvlm-small (windowed/anchor ViT + decoder with gated cross-attention every %zu layers)\n",
                    d.xattn_every);
        std::printf("vision        %zu blocks x %zu wide, %zu heads, MLP %zu, %zux%zu gray patches, window +-%zu tokens, %zu anchors,"
                    " input up to %zux%zu\n",
                    d.v_layers, d.v_dim, d.v_heads, d.v_mlp, d.patch, d.patch, d.window, d.anchors, d.max_width(), d.max_rows * d.patch);
        std::printf("decoder       %zu layers x %zu wide, %zu/%zu heads, SwiGLU %zu (cross-attention MLP %zu), byte vocabulary of %zu, "
                    "up to %zu tokens\n",
                    d.layers, d.dim, d.heads, d.kv_heads, d.mlp, d.xattn_mlp, d.vocab, d.max_tokens);
        std::string tasks;
        for (const auto& [t, h] : d.task_height) tasks += (tasks.empty() ? "" : ", ") + t + " (" + std::to_string(h) + " px high)";
        std::printf("tasks         %s\n", tasks.c_str());
    } else if (fs::exists(dir / "config.json")) {
        try {
            const auto d = docvlm::Qwen2VLDims::from_config_json((dir / "config.json").string());
            std::printf("architecture  Qwen2-VL family (vision tower + Qwen2 decoder, token concatenation)\n");
            if (const auto release = docvlm::mineru_release(d); !release.empty())
                std::printf("checkpoint    %.*s (%s)\n", int(release.size()), release.data(),
                            d.text_config ? "decoder fields in text_config" : "decoder fields at the top level of config.json");
            std::printf("vision        %zu blocks x %zu wide, %zu heads, MLP %zu, patch %zu, merge %zux%zu\n", d.v_depth, d.v_dim,
                        d.v_heads, d.v_mlp, d.patch, d.merge, d.merge);
            std::printf("decoder       %zu layers x %zu wide, %zu/%zu heads (head_dim %zu), MLP %zu, vocab %zu, M-RoPE %d/%d/%d, %s\n",
                        d.layers, d.hidden, d.heads, d.kv_heads, d.head_dim, d.mlp, d.vocab, d.mrope_section[0], d.mrope_section[1],
                        d.mrope_section[2], d.tie_embeddings ? "tied lm_head" : "separate lm_head");
        } catch (const docvlm::Error& e) {
            std::printf("config.json   not a Qwen2-VL-family config (%s)\n", e.what());
        }
    }
    std::map<std::string, std::size_t> params, dtypes;
    std::size_t total = 0;
    for (const auto& name : ckpt.names()) {
        const auto& t = ckpt.info(name);
        params[name.substr(0, name.find('.'))] += t.numel();
        dtypes[std::string(docvlm::dtype_name(t.dtype))] += t.numel();
        total += t.numel();
    }
    std::printf("tensors       %zu, %.3f M parameters\n", ckpt.names().size(), double(total) / 1e6);
    for (const auto& [p, n] : params) std::printf("  %-24s %12zu parameters\n", p.c_str(), n);
    for (const auto& [t, n] : dtypes) std::printf("  dtype %-18s %12zu values\n", t.c_str(), n);
    for (const auto& shard : ckpt.shards())
        std::printf("file          %s (%.1f MB)\n", shard.source().c_str(), double(fs::file_size(shard.source())) / 1e6);
    return 0;
}

int cmd_golden_check(const std::string& dir, const std::string& device) {
    const auto backend = device.empty() ? nullptr : docvlm::backend::make_backend(device);
    if (backend) std::printf("decoder on %s\n", backend->name().c_str());
    std::printf("%-34s %12s %12s  %s\n", "check", "max |error|", "ref scale", "result");
    const bool ok = docvlm::golden_check(dir, [](const docvlm::GoldenResult& r) {
        if (r.scale > 0 || r.max_abs_error > 0)
            std::printf("%-34s %12.3e %12.3e  %s %s\n", r.name.c_str(), r.max_abs_error, r.scale, r.passed ? "ok" : "FAIL", r.note.c_str());
        else
            std::printf("%-34s %12s %12s  %s %s\n", r.name.c_str(), "", "", r.passed ? "ok" : "FAIL", r.note.c_str());
        std::fflush(stdout);
    }, backend);
    std::printf("%s\n", ok ? "golden-check: all checks passed" : "golden-check: MISMATCH");
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    auto wants_help = [&](std::size_t from) {
        for (std::size_t i = from; i < args.size(); ++i)
            if (args[i] == "--help" || args[i] == "-h") return true;
        return false;
    };
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::fputs(usage, args.empty() ? stderr : stdout);
        return args.empty() ? 2 : 0;
    }
    const std::string& cmd = args[0];
    try {
        if (cmd == "info") {
            if (wants_help(1)) return std::fputs(info_help, stdout), 0;
            if (args.size() != 2) return std::fputs(info_help, stderr), 2;
            return cmd_info(args[1]);
        }
        if (cmd == "parse") {
            if (wants_help(1)) return std::fputs(parse_help, stdout), 0;
            return cmd_parse(parse_options(args, 1));
        }
        if (cmd == "ocr" || cmd == "table" || cmd == "formula" || cmd == "ask") {
            if (wants_help(1)) return std::fputs(cmd == "ask" ? ask_help : task_help, stdout), 0;
            return cmd_task(cmd, parse_options(args, 1));
        }
        if (cmd == "quantize") {
            if (wants_help(1)) return std::fputs(quantize_help, stdout), 0;
            std::size_t group = 0;
            std::vector<std::string> pos;
            for (std::size_t i = 1; i < args.size(); ++i) {
                if (args[i] == "--group" && i + 1 < args.size()) {
                    group = std::size_t(std::strtoul(args[++i].c_str(), nullptr, 10));
                    if (group != 32 && group != 64 && group != 128) docvlm::detail::fail("--group must be 32, 64 or 128");
                } else {
                    pos.push_back(args[i]);
                }
            }
            if (pos.size() != 2) return std::fputs(quantize_help, stderr), 2;
            const auto r = docvlm::quantize_checkpoint(pos[0], pos[1], group, [](std::size_t done, std::size_t total) {
                if (done == total || done % 50 == 0) std::fprintf(stderr, "quantize: %zu/%zu tensors\n", done, total);
            });
            std::printf("quantize: %zu linear weights packed to int8, %zu tensors copied; %.1f MB -> %.1f MB in %s\n", r.quantized,
                        r.copied, double(r.bytes_in) / 1e6, double(r.bytes_out) / 1e6, pos[1].c_str());
            return 0;
        }
        if (cmd == "serve") {
            if (wants_help(1)) return std::fputs(docvlm_cli::serve_help, stdout), 0;
            return docvlm_cli::cmd_serve(args);
        }
        if (cmd == "golden-check") {
            if (wants_help(1)) return std::fputs(golden_help, stdout), 0;
            if (args.size() == 4 && args[2] == "--device") return cmd_golden_check(args[1], args[3]);
            if (args.size() != 2) return std::fputs(golden_help, stderr), 2;
            return cmd_golden_check(args[1], "");
        }
        std::fprintf(stderr, "docvlm: unknown command '%s'\n\n%s", cmd.c_str(), usage);
        return 2;
    } catch (const docvlm::Error& e) {
        std::fprintf(stderr, "docvlm %s: %s\n", cmd.c_str(), e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "docvlm %s: unexpected error: %s\n", cmd.c_str(), e.what());
        return 1;
    }
}

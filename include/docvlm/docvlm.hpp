// docvlm/docvlm.hpp — umbrella header: include this and go.
//
// Lighter headers can be included one by one: docvlm/core/*.hpp (tensors, dtypes, threads),
// docvlm/io/safetensors.hpp (checkpoints), docvlm/io/image.hpp (images), docvlm/kernels/*.hpp
// (GEMM, attention), docvlm/layers/*.hpp, docvlm/model/model.hpp with docvlm/presets/*.hpp,
// docvlm/pipeline/*.hpp (MinerU2.5 formats and page parsing).
#pragma once

#include <docvlm/fwd.hpp>  // first: its declarations must agree with the definitions below
#include <docvlm/core/config.hpp>
#include <docvlm/core/cpu.hpp>
#include <docvlm/core/dtype.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/io/clip_processor.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/io/image_processor.hpp>
#include <docvlm/io/mapped_file.hpp>
#include <docvlm/io/safetensors.hpp>
#include <docvlm/io/sentencepiece.hpp>
#include <docvlm/io/tokenizer.hpp>
#include <docvlm/kernels/attention.hpp>
#include <docvlm/kernels/gemm.hpp>
#include <docvlm/kernels/qgemm.hpp>
#include <docvlm/layers/attention.hpp>
#include <docvlm/model/generation.hpp>
#include <docvlm/model/model.hpp>
#include <docvlm/pipeline/mineru.hpp>
#include <docvlm/pipeline/embedded_parser.hpp>
#include <docvlm/pipeline/layout.hpp>
#include <docvlm/pipeline/page_parser.hpp>
#include <docvlm/presets/docvlm_small.hpp>
#include <docvlm/presets/llava15.hpp>
#include <docvlm/presets/mineru25.hpp>
#include <docvlm/presets/qwen2vl.hpp>
#include <docvlm/presets/qwen_vl.hpp>

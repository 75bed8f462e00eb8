// docvlm/docvlm.hpp — umbrella header: include this and go.
//
// Lighter headers can be included one by one: docvlm/core/*.hpp (tensors, dtypes, threads),
// docvlm/io/safetensors.hpp (checkpoints), docvlm/io/image.hpp (image decoding and resizing).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/cpu.hpp>
#include <docvlm/core/dtype.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/io/image.hpp>
#include <docvlm/io/mapped_file.hpp>
#include <docvlm/io/safetensors.hpp>

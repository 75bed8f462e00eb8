// Google Benchmark entry point for docvlm_bench; prints the CPU features kernels will use.
#include <docvlm/core/cpu.hpp>
#include <docvlm/core/thread_pool.hpp>

#include <benchmark/benchmark.h>

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("docvlm_isa", docvlm::cpu().describe());
    benchmark::AddCustomContext("docvlm_threads", std::to_string(docvlm::thread_pool().size()));
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

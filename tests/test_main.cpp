// The doctest runner for docvlm_tests (the one translation unit that holds doctest's main).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

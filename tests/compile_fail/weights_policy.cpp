// Must not compile: int8 groups of 48 are not supported.
#include <docvlm/model/config.hpp>
using Bad = docvlm::Int8PerGroup<48>;
static_assert(Bad::group == 48);

// Must not compile: a window of 0 tokens.
#include <docvlm/model/config.hpp>
using Bad = docvlm::WindowAnchor<0, 4>;
static_assert(Bad::window == 0);

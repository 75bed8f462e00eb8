// Must not compile: a window on the Qwen2-VL vision tower, whose weights were trained with full
// attention (a policy the family cannot honour is refused, not silently ignored).
#include <docvlm/model/model.hpp>
#include <docvlm/presets/qwen2vl.hpp>

struct WindowedQwen : docvlm::presets::Qwen2VL<docvlm::F32> {
    struct vision : docvlm::presets::Qwen2VL<docvlm::F32>::vision {
        using attention = docvlm::WindowAnchor<64, 0>;
    };
};
docvlm::Model<WindowedQwen>* unused = nullptr;
auto size = sizeof(docvlm::Model<WindowedQwen>);

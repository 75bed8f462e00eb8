"""Minimal stand-in for einops.rearrange (einops is not packaged for Debian 12 and PyPI is unreachable).

Supports exactly the two patterns Qwen-VL-Chat's modeling_qwen.py uses; anything else raises.
Both are pure reshapes (no arithmetic), implemented with torch view/reshape/unsqueeze:
  "n d -> 1 n 1 d"                (RotaryEmbedding cache)
  "... (j d) -> ... j d", j=2     (_rotate_half: split last dim into 2 halves, j outer)
"""
__version__ = "0.0.0-stub"


def rearrange(tensor, pattern, **axes):
    p = " ".join(pattern.split())
    if p == "n d -> 1 n 1 d" and not axes:
        assert tensor.dim() == 2
        return tensor[None, :, None, :]
    if p == "... (j d) -> ... j d" and set(axes) == {"j"}:
        j = axes["j"]
        last = tensor.shape[-1]
        assert last % j == 0
        return tensor.reshape(*tensor.shape[:-1], j, last // j)
    raise NotImplementedError("einops stub: unsupported pattern %r %r" % (pattern, axes))

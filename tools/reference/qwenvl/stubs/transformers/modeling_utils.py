from torch import nn


class PreTrainedModel(nn.Module):
    """nn.Module holding `config`; post_init() runs the model's own _init_weights like HF's init_weights()
    (the generator overwrites every parameter afterwards anyway).  No weight tying: QWen has
    tie_word_embeddings=False."""
    config_class = None
    base_model_prefix = ""
    supports_gradient_checkpointing = False

    def __init__(self, config, *inputs, **kwargs):
        super().__init__()
        self.config = config
        self.name_or_path = ""
        self.generation_config = None

    def post_init(self):
        if hasattr(self, "_init_weights"):
            self.apply(self._init_weights)

    def get_head_mask(self, head_mask, num_hidden_layers, is_attention_chunked=False):
        if head_mask is not None:
            raise NotImplementedError("head_mask is not used by the generator")
        return [None] * num_hidden_layers

    @property
    def device(self):
        return next(self.parameters()).device

    @property
    def dtype(self):
        return next(self.parameters()).dtype

import copy
import json


class PretrainedConfig:
    """Attribute storage with the defaults of transformers' PretrainedConfig that QWen's code reads."""
    model_type = ""

    def __init__(self, **kwargs):
        self.output_attentions = kwargs.pop("output_attentions", False)
        self.output_hidden_states = kwargs.pop("output_hidden_states", False)
        self.return_dict = kwargs.pop("return_dict", True)
        self.torchscript = kwargs.pop("torchscript", False)
        self.tie_word_embeddings = kwargs.pop("tie_word_embeddings", True)
        self.architectures = kwargs.pop("architectures", None)
        self.torch_dtype = kwargs.pop("torch_dtype", None)
        for k, v in kwargs.items():
            setattr(self, k, v)

    @property
    def use_return_dict(self):
        return self.return_dict and not self.torchscript

    def to_dict(self):
        d = copy.deepcopy(self.__dict__)
        d["model_type"] = self.model_type
        return d

    def to_json_string(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

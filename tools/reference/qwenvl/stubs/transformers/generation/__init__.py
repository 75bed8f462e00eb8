from .logits_process import LogitsProcessor, LogitsProcessorList
from .stopping_criteria import StoppingCriteriaList


class GenerationConfig:
    """Attribute storage placeholder (HF generate() is not available; the generator runs its own greedy loop)."""

    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            setattr(self, k, v)

    def to_dict(self):
        return dict(self.__dict__)

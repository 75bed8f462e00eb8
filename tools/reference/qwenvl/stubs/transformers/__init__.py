"""Minimal stand-in for the parts of `transformers` that Qwen-VL-Chat's remote code imports.

Only glue lives here (config attribute storage, nn.Module base class, output containers, logging);
no numerical code of the model is replaced.  transformers is not installable on this machine.
"""
from .configuration_utils import PretrainedConfig
from .modeling_utils import PreTrainedModel
from .generation import GenerationConfig, StoppingCriteriaList, LogitsProcessor, LogitsProcessorList
from .tokenization_utils import PreTrainedTokenizer
from .utils import logging

__version__ = "0.0.0-stub"

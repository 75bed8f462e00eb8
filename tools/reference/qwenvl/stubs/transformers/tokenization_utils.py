class PreTrainedTokenizer:
    """Placeholder (import only; the generator uses no tokenizer)."""
    pass

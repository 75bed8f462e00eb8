class LogitsProcessor:
    def __call__(self, input_ids, scores):
        raise NotImplementedError


class LogitsProcessorList(list):
    def __call__(self, input_ids, scores, **kwargs):
        for p in self:
            scores = p(input_ids, scores)
        return scores

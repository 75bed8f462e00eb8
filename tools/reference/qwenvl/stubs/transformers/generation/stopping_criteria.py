class StoppingCriteriaList(list):
    pass

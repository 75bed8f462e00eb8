import logging as _logging


def get_logger(name=None):
    logger = _logging.getLogger(name)
    if not hasattr(logger, "warning_once"):
        seen = set()

        def warning_once(msg, *a, **k):
            if msg not in seen:
                seen.add(msg)
                logger.warning(msg, *a, **k)
        logger.warning_once = warning_once
    return logger

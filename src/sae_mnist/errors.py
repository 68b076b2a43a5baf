"""Errors that end a stage with a clear message instead of a traceback."""


class BenchmarkError(RuntimeError):
    """An expected failure: bad params, bad data, a diverged run. The message says what to do."""

"""Process settings for bounded batch work: `mlops run` and the pipeline's stage scripts.

Python's cyclic garbage collector rescans every long-lived object each time the heap has grown by
a quarter: every module, class and function of pandas, scikit-learn, DVC and MLflow, ~500,000
objects once all are loaded. In a pipeline run that is 9 full collections and ~1.4 s of the main
process's ~10 s of CPU, most of it while those libraries are imported; on 2 cores, ~1.2 s of wall
time (`benchmarks/bench_pipeline.py`).

So a batch job runs with the collector paused. Reference counting still frees every object that is
not part of a cycle, data frames and arrays included. What cycles a run leaves behind (tracebacks,
SQLAlchemy and DVC bookkeeping: ~100,000 small objects, ~10 MB, measured the same for 5,000 and
200,000 rows) is freed when the process ends a moment later. Long-running or data-sized loops
(`serve`, `score`, `monitor`) keep the collector.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bounded batch job; as a context manager or a
    decorator (``@collector_paused()``). Nested uses leave it paused until the outermost ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

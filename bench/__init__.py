"""tensionbot benchmarks (issue 7): fan-out, conversation handling, summaries and footprint.

Run by hand with ``make bench`` (never part of ``make test``); the results go to
``bench/RESULTS.md``. Every scenario runs in its own worker process (``python -m bench.worker``)
so that memory figures and caches of one run do not leak into the next, and the simulated
Telegram server runs in a further process of its own (``bench/platform.py``), as the real
platform would be on another machine.
"""

"""Benchmarks of offsetdb, side by side with sqlite3 in the same run: ``python -m bench``.

The pieces: :mod:`bench.engines` (the databases compared, pluggable),
:mod:`bench.workloads` (what is measured; two workloads have modules of their own,
:mod:`bench.visibility` and :mod:`bench.contention`), :mod:`bench.measure` (timing, percentiles and
the progress line), :mod:`bench.report` (the table, the targets and the JSON file) and
:mod:`bench.runner` (the command line). See ``bench/README.md``.
"""

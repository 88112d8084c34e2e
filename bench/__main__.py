"""``python -m bench``: run the benchmarks (see :mod:`bench.runner`)."""

from bench.runner import main

if __name__ == "__main__":  # not when a spawned worker process (visibility's node B) imports it
    raise SystemExit(main())

"""Pet Portal benchmarks: `python -m bench` (or `make bench`) from the repository root.

Every figure is reported as a ratio against a baseline measured in the same run, plus the raw
numbers; results go to `bench/results/<name>.json`. See bench/README.md.
"""

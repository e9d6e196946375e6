"""Suites and run folders: the result-row schema, suite files, the runner, reading, merging and
baselines."""

"""Benchmarks of the reminder pipeline, each side by side with a baseline from the same run.

Run `python -m bench --help`. BENCHMARKS.md at the top of the repository explains the
scenarios, the figures of the last full run and what they mean.
"""

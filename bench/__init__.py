"""ConvLens benchmark: `python -m bench` prints every performance figure in one table.

Each ``bench/bench_*.py`` module exposes ``run() -> list[Row]``; a row is one measured figure
beside the plain baseline it is compared with, from the same run.
"""

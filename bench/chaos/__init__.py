"""Chaos harness: faults injected into a running `waypost up`, counted from outside.

`python -m bench.chaos --help` lists the scenarios; README.md defines every count.
"""

"""Emitters: pure functions from the IR to `{relative path: file text}`.

Writing, `--check` and watch are only different sinks for the same dict (see `generate.py`).
"""

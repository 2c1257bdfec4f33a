"""asv benchmarks for convlab: every public function timed next to its anchors.

The modules here are also imported by ``benchmarks/compare.py``, which runs the very same
``time_*`` methods and prints convlab / anchor ratios as a table (one source of truth).
"""

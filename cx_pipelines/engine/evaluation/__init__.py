"""The two evaluators: ``batch`` (a whole population, column-wise) and ``record`` (one
customer), with identical results; ``shared`` holds what both use so they cannot drift.
"""

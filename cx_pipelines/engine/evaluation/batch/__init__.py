"""Batch evaluator: a whole population, customers and accounts in one vectorised pass."""

"""The strategy language: its data model, errors, JSON Schema building blocks, YAML source
with line numbers, structural checks and the safe expression language (``expressions/``).

Nothing here evaluates a strategy or knows a mechanism kind's behaviour; the packages
above it (``mechanisms``, ``loading``, ``evaluation``) build on these names.
"""

"""Loading a strategy file: schema check, names and types, dataflow, golden cases.

``compile`` turns a validated YAML document into a ``language.model.Strategy``
with the sections in ``flow`` (dictionary, segments, routing), ``mechanisms`` (each kind's
own ``load`` from the registry), ``offers`` (treatments, arbitration, policies) and
``checks`` (whole-strategy cross-checks); ``golden`` runs the golden cases.
"""

"""The vectorised repeat detection agrees with the plain row-by-row rule (property test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cx_pipelines.feedback.results import repeats


def reference(
    contacts: list[str], signatures: list[str], recorded: dict[str, str]
) -> tuple[list[bool], list[bool]]:
    """Row by row: the first outcome of a contact stands; a repeat equals it or conflicts."""
    seen = dict(recorded)
    duplicate, conflict = [], []
    for contact, signature in zip(contacts, signatures, strict=True):
        earlier = seen.get(contact)
        if earlier is None:
            seen[contact] = signature
        duplicate.append(earlier is not None and earlier == signature)
        conflict.append(earlier is not None and earlier != signature)
    return duplicate, conflict


rows = st.lists(st.tuples(st.sampled_from("abcde"), st.sampled_from("xyz")), max_size=40)


@settings(max_examples=200, deadline=None)
@given(rows=rows, recorded=st.dictionaries(st.sampled_from("abcdef"), st.sampled_from("xyz")))
def test_repeats_match_the_row_by_row_rule(rows: list[tuple[str, str]], recorded: dict) -> None:
    contacts = [contact for contact, _ in rows]
    signatures = [signature for _, signature in rows]
    recorded_series = pd.Series(list(recorded.values()), index=list(recorded), dtype=object)

    duplicate, conflict = repeats(pd.Series(contacts, dtype=object), signatures, recorded_series)

    expected_duplicate, expected_conflict = reference(contacts, signatures, recorded)
    assert duplicate.tolist() == expected_duplicate
    assert conflict.tolist() == expected_conflict
    assert not np.any(duplicate & conflict)

"""Bundled real data sets: the CDNOW transaction log of Fader and Hardie."""

from __future__ import annotations

import importlib.resources

import pandas as pd

_PACKAGE = "cx_pipelines"


def read_cdnow(*, master: bool = False) -> pd.DataFrame:
    """The CDNOW transaction log: one row per purchase, as in the BTYD papers.

    ``master=False`` gives the 1/10 sample of 2,357 customers (``customer_id`` is the
    sample id, 1..2357); ``master=True`` gives all 23,570 customers. Columns:
    ``customer_id`` (int), ``date`` (datetime64), ``cds`` (int), ``dollar_value`` (float).
    Several rows may share a customer and day; merge them when fitting BTYD models.
    """
    name = "CDNOW_master.txt" if master else "CDNOW_sample.txt"
    resource = importlib.resources.files(_PACKAGE) / "data" / "cdnow" / name
    with resource.open("r") as handle:
        if master:
            frame = pd.read_csv(
                handle,
                sep=r"\s+",
                skiprows=1,
                header=None,
                names=["customer_id", "date", "cds", "dollar_value"],
                dtype={
                    "customer_id": "int64",
                    "date": "str",
                    "cds": "int64",
                    "dollar_value": "float64",
                },
            )
        else:
            frame = pd.read_csv(
                handle,
                sep=r"\s+",
                header=None,
                names=["master_id", "customer_id", "date", "cds", "dollar_value"],
                dtype={
                    "master_id": "int64",
                    "customer_id": "int64",
                    "date": "str",
                    "cds": "int64",
                    "dollar_value": "float64",
                },
            ).drop(columns="master_id")
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame[["customer_id", "date", "cds", "dollar_value"]]

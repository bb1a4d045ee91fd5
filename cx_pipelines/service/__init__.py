"""The real-time decision service (SPEC S7): ``cx serve``.

FastAPI + uvicorn. It answers a channel's request with the customer intelligence record
(:mod:`cx_pipelines.intelligence`) from the active strategy and the champion models'
scores in the online store (:mod:`cx_pipelines.online_store`), logs every decision
durably (:mod:`.decision_log`) and shares contact counters with the batch side. The
application lives in :mod:`.app` (imported on demand: the decision log and settings are
usable without FastAPI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(settings=None) -> FastAPI:
    """The FastAPI application (settings from the environment unless given)."""
    from cx_pipelines.service.app import create_app as build

    return build(settings)


def run(*, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve with uvicorn (``workers`` processes)."""
    from cx_pipelines.service.app import run as serve

    serve(host=host, port=port, workers=workers)

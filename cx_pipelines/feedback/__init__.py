"""Interaction results coming back (plain Python; the Dagster layer is defs/feedback).

Result files dropped into ``$CX_HOME/inbox/`` and the ``offer_responses`` source table are
validated like ingestion, matched to the decision that caused them (batch exports and the
service's decision log), de-duplicated and quarantined with reasons, and accumulated in the
warehouse table ``interaction_results`` that training appends to ``offer_history``.
"""

from cx_pipelines.feedback.decision_log import DecisionLog, contact_key, load_decision_log
from cx_pipelines.feedback.inbox import RESULT_COLUMNS, InboxFile, inbox_dir, pending_files
from cx_pipelines.feedback.processing import (
    QUARANTINE_TABLE,
    RESULTS_TABLE,
    FeedbackRun,
    process_results,
)
from cx_pipelines.feedback.results import RESULTS_DTYPES, ReconciliationError, match_results

__all__ = [
    "QUARANTINE_TABLE",
    "RESULTS_DTYPES",
    "RESULTS_TABLE",
    "RESULT_COLUMNS",
    "DecisionLog",
    "FeedbackRun",
    "InboxFile",
    "ReconciliationError",
    "contact_key",
    "inbox_dir",
    "load_decision_log",
    "match_results",
    "pending_files",
    "process_results",
]

"""Request bodies of the decision service (pydantic): what a channel may send."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CUSTOMER_ID = Field(
    min_length=1,
    max_length=64,
    pattern=r"^[A-Za-z0-9_.:\-]+$",
    description="the customer's id in the bank's systems",
)


class DecisionRequest(BaseModel):
    """A channel asks: what now, for this customer?"""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = CUSTOMER_ID
    channel: str = Field(min_length=1, max_length=40, description="one of the strategy's channels")
    interaction_type: str | None = Field(
        default=None, max_length=40, description="default: the event's interaction type"
    )
    event: str | None = Field(
        default=None, max_length=40, description="strategy event (default: the service's event)"
    )
    context: dict[str, str | float | bool | None] = Field(
        default_factory=dict,
        max_length=50,
        description="values for input attributes the strategy declares (event and context)",
    )
    record_contact: bool = Field(
        default=True, description="count the presented treatment in the contact policy"
    )
    include_trace: bool = Field(default=True, description="return the reason trace")


class BatchDecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: list[DecisionRequest] = Field(min_length=1)
    include_trace: bool = Field(default=True, description="reason traces in the answer and log")


class ResponseReport(BaseModel):
    """The outcome of a decision the service made (``contact_id`` = ``decision_id``)."""

    model_config = ConfigDict(extra="forbid")

    decision_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9\-]+$")
    customer_id: str = CUSTOMER_ID
    outcome: Literal["responded", "not_responded", "declined"]
    revenue: float = Field(default=0.0, ge=0, le=1e9)
    responded_at: str | None = Field(
        default=None, max_length=40, description="ISO timestamp (default: now)"
    )

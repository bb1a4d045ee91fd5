"""Channel interactions (sessions and journeys) and inbound events of one block.

A customer opens sessions as a Poisson process over its time in the world; sessions
after its dropout are mostly gone (a customer who stopped buying rarely logs in). A
session is a journey of one kind, on a channel drawn from the customer type's
preferences among the channels that carry that kind:

- browse: login (web, app) → product_view → application_start → application_complete
  or application_abandon, with abandonment higher on the app than in the branch;
- service: login (web, app) → service_request → complaint (more often when delinquent);
- offer: offer_presented → offer_accepted (with the true treated probability) or
  offer_declined.

Every treated campaign contact also shows as offer_presented and, when the customer
responded, offer_accepted; a control customer who responded shows an
application_complete. Inbound events are a sample of a bank's event feed: the latest
statement (cycle_date) of every open card, a late_payment for every delinquent
account, and customer-level credit_request, address_change and rare bankruptcy events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cx_pipelines.source_schema import (
    CUSTOMER_TYPES,
    EVENT_TYPES,
    INTERACTION_CHANNELS,
    INTERACTION_TYPES,
    OFFER_CHANNELS,
    OFFER_TYPES,
    PRODUCT_TYPES,
)
from cx_pipelines.world import population as pop
from cx_pipelines.world.customers import CREDIT_CARD, Accounts, Customers, _pick
from cx_pipelines.world.offers import Campaign, OfferHistory, Response

SECONDS_PER_WEEK = 7 * 86_400
NO_PRODUCT = -1


@dataclass
class Interactions:
    owner: np.ndarray
    session: np.ndarray  # session number within the block
    week: np.ndarray
    channel: np.ndarray  # index into INTERACTION_CHANNELS
    interaction_type: np.ndarray  # index into INTERACTION_TYPES
    product: np.ndarray  # index into PRODUCT_TYPES, −1 for none
    sessions: int


@dataclass
class Events:
    owner: np.ndarray
    account: np.ndarray  # position in the block's accounts, −1 for customer-level events
    event_type: np.ndarray  # index into EVENT_TYPES
    week: np.ndarray
    amount: np.ndarray  # NaN when not applicable


class _Steps:
    """Collects journey steps as arrays, then orders them by customer and time."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, owner, session, week, channel, kind: str, product) -> None:
        size = len(owner)
        self.parts.append(
            (
                owner,
                session,
                week,
                channel,
                np.full(size, INTERACTION_TYPES.index(kind)),
                np.broadcast_to(product, (size,)),
            )
        )

    def build(self, sessions: int) -> Interactions:
        owner, session, week, channel, kind, product = (
            np.concatenate(column) for column in zip(*self.parts, strict=True)
        )
        order = np.lexsort((week, owner))
        return Interactions(
            owner[order],
            session[order],
            week[order],
            channel[order],
            kind[order],
            product[order].astype(np.int64),
            sessions,
        )


def _step_later(rng: np.random.Generator, week: np.ndarray) -> np.ndarray:
    return week + rng.uniform(20, 240, len(week)) / SECONDS_PER_WEEK


def draw_interactions(
    rng: np.random.Generator,
    customers: Customers,
    accounts: Accounts,
    response: Response,
    *,
    dropped_out_week: np.ndarray,
    offers: OfferHistory,
    campaigns: list[Campaign],
) -> Interactions:
    """Draw sessions and their journeys, plus the interactions of campaign contacts."""
    count = len(customers)
    start = np.maximum(customers.joined_week, 0.0)
    share_of_world = (pop.WORLD_WEEKS - start) / pop.WORLD_WEEKS
    sessions_per_customer = rng.poisson(pop.SESSIONS_PER_CUSTOMER * share_of_world)
    owner = np.repeat(np.arange(count), sessions_per_customer)
    week = start[owner] + rng.random(len(owner)) * (pop.WORLD_WEEKS - start[owner])
    after_dropout = week > np.nan_to_num(dropped_out_week, nan=np.inf)[owner]
    kept = ~after_dropout | (rng.random(len(owner)) < pop.SESSIONS_KEPT_AFTER_DROPOUT)
    owner, week = owner[kept], week[kept]
    session = np.arange(len(owner))

    kind = rng.choice(len(pop.SESSION_KINDS), size=len(owner), p=pop.SESSION_KIND_SHARES)
    preference = np.array([pop.SESSION_CHANNEL_PREFERENCE[t] for t in CUSTOMER_TYPES])
    logits = preference[customers.customer_type[owner]].copy()
    for number, name in enumerate(pop.SESSION_KINDS):
        blocked = [c not in pop.SESSION_KIND_CHANNELS[name] for c in INTERACTION_CHANNELS]
        logits[np.ix_(kind == number, np.array(blocked))] = -np.inf
    channel = _pick(rng, logits)
    digital = np.isin(channel, [INTERACTION_CHANNELS.index(c) for c in ("web", "mobile_app")])

    steps = _Steps()
    browse, service, offer = (kind == number for number in range(3))
    logged_in = (browse | service) & digital
    steps.add(
        owner[logged_in],
        session[logged_in],
        week[logged_in],
        channel[logged_in],
        "login",
        NO_PRODUCT,
    )
    week = np.where(logged_in, _step_later(rng, week), week)

    # browse: what the customer looks at is mostly what it does not hold yet
    held = accounts.holdings(count)
    product_logits = np.where(held[owner], -1.0, 0.0)
    product = _pick(rng, product_logits)
    viewed = browse & (~digital | (rng.random(len(owner)) < pop.JOURNEY["view_after_login"]))
    steps.add(
        owner[viewed],
        session[viewed],
        week[viewed],
        channel[viewed],
        "product_view",
        product[viewed],
    )
    week = _step_later(rng, week)
    started = viewed & (rng.random(len(owner)) < pop.JOURNEY["start_after_view"])
    steps.add(
        owner[started],
        session[started],
        week[started],
        channel[started],
        "application_start",
        product[started],
    )
    week = _step_later(rng, week)
    complete_rate = np.zeros(len(INTERACTION_CHANNELS))
    for name, rate in pop.JOURNEY["complete_by_channel"].items():
        complete_rate[INTERACTION_CHANNELS.index(name)] = rate
    completed = started & (rng.random(len(owner)) < complete_rate[channel])
    abandoned = started & ~completed
    for mask, name in ((completed, "application_complete"), (abandoned, "application_abandon")):
        steps.add(owner[mask], session[mask], week[mask], channel[mask], name, product[mask])

    # service: a request, sometimes a complaint
    delinquent = np.zeros(count, dtype=bool)
    delinquent[accounts.owner[accounts.days_past_due > 0]] = True
    service_product = np.where(rng.random(len(owner)) < 0.5, product, NO_PRODUCT)
    steps.add(
        owner[service],
        session[service],
        week[service],
        channel[service],
        "service_request",
        service_product[service],
    )
    complaint_rate = np.where(
        delinquent[owner],
        pop.JOURNEY["complaint_if_delinquent"],
        pop.JOURNEY["complaint_after_service"],
    )
    complained = service & (rng.random(len(owner)) < complaint_rate)
    steps.add(
        owner[complained],
        session[complained],
        _step_later(rng, week[complained]),
        channel[complained],
        "complaint",
        service_product[complained],
    )

    # offer: presented in the session, answered with the true treated probability
    offer_type = rng.integers(0, len(OFFER_TYPES), len(owner))
    offer_product = np.array(
        [PRODUCT_TYPES.index(pop.OFFER_PRODUCT[name]) for name in OFFER_TYPES]
    )[offer_type]
    lane = np.array(
        [OFFER_CHANNELS.index(c) if c in OFFER_CHANNELS else 0 for c in INTERACTION_CHANNELS]
    )[channel]
    accept_probability = response.p_treated[owner, offer_type, lane]
    _present_and_answer(
        rng, steps, offer, owner, session, week, channel, offer_product, accept_probability
    )

    # campaign contacts
    contact = np.arange(len(offers.owner)) + len(owner)
    campaign_channel = np.array(
        [INTERACTION_CHANNELS.index(c.channel) for c in campaigns], dtype=np.int64
    )[offers.campaign]
    campaign_product = np.array(
        [PRODUCT_TYPES.index(pop.OFFER_PRODUCT[c.offer_type]) for c in campaigns], dtype=np.int64
    )[offers.campaign]
    treated = offers.treated
    accepted = treated & offers.responded
    _present_and_answer(
        rng,
        steps,
        treated,
        offers.owner,
        contact,
        offers.week,
        campaign_channel,
        campaign_product,
        accepted.astype(float),
    )
    organic = ~treated & offers.responded
    organic_week = offers.week + rng.uniform(1, 28, len(offers.owner)) / 7
    steps.add(
        offers.owner[organic],
        contact[organic],
        organic_week[organic],
        np.full(organic.sum(), INTERACTION_CHANNELS.index("web")),
        "application_complete",
        campaign_product[organic],
    )
    return steps.build(sessions=len(owner) + len(offers.owner))


def _present_and_answer(rng, steps, mask, owner, session, week, channel, product, accept) -> None:
    steps.add(
        owner[mask], session[mask], week[mask], channel[mask], "offer_presented", product[mask]
    )
    answer_week = week + rng.uniform(0.5, 48, len(owner)) / (7 * 24)
    accepted = mask & (rng.random(len(owner)) < accept)
    declined = mask & ~accepted & (rng.random(len(owner)) < pop.JOURNEY["decline_if_not_accepted"])
    for answer, name in ((accepted, "offer_accepted"), (declined, "offer_declined")):
        steps.add(
            owner[answer],
            session[answer],
            answer_week[answer],
            channel[answer],
            name,
            product[answer],
        )


def draw_inbound_events(
    rng: np.random.Generator, customers: Customers, accounts: Accounts
) -> Events:
    """Draw the sample of inbound events described in the module docstring."""
    parts = []
    end = pop.WORLD_WEEKS
    cards = np.flatnonzero((accounts.product == CREDIT_CARD) & ~accounts.closed)
    statement_day = rng.integers(1, 29, len(cards))  # of September 2026, the last month
    statement_week = (pop.LAST_MONTH_DAY + statement_day - 1) / 7
    parts.append(
        (accounts.owner[cards], cards, "cycle_date", statement_week, accounts.balance[cards])
    )

    late = np.flatnonzero(accounts.days_past_due > 0)
    late_week = (pop.WORLD_DAYS - accounts.days_past_due[late]) / 7  # the missed due date
    missed = np.round(np.maximum(25.0, 0.03 * accounts.balance[late]), 2)
    parts.append((accounts.owner[late], late, "late_payment", late_week, missed))

    count = len(customers)
    start = np.maximum(customers.joined_week, 0.0)
    card_of = accounts.spending_account(count, CREDIT_CARD)
    deeply_late = np.zeros(count, dtype=bool)
    deeply_late[accounts.owner[accounts.days_past_due >= 90]] = True
    for name, rate in pop.EVENT_RATES.items():
        rates = np.where(deeply_late, min(1.0, rate * 25), rate) if name == "bankruptcy" else rate
        who = np.flatnonzero(rng.random(count) < rates)
        week = start[who] + rng.random(len(who)) * (end - start[who])
        amount = np.full(len(who), np.nan)
        account = np.full(len(who), -1)
        if name == "credit_request":
            amount = np.round(customers.annual_income[who] * rng.uniform(0.05, 0.3, len(who)), -2)
            account = card_of[who]
        parts.append((who, account, name, week, amount))

    owner = np.concatenate([part[0] for part in parts])
    account = np.concatenate([part[1] for part in parts])
    event_type = np.concatenate(
        [np.full(len(part[0]), EVENT_TYPES.index(part[2])) for part in parts]
    )
    week = np.concatenate([part[3] for part in parts])
    amount = np.concatenate([part[4] for part in parts])
    order = np.lexsort((week, owner))
    return Events(owner[order], account[order], event_type[order], week[order], amount[order])

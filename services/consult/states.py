"""The consult state machine (docs/consult.md "States"): pure data and pure functions, no I/O.

```
draft ──submit──► submitted ──accept──► accepted ──schedule──► scheduled ──start_session──► in_session
submitted ──decline(reason)──► declined
draft, submitted, accepted, scheduled ──cancel(reason)──► cancelled
accepted, scheduled, in_session ──write_opinion──► opinion_written ──sign──► signed ──close──► closed
```
``reassign`` (submitted, accepted, scheduled), ``reschedule`` (scheduled), ``acknowledge`` (signed) and
``write_opinion`` on a written (unsigned) opinion keep the status; ``end_session`` returns an in-session consult
to where it was before the session (accepted or scheduled) and leaves a consult whose opinion was written
during the session as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import Conflict

STATUSES = ("draft", "submitted", "accepted", "declined", "scheduled", "in_session", "opinion_written", "signed",
            "closed", "cancelled")
FINAL = frozenset({"declined", "closed", "cancelled"})
# Consults whose deadlines run (overdue detection).
OPEN = frozenset({"submitted", "accepted", "scheduled", "in_session"})
# The caller's capacities (services/consult/access.py ``sides``): requesting side, target side specialist,
# the consultant, and participant roles.
REQUESTING, TARGET, CONSULTANT = "requesting", "target", "consultant"
PARTICIPANTS = frozenset({"requester", "consultant", "invitee"})


@dataclass(frozen=True)
class Move:
    sources: frozenset[str]
    target: str | None  # None: the status stays (or, for end_session, returns; see resolve_target)
    who: frozenset[str]  # capacities allowed to take it (the platform always may)
    event: str


def _m(sources: str, target: str | None, who: set[str], event: str) -> Move:
    return Move(frozenset(sources.split()), target, frozenset(who), event)


MOVES: dict[str, Move] = {
    "submit": _m("draft", "submitted", {REQUESTING}, "consult.requested"),
    "accept": _m("submitted", "accepted", {TARGET, CONSULTANT}, "consult.accepted"),
    "decline": _m("submitted", "declined", {TARGET, CONSULTANT}, "consult.declined"),
    "cancel": _m("draft submitted accepted scheduled", "cancelled", {REQUESTING}, "consult.cancelled"),
    "reassign": _m("submitted accepted scheduled", None, {TARGET, CONSULTANT}, "consult.reassigned"),
    "schedule": _m("accepted", "scheduled", {REQUESTING, TARGET, CONSULTANT}, "consult.scheduled"),
    "reschedule": _m("scheduled", None, {REQUESTING, TARGET, CONSULTANT}, "consult.rescheduled"),
    "start_session": _m("accepted scheduled", "in_session", {REQUESTING, CONSULTANT, *PARTICIPANTS},
                        "consult.session_started"),
    "end_session": _m("in_session opinion_written signed", None, {REQUESTING, CONSULTANT, *PARTICIPANTS},
                      "consult.session_ended"),
    "write_opinion": _m("accepted scheduled in_session opinion_written", "opinion_written", {CONSULTANT},
                        "consult.opinion_written"),
    "sign": _m("opinion_written", "signed", {CONSULTANT}, "consult.opinion_signed"),
    "acknowledge": _m("signed", None, {REQUESTING}, "consult.opinion_acknowledged"),
    "close": _m("signed", "closed", {REQUESTING, CONSULTANT}, "consult.closed"),
}
ACTIONS = tuple(MOVES)


class IllegalTransition(Conflict):
    """409: the action is not allowed in the consult's current status (the detail names it)."""

    code = "illegal_transition"


def check(action: str, status: str) -> Move:
    """The move of ``action`` from ``status``; IllegalTransition (409, naming the status) otherwise."""
    move = MOVES.get(action)
    if move is None:
        raise ValueError(f"unknown consult action {action!r}")
    if status not in move.sources:
        raise IllegalTransition(f"cannot {action} a consult that is {status}; current state: {status}")
    return move


def resolve_target(action: str, status: str, before_session: str | None = None) -> str:
    """The status after ``action`` from ``status`` (already checked)."""
    move = MOVES[action]
    if action == "end_session":
        return (before_session or "accepted") if status == "in_session" else status
    return move.target or status


def allowed(status: str, capacities: set[str], *, system: bool = False) -> list[str]:
    """Actions whose source includes ``status`` and whose actors include one of ``capacities``."""
    return [a for a, m in MOVES.items() if status in m.sources and (system or m.who & capacities)]

"""The one table of flow action types this deployment runs: each type's option validator (from
:mod:`voipbin.flows.actions`, used when a flow or call is created) and its executor, side by side.

Validation stays in flows/ (the flow layer validates actions without knowing calls; ``POST /flows``
needs no call control) and this table pairs it with execution; an import-time check keeps the
two in step (a validated type that cannot run, or an executor for a type never validated, is a
programming error).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from voipbin.calls.actions import control, media
from voipbin.calls.actions.ai import ai_talk
from voipbin.calls.actions.base import Executor
from voipbin.calls.actions.conference import conference_join
from voipbin.calls.actions.connect import connect
from voipbin.flows import actions as validation


@dataclass(frozen=True, slots=True)
class ActionType:
    """One action type: ``validate(option, where) -> option`` (InvalidArgument naming ``where``),
    ``execute(run) -> stop``, and whether an inbound call must be answered before it runs."""

    name: str
    validate: Callable[[dict[str, Any], str], dict[str, Any]]
    execute: Executor
    needs_answer: bool = True


def _type(name: str, execute: Executor, *, needs_answer: bool = True) -> ActionType:
    return ActionType(name, validation.VALIDATORS[name], execute, needs_answer)


ACTIONS: dict[str, ActionType] = {t.name: t for t in (
    _type("answer", media.answer, needs_answer=False),
    _type("talk", media.talk),
    _type("play", media.play),
    _type("sleep", media.sleep, needs_answer=False),
    _type("echo", media.echo),
    _type("hangup", control.hangup, needs_answer=False),
    _type("transcribe_start", control.transcribe_start),
    _type("transcribe_stop", control.transcribe_stop),
    _type("digits_receive", control.digits_receive),
    _type("digits_send", control.digits_send),
    _type("goto", control.goto, needs_answer=False),
    _type("branch", control.branch, needs_answer=False),
    _type("connect", connect, needs_answer=False),
    _type("conference_join", conference_join),
    _type("confbridge_join", conference_join),
    _type("ai_talk", ai_talk),
)}

if set(ACTIONS) != set(validation.VALIDATORS):  # pragma: no cover - a programming error
    raise RuntimeError(f"action types validated but not run (or run but not validated): "
                       f"{sorted(set(ACTIONS) ^ set(validation.VALIDATORS))}")

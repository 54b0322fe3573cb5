"""The one table of action types: each validated type runs, each runner is validated; the
options the flow layer validates are the ones the executors read (issue 16)."""

from __future__ import annotations

import pytest

from voipbin.calls.actions.registry import ACTIONS
from voipbin.common.errors import InvalidArgument
from voipbin.flows import actions as validation
from voipbin.flows.addresses import destinations, source


def test_every_validated_type_has_an_executor_and_the_reverse() -> None:
    assert set(ACTIONS) == set(validation.VALIDATORS)
    for name, kind in ACTIONS.items():
        assert kind.validate is validation.VALIDATORS[name]
        assert name in validation.KNOWN_TYPES


def test_actions_that_run_before_the_answer() -> None:
    assert {n for n, k in ACTIONS.items() if not k.needs_answer} == {
        "answer", "branch", "connect", "goto", "hangup", "sleep"}


def test_connect_options_use_the_flow_layer_addresses() -> None:
    [action] = validation.normalize_actions([{"type": "connect", "option": {
        "source": {"type": "tel", "target": "+15551234567"},
        "destinations": [{"type": "sip", "target": "sip:bob@example.com"}]}}])
    assert action["option"]["destinations"] == [{"type": "sip", "target": "sip:bob@example.com", "target_name": "",
                                                 "name": "", "detail": ""}]
    assert action["option"]["source"]["target"] == "+15551234567"
    with pytest.raises(InvalidArgument) as err:
        validation.normalize_actions([{"type": "connect", "option": {"destinations": [{"type": "email"}]}}])
    assert err.value.field == "actions[0].option.destinations[0].type"


def test_addresses() -> None:
    assert source({"type": "sip", "target": "sip:a@example.com"})["type"] == "sip"
    with pytest.raises(InvalidArgument):
        destinations([])

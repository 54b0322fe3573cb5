"""Topic parsing, matching and NATS subject mapping."""

from __future__ import annotations

import pytest

from voipbin.events.model import Event
from voipbin.events.topics import InvalidTopic, TopicFilter, event_subject, parse_topic

C = "5e4a0680-804e-11ec-8477-2fea5968d85b"
CALL = "5371e9db-d035-4db6-a8d6-0994d33e744e"
EV = Event("call_created", C, "call", CALL, {"id": CALL})


@pytest.mark.parametrize("topic, matches", [
    (f"customer_id:{C}:call:{CALL}", True),
    (f"customer_id:{C}:call:*", True),
    (f"customer_id:{C}:call", True),
    (f"customer_id:{C}", True),
    (f"customer_id:{C}:*", True),
    (f"customer_id:{C}:*:{CALL}", True),
    (f"customer_id:{C}:call:other", False),
    (f"customer_id:{C}:cal", False),           # segment-wise, not a string prefix
    (f"customer_id:{C}:transcribe:*", False),
    (f"customer_id:{C[:-1]}0:call:*", False),
])
def test_customer_topics(topic: str, matches: bool) -> None:
    assert (parse_topic(topic).match(EV) == EV.topic) is matches


def test_agent_topics_match_events_naming_the_agent() -> None:
    scoped = Event("queuecall_created", C, "queuecall", "q1", {}, agent_ids=("a1", "a2"))
    assert parse_topic("agent_id:a2:queuecall").match(scoped) == "agent_id:a2:queuecall:q1"
    assert parse_topic("agent_id:a3:queuecall").match(scoped) is None
    assert parse_topic("agent_id:a1:queuecall").match(EV) is None
    assert parse_topic(f"customer_id:{C}:queuecall").match(scoped) == f"customer_id:{C}:queuecall:q1"


@pytest.mark.parametrize("bad", ["", "call", "customer_id", f"customer_id:{C}:call:{CALL}:x", "owner_id:x:call",
                                 "customer_id::call", f"customer_id:{C}::x", "customer_id:*:call", " customer_id:x",
                                 "customer_id:" + "x" * 600])
def test_invalid_topics(bad: str) -> None:
    with pytest.raises(InvalidTopic):
        parse_topic(bad)


def test_any_customer_only_where_allowed() -> None:
    f = parse_topic("customer_id:*:call", allow_any_scope_id=True)
    assert f.match(EV) == EV.topic


def test_str_round_trips() -> None:
    for text in (f"customer_id:{C}", f"customer_id:{C}:call", f"customer_id:{C}:call:{CALL}",
                 f"customer_id:{C}:*:{CALL}"):
        assert str(parse_topic(text)) == text
    assert str(parse_topic(f"customer_id:{C}:call:*")) == f"customer_id:{C}:call"


def test_nats_subjects() -> None:
    assert event_subject(EV) == f"voipbin.events.{C}.call.{CALL}"
    assert parse_topic(f"customer_id:{C}:call:{CALL}").subject() == f"voipbin.events.{C}.call.{CALL}"
    assert parse_topic(f"customer_id:{C}:call").subject() == f"voipbin.events.{C}.call.*"
    assert parse_topic(f"customer_id:{C}").subject() == f"voipbin.events.{C}.*.*"
    assert parse_topic("customer_id:*", allow_any_scope_id=True).subject() == "voipbin.events.>"
    assert parse_topic("customer_id:*:call", allow_any_scope_id=True).subject() == "voipbin.events.*.call.*"
    assert TopicFilter("agent_id", "a1", "queuecall").subject() == "voipbin.events.>"
    odd = Event("x_created", C, "x", "a.b c>*", {})
    assert event_subject(odd) == f"voipbin.events.{C}.x.a_b_c__"


def test_event_json_round_trip() -> None:
    e = Event("call_created", C, "call", CALL, {"id": CALL, "n": [1, {"k": "é"}]}, agent_ids=("a",))
    assert Event.from_json(e.to_json()) == e
    with pytest.raises(ValueError):
        Event.from_json(b'{"data": 1}')

"""The pod command mechanism (voipbin.pods.commands) on the in-memory bus: the local short-cut, a
command run on the holding pod, errors mapped to the same HTTP status, the deadline and a gone pod."""

from __future__ import annotations

import asyncio

import pytest

from voipbin.common.errors import FailedPrecondition, InvalidArgument, NotFound
from voipbin.events.memory import MemoryBus
from voipbin.pods.commands import Commands, PodUnavailable, RemoteError, command_subject


class Counter:
    """A command handler that records which pod ran it."""

    def __init__(self, pod: str) -> None:
        self.pod = pod
        self.runs: list[dict[str, object]] = []

    async def __call__(self, **args: object) -> dict[str, object]:
        self.runs.append(args)
        return {"ran_on": self.pod, **args}


async def _pods(bus: MemoryBus, *names: str, timeout_s: float = 5.0) -> list[Commands]:
    pods = [Commands(name, bus, timeout_s=timeout_s) for name in names]
    for pod in pods:
        await pod.start()
    return pods


async def test_a_command_for_this_pod_runs_here_without_the_bus() -> None:
    bus = MemoryBus()  # nothing serves on it: a request would fail
    pod = Commands("pod-a", bus)
    handler = Counter("pod-a")
    pod.register("calls.hangup", handler)
    assert await pod.run("pod-a", "calls.hangup", holds="call 1", call_id="1") == {"ran_on": "pod-a", "call_id": "1"}
    assert await pod.run("", "calls.hangup", holds="call 2", call_id="2") == {"ran_on": "pod-a", "call_id": "2"}
    assert handler.runs == [{"call_id": "1"}, {"call_id": "2"}]


async def test_without_a_shared_bus_every_command_runs_here() -> None:
    pod = Commands("pod-a", None)
    pod.register("speakings.say", Counter("pod-a"))
    assert not pod.routed
    assert (await pod.run("pod-b", "speakings.say", holds="speaking 1", text="hi"))["ran_on"] == "pod-a"


async def test_a_command_for_another_pod_runs_there() -> None:
    bus = MemoryBus()
    api, media = await _pods(bus, "pod-api", "pod-media")
    here, there = Counter("pod-api"), Counter("pod-media")
    api.register("speakings.say", here)
    media.register("speakings.say", there)
    result = await api.run("pod-media", "speakings.say", holds="speaking s1", speaking_id="s1", text="hello")
    assert result == {"ran_on": "pod-media", "speaking_id": "s1", "text": "hello"}
    assert here.runs == [] and there.runs == [{"speaking_id": "s1", "text": "hello"}]


@pytest.mark.parametrize(("error", "http_status", "status"), [
    (NotFound("call c1 not found", field="id"), 404, "NOT_FOUND"),
    (InvalidArgument("direction must be one of in, out, both", field="direction"), 400, "INVALID_ARGUMENT"),
    (FailedPrecondition("the call is not answered", field="id"), 409, "FAILED_PRECONDITION"),
])
async def test_an_error_on_the_holding_pod_keeps_its_status_message_and_field(
        error: Exception, http_status: int, status: str) -> None:
    bus = MemoryBus()
    api, media = await _pods(bus, "pod-api", "pod-media")

    async def fails(**args: object) -> None:
        raise error

    media.register("calls.mute", fails)
    with pytest.raises(RemoteError) as caught:
        await api.run("pod-media", "calls.mute", holds="call c1", call_id="c1")
    assert caught.value.http_status == http_status
    assert caught.value.status == status
    assert caught.value.message == str(error)
    assert caught.value.field == error.field  # type: ignore[attr-defined]


async def test_an_unexpected_failure_on_the_holding_pod_is_a_500() -> None:
    bus = MemoryBus()
    api, media = await _pods(bus, "pod-api", "pod-media")

    async def breaks(**args: object) -> None:
        raise KeyError("bug")

    media.register("calls.hangup", breaks)
    with pytest.raises(RemoteError) as caught:
        await api.run("pod-media", "calls.hangup", holds="call c1", call_id="c1")
    assert caught.value.http_status == 500 and caught.value.status == "INTERNAL"


async def test_a_gone_pod_is_a_503_naming_it_and_the_resource() -> None:
    bus = MemoryBus()
    (api,) = await _pods(bus, "pod-api")
    with pytest.raises(PodUnavailable) as caught:
        await api.run("pod-abc123", "calls.hangup", holds="call c1", call_id="c1")
    assert caught.value.http_status == 503
    assert caught.value.message == "pod pod-abc123 that holds call c1 is unavailable"


async def test_a_pod_that_stopped_serving_is_gone() -> None:
    bus = MemoryBus()
    api, media = await _pods(bus, "pod-api", "pod-media")
    media.register("calls.hangup", Counter("pod-media"))
    await media.stop()
    with pytest.raises(PodUnavailable):
        await api.run("pod-media", "calls.hangup", holds="call c1", call_id="c1")


async def test_a_pod_that_does_not_answer_within_the_deadline_is_a_503() -> None:
    bus = MemoryBus()
    api, media = await _pods(bus, "pod-api", "pod-media", timeout_s=0.2)
    never = asyncio.Event()
    started = asyncio.Event()

    async def hangs(**args: object) -> None:
        started.set()
        await never.wait()

    media.register("calls.hold", hangs)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(PodUnavailable, match="pod pod-media that holds call c1 is unavailable"):
        await api.run("pod-media", "calls.hold", holds="call c1", call_id="c1", on=True)
    assert started.is_set()
    assert loop.time() - began < 5  # bounded by the deadline, not by the handler


async def test_each_pod_serves_its_own_subject() -> None:
    assert command_subject("pod-a") == "voipbin.pods.pod-a.commands"
    bus = MemoryBus()
    a, b, c = await _pods(bus, "pod-a", "pod-b", "pod-c")
    for pod in (a, b, c):
        pod.register("whoami", Counter(pod.pod_id))
    assert [(await a.run(p, "whoami", holds=p))["ran_on"] for p in ("pod-b", "pod-c", "pod-a")] == [
        "pod-b", "pod-c", "pod-a"]


async def test_a_command_registered_with_its_own_deadline_may_take_longer() -> None:
    bus = MemoryBus()
    api, media = await _pods(bus, "pod-api", "pod-media", timeout_s=0.1)
    release = asyncio.Event()

    async def waits_for_the_network(**args: object) -> dict[str, object]:
        await release.wait()
        return {"done": True}

    for pod in (api, media):  # every pod registers the same commands
        pod.register("calls.delete", waits_for_the_network, timeout_s=5.0)
        pod.register("calls.hold", waits_for_the_network)
    asyncio.get_running_loop().call_later(0.3, release.set)  # the BYE's answer, after the default deadline
    assert await api.run("pod-media", "calls.delete", holds="call c1", call_id="c1") == {"done": True}
    release.clear()
    with pytest.raises(PodUnavailable):
        await api.run("pod-media", "calls.hold", holds="call c1", call_id="c1")

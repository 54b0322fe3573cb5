"""Media integration tests run on uvloop, the event loop of every server process (DESIGN.md)."""

import uvloop


def pytest_asyncio_loop_factories(config, item):
    return {"uvloop": uvloop.new_event_loop}

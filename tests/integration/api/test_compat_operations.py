"""Every upstream operation on the resources implemented here answers (README compatibility table).

The table in README.md is the one list of what is supported, partial or not planned; this test
checks it against the upstream spec (every operation on our resources is in it, nothing else) and
calls each operation not marked *not planned* against the app: it must reach a handler (any
status but 405, and no 404 for the route itself: a 404 must name the missing resource).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx

from tests_support.spec import SpecValidator

README = Path(__file__).resolve().parents[3] / "README.md"
ROW = re.compile(r"^\| (\w+) \|(.*)\|(.*)\|(.*)\|$")
OPERATION = re.compile(r"`(GET|POST|PUT|DELETE|PATCH) (/[^`\s]*)`")
PARAM = re.compile(r"\{[^}]+\}")


def compat_table() -> dict[str, dict[tuple[str, str], str]]:
    """``{resource: {(METHOD, path): "supported" | "partial" | "not planned"}}`` from README.md."""
    text = README.read_text().split("## Upstream API compatibility", 1)[1].split("\n## ", 1)[0]
    table: dict[str, dict[tuple[str, str], str]] = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match is None or match.group(1) == "resource":
            continue
        cells = dict(zip(("supported", "partial", "not planned"), match.groups()[1:], strict=True))
        table[match.group(1)] = {(m, p): kind for kind, cell in cells.items() for m, p in OPERATION.findall(cell)}
    return table


TABLE = compat_table()
ANSWERING = sorted((m, p) for ops in TABLE.values() for (m, p), kind in ops.items() if kind != "not planned")


def test_the_table_lists_exactly_the_upstream_operations_on_our_resources(spec: SpecValidator) -> None:
    assert len(TABLE) >= 14
    upstream = {(m, p) for m, p in spec.operations() if p.split("/")[1] in TABLE}
    listed = {op for ops in TABLE.values() for op in ops}
    assert listed == upstream, (sorted(upstream - listed), sorted(listed - upstream))


async def test_every_operation_not_marked_not_planned_answers(client: httpx.AsyncClient, admin_token: str) -> None:
    assert len(ANSWERING) >= 60
    failures = []
    for method, path in ANSWERING:
        url = "/v1.0" + PARAM.sub(str(uuid.uuid4()), path)
        body = {"json": {}} if method in ("POST", "PUT") else {}
        r = await client.request(method, url, params={"token": admin_token}, **body)
        routeless = r.status_code == 404 and r.json()["message"] == "Not Found"
        if r.status_code == 405 or r.status_code >= 500 or routeless:
            failures.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)

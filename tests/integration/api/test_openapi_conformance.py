"""The served ``/openapi.json`` describes the API as it answers: it is a valid OpenAPI 3.0.3 document
(security schemes, the error envelope, no 422, required inputs required, unset timestamps nullable), and
schemathesis, run against it with a bounded number of examples per operation, finds no failure.

The schemathesis run takes every default check but ``positive_data_acceptance``: business rules that a
schema cannot state (a source number the account owns, a call that is answered) make schema-valid requests
a 400/404/409, as documented. Requests are made with the admin's Bearer token; the checks also send them
without it (``ignored_auth``) and with data that breaks the schema (``negative_data_rejection``: a 400).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests_support.net import ADMIN_PASSWORD, ADMIN_USERNAME
from voipbin.config import Settings
from voipbin.store.migrate import upgrade

EXAMPLES_PER_OPERATION = 6  # x2 (valid and schema-breaking) x every operation: ~40 s; derandomized for CI


def _settings(tmp: Path) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp / 'voipbin.db'}"
    upgrade(url)
    return Settings(database_url=url, webhook_allow_private=False, webhook_worker=False, sip_port=0,  # type: ignore[call-arg]
                    _env_file=None)


async def _seed(settings: Settings) -> None:
    from voipbin.runtime import Runtime

    rt = Runtime(settings)
    await rt.seed_sandbox()
    await rt.engine.dispose()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """The app (its runtime started by schemathesis's ASGI client, in that client's loop) and a token."""
    from voipbin.api.app import create_app
    from voipbin.runtime import Runtime

    settings = _settings(tmp_path_factory.mktemp("openapi"))
    asyncio.run(_seed(settings))
    app = create_app(Runtime(settings), manage_runtime=True)
    try:
        with asgi.get_client(app) as client:
            r = client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
            assert r.status_code == 200, r.text
            yield app, r.json()["token"]
    finally:
        asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def document(served: tuple[Any, str]) -> dict[str, Any]:
    with asgi.get_client(served[0]) as client:
        return client.get("/openapi.json").json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def api_schema(served: tuple[Any, str]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", served[0])


def test_the_document_is_valid_openapi_303(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.0.3"
    validate(document)
    schemes = document["components"]["securitySchemes"]
    assert schemes["token"] == {**schemes["token"], "type": "apiKey", "in": "query", "name": "token"}
    assert schemes["accesskey"] == {**schemes["accesskey"], "type": "apiKey", "in": "query", "name": "accesskey"}
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    assert "bad `?token=` next to a valid `Authorization: Bearer`" in document["info"]["description"]


def test_operations_document_real_status_codes(document: dict[str, Any]) -> None:
    text = str(document)
    assert "'422'" not in text and "HTTPValidationError" not in text and "'null'" not in text
    for path, item in document["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert {"400", "500"} <= codes, (method, path)
            assert op["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"}
            names = {p["name"] for p in op.get("parameters", [])}
            assert not names & {"token", "accesskey"}, (method, path)
            if path.startswith("/v1.0/"):
                assert op["security"] and "401" in codes, (method, path)
    assert "403" in document["paths"]["/v1.0/extensions"]["post"]["responses"]
    assert "403" not in document["paths"]["/v1.0/extensions"]["get"]["responses"]


def test_required_inputs_are_required_and_unset_timestamps_nullable(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert set(schemas["SpeakingCreate"]["required"]) == {"reference_type", "reference_id"}
    assert set(schemas["TranscribeCreate"]["required"]) == {"reference_type", "reference_id", "language"}
    assert set(schemas["ExtensionCreate"]["required"]) == {"name", "detail", "extension", "password"}
    assert schemas["SpeakingCreate"]["properties"]["reference_id"] == {
        **schemas["SpeakingCreate"]["properties"]["reference_id"], "type": "string"}
    assert "nullable" not in schemas["SpeakingCreate"]["properties"]["reference_id"]
    tm = schemas["TtsManagerSpeaking"]["properties"]["tm_update"]
    assert tm["type"] == "string" and tm["nullable"] is True
    assert set(schemas["ErrorResponse"]["required"]) == {"error", "message"}


def test_the_api_conforms_to_its_document(api_schema: Any, served: tuple[Any, str]) -> None:
    """Every operation, schema-valid and schema-breaking examples, all checks but positive_data_acceptance."""
    headers = {"Authorization": f"Bearer {served[1]}"}
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 60
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

            try:
                run()
            except (Exception, FailureGroup) as exc:  # every failing operation, reported together
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}"[:2000])
    assert not failures, "\n\n".join(failures)

"""Validate response bodies against the upstream OpenAPI 3.0 spec in ../shared (never copied here).

OpenAPI 3.0 schema objects are close to JSON Schema; the differences handled here:
``nullable`` and ``format: date-time`` timestamps may be null (DESIGN.md: a moment that has
not happened is null), and ``$ref`` resolves inside the loaded document. Extra fields are allowed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def _relax(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _relax(v) for k, v in node.items() if not k.startswith("x-")}
        t = node.get("type")
        if isinstance(t, str) and (node.get("nullable") or node.get("format") == "date-time"):
            node["type"] = [t, "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        node.pop("nullable", None)
        node.pop("example", None)
        return node
    if isinstance(node, list):
        return [_relax(v) for v in node]
    return node


class SpecValidator:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.document = yaml.safe_load(path.read_text())
        self._relaxed = _relax(copy.deepcopy(self.document))
        uri = "urn:voipbin:openapi"
        self._uri = uri
        self._registry = Registry().with_resource(uri, Resource(contents=self._relaxed, specification=DRAFT202012))

    def schema(self, name: str) -> dict[str, Any]:
        return self._relaxed["components"]["schemas"][name]  # type: ignore[no-any-return]

    def validate(self, name: str, instance: Any) -> None:
        """Raise jsonschema.ValidationError when ``instance`` does not fit ``components.schemas[name]``."""
        if name not in self._relaxed["components"]["schemas"]:
            raise KeyError(f"no schema {name!r} in {self.path}")
        schema = {"$ref": f"{self._uri}#/components/schemas/{name}"}
        jsonschema.Draft202012Validator(schema, registry=self._registry).validate(instance)

    def operations(self) -> list[tuple[str, str]]:
        """Every ``(METHOD, path)`` of the spec (paths as written there, without the ``/v1.0`` server
        prefix), with the path items that live in ``paths/*.yaml`` files resolved."""
        out = []
        for path, item in self.document["paths"].items():
            if "$ref" in item:
                item = yaml.safe_load((self.path.parent / item["$ref"]).read_text())
            out += [(method.upper(), path) for method in item if method in ("get", "put", "post", "delete", "patch")]
        return out

    def validate_page(self, name: str, body: Any) -> None:
        """A list response: ``{"result": [<name>...], "next_page_token": str}``."""
        assert isinstance(body, dict) and set(body) >= {"result", "next_page_token"}, body
        assert isinstance(body["next_page_token"], str)
        for item in body["result"]:
            self.validate(name, item)

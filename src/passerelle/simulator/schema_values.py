"""Schema-valid example values for the simulator's tool calls."""

from __future__ import annotations

from typing import Any

_MAX_DEPTH = 6


def example_for(schema: Any, depth: int = 0) -> Any:
    """A value that validates against the JSON Schema ``schema`` (the common subset tools use)."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return example_for(schema[key][0], depth + 1)
    if isinstance(schema.get("allOf"), list) and schema["allOf"]:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                merged.update(part)
        return example_for(merged, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: example_for(sub, depth + 1) for name, sub in props.items() if isinstance(sub, dict)}
    if kind == "array":
        count = int(schema.get("minItems", 1) or 0)
        return [example_for(schema.get("items", {}), depth + 1) for _ in range(count)]
    if kind == "integer":
        return _bounded(schema, 1, int)
    if kind == "number":
        return _bounded(schema, 1.5, float)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema)


def _bounded(schema: dict[str, Any], default: float, cast: type) -> Any:
    value: float = default
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema and isinstance(schema["exclusiveMinimum"], (int, float)):
        value = max(value, schema["exclusiveMinimum"] + 1)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    return cast(value)


def _string(schema: dict[str, Any]) -> str:
    formats = {"date": "2026-01-31", "date-time": "2026-01-31T12:00:00Z", "email": "user@example.com",
               "uri": "https://example.com", "uuid": "123e4567-e89b-12d3-a456-426614174000"}
    text = formats.get(str(schema.get("format")), "example")
    min_length = int(schema.get("minLength", 0) or 0)
    if len(text) < min_length:
        text = text + "x" * (min_length - len(text))
    max_length = schema.get("maxLength")
    if isinstance(max_length, int):
        text = text[:max_length]
    return text

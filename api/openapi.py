"""OpenAPI 3 description of /api/v2, generated from api.spec and kernel.protocol."""

from __future__ import annotations

from typing import Any

from kernel import protocol

from .spec import ACTION_NAMES, ACTIONS, FIELD_DESCRIPTIONS


def _properties() -> dict[str, Any]:
    props: dict[str, Any] = {
        "key": {"type": "string", "description": "Your API key"},
        "action": {"type": "string", "enum": sorted(ACTION_NAMES)},
        "service": {"type": "string", "description": "Service ID"},
        "order": {"type": "string", "description": "Order ID"},
        "orders": {"type": "string", "description": f"Order IDs, comma-separated, up to {protocol.MAX_IDS}"},
        "refill": {"type": "string", "description": "Refill ID"},
        "refills": {"type": "string", "description": f"Refill IDs, comma-separated, up to {protocol.MAX_IDS}"},
    }
    for name, description in FIELD_DESCRIPTIONS.items():
        props.setdefault(name, {"type": "string", "description": description})
    return props


def openapi_document(*, server_url: str) -> dict[str, Any]:
    error = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    body_schema = {"type": "object", "properties": _properties(), "required": ["key", "action"]}
    description = "\n".join(f"- `{a.name}`: {a.title}" for a in ACTIONS)
    return {
        "openapi": "3.0.3",
        "info": {"title": "API v2", "version": "2", "description": f"One endpoint, the action chooses:\n{description}"},
        "servers": [{"url": server_url.rstrip("/")}],
        "paths": {
            "/api/v2": {
                "post": {
                    "operationId": "apiV2",
                    "summary": "Every API v2 action",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {"schema": body_schema},
                            "application/json": {"schema": body_schema},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Every application outcome, success or error",
                            "content": {
                                "application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array"}]}}
                            },
                        },
                        "429": {
                            "description": "Rate limited",
                            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                            "content": {"application/json": {"schema": error}},
                        },
                    },
                }
            }
        },
    }

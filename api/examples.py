"""Request examples in curl, PHP and Python, generated from api.spec."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from .spec import Action

SAMPLE_VALUES = {
    "key": "YOUR_API_KEY",
    "service": "1",
    "link": "https://www.instagram.com/example",
    "quantity": "100",
    "runs": "2",
    "interval": "30",
    "order": "23501",
    "orders": "23501,23502",
    "refill": "1",
    "refills": "1,2",
}


def _params(action: Action) -> dict[str, str]:
    params = {}
    for p in action.params:
        if p.name == "action":
            params["action"] = action.name
        elif p.required:
            params[p.name] = SAMPLE_VALUES.get(p.name, p.name)
    return params


def curl(action: Action, url: str) -> str:
    return f"curl -X POST {url} \\\n  -d '{urlencode(_params(action))}'"


def php(action: Action, url: str) -> str:
    params = ",\n".join(f"    '{k}' => '{v}'" for k, v in _params(action).items())
    return (
        "<?php\n"
        f"$ch = curl_init('{url}');\n"
        "curl_setopt($ch, CURLOPT_POST, 1);\n"
        f"curl_setopt($ch, CURLOPT_POSTFIELDS, http_build_query([\n{params}\n]));\n"
        "curl_setopt($ch, CURLOPT_RETURNTRANSFER, 1);\n"
        "$result = json_decode(curl_exec($ch));\n"
        "curl_close($ch);\n"
        "print_r($result);"
    )


def python(action: Action, url: str) -> str:
    params = json.dumps(_params(action), indent=4).replace("\n}", ",\n}") if _params(action) else "{}"
    return f"import requests\n\nreply = requests.post(\n    {url!r},\n    data={params},\n    timeout=30,\n)\nprint(reply.json())"


def response(action: Action) -> str:
    return json.dumps(action.example, indent=2)

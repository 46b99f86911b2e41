"""Routing under real upstream failures: simulator processes injecting faults on the wire."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.support.processes import Server, start_gateway, start_simulator

KEY = "sk-faults"
CONFIG = """
router: {{retries: 1, backoff_initial: 0.01, backoff_max: 0.05, breaker_failures: 100}}
providers:
  healthy: {{type: anthropic, api_key: k, base_url: "{healthy}"}}
  limited: {{type: anthropic, api_key: k, base_url: "{limited}"}}
  cut: {{type: anthropic, api_key: k, base_url: "{cut}"}}
  cut-openai: {{type: openai, api_key: k, base_url: "{cut}/v1"}}
  reset: {{type: openai, api_key: k, base_url: "{reset}/v1"}}
  malformed: {{type: anthropic, api_key: k, base_url: "{malformed}"}}
  overloaded: {{type: anthropic, api_key: k, base_url: "{overloaded}"}}
  slow: {{type: anthropic, api_key: k, base_url: "{slow}"}}
models:
  with-fallback:
    deployments:
      - {{provider: limited, model: m, name: primary}}
      - {{provider: reset, model: m, name: secondary, priority: 1}}
      - {{provider: healthy, model: m, name: last-resort, priority: 2}}
  cut-claude: {{deployments: [{{provider: cut, model: m}}]}}
  cut-gpt: {{deployments: [{{provider: cut-openai, model: m}}]}}
  reset-only: {{deployments: [{{provider: reset, model: m}}]}}
  malformed-only: {{deployments: [{{provider: malformed, model: m}}]}}
  overloaded-only: {{deployments: [{{provider: overloaded, model: m}}]}}
  slow-only: {{deployments: [{{provider: slow, model: m, timeout: 0.5}}]}}
keys: [{{name: app, key: {key}}}]
"""


@pytest.fixture(scope="module")
def faulty_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("faults")
    sims = {
        "healthy": start_simulator(tmp),
        "limited": start_simulator(tmp, "--rate-limit", "1", "--retry-after", "0"),
        "cut": start_simulator(tmp, "--stream-cut", "1"),
        "reset": start_simulator(tmp, "--connection-reset", "1"),
        "malformed": start_simulator(tmp, "--malformed", "1"),
        "overloaded": start_simulator(tmp, "--overloaded", "1"),
        "slow": start_simulator(tmp, "--timeout-rate", "1"),
    }
    gateway = start_gateway(tmp, CONFIG.format(key=KEY, **{k: s.url for k, s in sims.items()}))
    yield gateway
    gateway.stop()
    for sim in sims.values():
        sim.stop()


def post(gateway: Server, path: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(gateway.url + path, json=body, headers={"x-api-key": KEY}, timeout=30)


def test_retries_then_falls_back_across_providers(faulty_gateway: Server) -> None:
    response = post(faulty_gateway, "/v1/messages", {"model": "with-fallback", "max_tokens": 20,
                                                     "messages": [{"role": "user", "content": "still here"}]})
    assert response.status_code == 200, response.text
    assert response.json()["content"][0]["text"] == "still here"
    assert response.headers["x-passerelle-deployment"] == "last-resort"
    assert response.headers["x-passerelle-attempts"] == "5"  # 2 tries on each failing deployment, then success


def test_stream_cut_midway_ends_with_error_event(faulty_gateway: Server) -> None:
    client = anthropic.Anthropic(base_url=faulty_gateway.url, api_key=KEY, max_retries=0)
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info, client.messages.stream(model="cut-claude", max_tokens=50,
                                messages=[{"role": "user", "content": "a b c d e f g h i j"}]) as stream:
        for event in stream:
            seen.append(event.type)
    assert seen[0] == "message_start" and "message_stop" not in seen
    assert "upstream stream broke" in str(info.value)


def test_stream_cut_midway_openai_client(faulty_gateway: Server) -> None:
    client = openai.OpenAI(base_url=faulty_gateway.url + "/v1", api_key=KEY, max_retries=0)
    stream = client.chat.completions.create(model="cut-gpt", stream=True,
                                            messages=[{"role": "user", "content": "a b c d e f g h i j"}])
    text = ""
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert "a b c d e f g h i j".startswith(text)


def test_raw_stream_error_event_shape(faulty_gateway: Server) -> None:
    with httpx.stream("POST", faulty_gateway.url + "/v1/messages", headers={"x-api-key": KEY}, timeout=30,
                      json={"model": "cut-claude", "max_tokens": 50, "stream": True,
                            "messages": [{"role": "user", "content": "one two three four"}]}) as response:
        body = response.read().decode()
    assert response.status_code == 200
    assert body.startswith("event: message_start\n")
    assert body.rstrip().split("\n")[-2] == "event: error"
    assert '"type":"error","error":{"type":"api_error"' in body


@pytest.mark.parametrize(("model", "status", "anthropic_type"), [
    ("reset-only", 502, "api_error"),
    ("malformed-only", 502, "api_error"),
    ("overloaded-only", 529, "overloaded_error"),
    ("slow-only", 504, "timeout_error"),
])
def test_upstream_failures_in_caller_envelope(faulty_gateway: Server, model: str, status: int,
                                              anthropic_type: str) -> None:
    response = post(faulty_gateway, "/v1/messages", {"model": model, "max_tokens": 5,
                                                     "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == anthropic_type
    assert response.headers["request-id"] == body["request_id"]
    openai_response = post(faulty_gateway, "/v1/chat/completions",
                           {"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert openai_response.status_code == status
    assert set(openai_response.json()["error"]) == {"message", "type", "param", "code"}


def test_caller_timeout_header_shortens_attempts(faulty_gateway: Server) -> None:
    response = httpx.post(faulty_gateway.url + "/v1/messages", timeout=30,
                          headers={"x-api-key": KEY, "x-passerelle-timeout": "0.2"},
                          json={"model": "slow-only", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 504
    assert "within 0.2s" in response.json()["error"]["message"]

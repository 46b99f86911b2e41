from __future__ import annotations

from passerelle.config.schema import FaultConfig, SimulatorConfig
from passerelle.simulator.engine import SimulatorEngine, count_tokens, split_tokens


def body(**extra: object) -> dict[str, object]:
    return {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "Hello, world! 42"}], **extra}


def test_echo_verbatim_and_usage() -> None:
    message = SimulatorEngine(SimulatorConfig()).answer(body(), "m")  # type: ignore[arg-type]
    assert message["content"] == [{"type": "text", "text": "Hello, world! 42"}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["output_tokens"] == count_tokens("Hello, world! 42") == 5


def test_split_tokens_round_trips_text() -> None:
    text = "  leading, and trailing  \n"
    assert "".join(split_tokens(text)) == text


def test_max_tokens_and_stop_sequences() -> None:
    engine = SimulatorEngine(SimulatorConfig())
    cut = engine.answer(body(max_tokens=2), "m")  # type: ignore[arg-type]
    assert cut["content"][0]["text"] == "Hello," and cut["stop_reason"] == "max_tokens"
    stopped = engine.answer(body(stop_sequences=["world"]), "m")  # type: ignore[arg-type]
    assert stopped["content"][0]["text"] == "Hello, " and stopped["stop_sequence"] == "world"
    assert stopped["stop_reason"] == "stop_sequence"


def test_fixed_mode_length() -> None:
    message = SimulatorEngine(SimulatorConfig(mode="fixed", output_tokens=7)).answer(body(), "m")  # type: ignore[arg-type]
    assert message["usage"]["output_tokens"] == 7


def test_tool_calls_are_schema_valid_and_round_trip() -> None:
    tools = [{"name": "get_weather", "description": "weather",
              "input_schema": {"type": "object", "required": ["city", "days"],
                               "properties": {"city": {"type": "string"},
                                              "days": {"type": "integer", "minimum": 1, "maximum": 7},
                                              "unit": {"enum": ["c", "f"]}}}}]
    engine = SimulatorEngine(SimulatorConfig())
    first = engine.answer(body(tools=tools), "m")  # type: ignore[arg-type]
    assert first["stop_reason"] == "tool_use"
    call = first["content"][0]
    assert call["name"] == "get_weather" and call["input"] == {"city": "example", "days": 1, "unit": "c"}
    follow = body(tools=tools, messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "sunny"}]},
    ])
    second = engine.answer(follow, "m")  # type: ignore[arg-type]
    assert second["content"] == [{"type": "text", "text": "sunny"}] and second["stop_reason"] == "end_turn"


def test_stream_events_reassemble_the_message() -> None:
    engine = SimulatorEngine(SimulatorConfig(chunk_tokens=2))
    message = engine.answer(body(thinking={"type": "enabled", "budget_tokens": 1024}), "m")  # type: ignore[arg-type]
    events = list(engine.events(message))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    thinking = "".join(e["delta"].get("thinking", "") for e in events if e["type"] == "content_block_delta")
    signature = [e["delta"]["signature"] for e in events if e.get("delta", {}).get("type") == "signature_delta"]
    assert text == "Hello, world! 42"
    assert thinking == message["content"][0]["thinking"] and signature == [message["content"][0]["signature"]]


def test_fault_rates_are_applied() -> None:
    engine = SimulatorEngine(SimulatorConfig(seed=1, faults=FaultConfig(rate_limit=0.5)))
    picks = [engine.pick_fault() for _ in range(1000)]
    assert 400 < picks.count("rate_limit") < 600 and set(picks) == {"rate_limit", None}

"""BedrockProvider against a fake Bedrock Runtime, and the fake itself against botocore's client.

The fake verifies SigV4 signatures and validates bodies with botocore's service model; the
first tests prove its wire format by talking to it with the real bedrock-runtime client.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic.types
import botocore.config
import botocore.exceptions
import botocore.session
import msgspec
import pytest
from botocore.credentials import Credentials, RefreshableCredentials
from pydantic import TypeAdapter

from passerelle.canonical import ChatRequest, StreamEvent
from passerelle.config import ProviderConfig
from passerelle.errors import ErrorKind, GatewayError, UpstreamError
from passerelle.providers.base import Target
from passerelle.providers.bedrock import BedrockProvider, model_path
from passerelle.providers.http import HttpClient, UpstreamResponse
from tests.fakes.bedrock import (
    CONVERSE_ANSWER,
    CONVERSE_STREAM,
    CREDENTIALS,
    INVOKE_MESSAGE,
    INVOKE_STREAM,
    REGION,
    FakeBedrock,
    Fault,
    Stream,
    converse_frames,
    exception_frame,
    invoke_frames,
    validate_operation,
)
from tests.support.pools import until_idle

CLAUDE = "anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "amazon.nova-pro-v1:0"
PROFILE_ARN = ("arn:aws:bedrock:us-west-2:123456789012:application-inference-profile/"
               "us.anthropic.claude-sonnet-4-20250514-v1:0")
HELLO = [{"role": "user", "content": "Hello"}]
STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(anthropic.types.RawMessageStreamEvent)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-image").decode()


@pytest.fixture
async def fake() -> AsyncIterator[FakeBedrock]:
    server = FakeBedrock()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def make_provider(fake: FakeBedrock, http: HttpClient) -> Callable[..., BedrockProvider]:
    def make(**fields: Any) -> BedrockProvider:
        settings: dict[str, Any] = {
            "type": "bedrock", "base_url": fake.url, "region": REGION, "access_key_id": CREDENTIALS.access_key,
            "secret_access_key": CREDENTIALS.secret_key, "session_token": CREDENTIALS.token, **fields}
        return BedrockProvider("bedrock", ProviderConfig(**{k: v for k, v in settings.items() if v is not None}),
                               http)
    return make


def chat(stream: bool = False, **body: Any) -> ChatRequest:
    return ChatRequest(body={"model": "claude", "max_tokens": 256, "messages": HELLO, **body},  # type: ignore[typeddict-item]
                       dialect="anthropic", request_id="req_1", stream=stream)


def target(model: str = CLAUDE, **options: Any) -> Target:
    return Target(deployment="bedrock-1", model=model, options=options)


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def boto_client(url: str, creds: Credentials = CREDENTIALS, **config: Any) -> Any:
    return botocore.session.get_session().create_client(
        "bedrock-runtime", endpoint_url=url, region_name=REGION, aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key, aws_session_token=creds.token,
        config=botocore.config.Config(retries={"total_max_attempts": 1}, **config))


# ---------------------------------------------------------------- the fake, checked with botocore's client


async def test_fake_converse_answers_what_botocore_parses(fake: FakeBedrock) -> None:
    fake.reply({"output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": "Think.", "signature": "sig=="}}},
        {"reasoningContent": {"redactedContent": base64.b64encode(b"secret").decode()}},
        {"text": "Calling."},
        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]}},
        "stopReason": "tool_use", "metrics": {"latencyMs": 9},
        "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 17, "cacheReadInputTokens": 10}})
    client = boto_client(fake.url)
    result = await asyncio.to_thread(
        client.converse, modelId=PROFILE_ARN, system=[{"text": "Be brief."}, {"cachePoint": {"type": "default"}}],
        messages=[{"role": "user", "content": [{"text": "Hi"}, {"image": {"format": "png",
                                                                          "source": {"bytes": b"png-bytes"}}}]}],
        inferenceConfig={"maxTokens": 100}, toolConfig={"tools": [{"toolSpec": {
            "name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]})
    assert result["output"]["message"]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "Think.", "signature": "sig=="}}},
        {"reasoningContent": {"redactedContent": b"secret"}},
        {"text": "Calling."},
        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]
    assert result["stopReason"] == "tool_use"
    assert result["usage"] == {"inputTokens": 3, "outputTokens": 4, "totalTokens": 17, "cacheReadInputTokens": 10}
    (seen,) = fake.received
    assert seen.auth_error is None
    assert seen.model_id == PROFILE_ARN
    assert seen.raw_path == "/model/" + PROFILE_ARN.replace(":", "%3A").replace("/", "%2F") + "/converse"
    assert seen.json["messages"][0]["content"][1] == {
        "image": {"format": "png", "source": {"bytes": base64.b64encode(b"png-bytes").decode()}}}


async def test_fake_converse_stream_is_what_botocore_decodes(fake: FakeBedrock) -> None:
    fake.reply(Stream(converse_frames([
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Hm."}}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "s1"}}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\": 1}"}}}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        ("messageStop", {"stopReason": "tool_use"}),
        ("metadata", {"usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12,
                                "cacheWriteInputTokens": 2}, "metrics": {"latencyMs": 30}})])))
    client = boto_client(fake.url)

    def run() -> list[dict[str, Any]]:
        answer = client.converse_stream(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "Hi"}]}])
        return list(answer["stream"])

    events = await asyncio.to_thread(run)
    assert events == [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Hm."}}}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "s1"}}}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"contentBlockStart": {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}}},
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\": 1}"}}}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12,
                                "cacheWriteInputTokens": 2}, "metrics": {"latencyMs": 30}}}]


async def test_fake_invoke_and_invoke_stream_are_what_botocore_reads(fake: FakeBedrock) -> None:
    client = boto_client(fake.url)
    body = b'{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": [{"role": "user", ' \
           b'"content": "Hi"}]}'

    def run() -> tuple[bytes, str, list[bytes]]:
        whole = client.invoke_model(modelId=CLAUDE, body=body, contentType="application/json")
        streamed = client.invoke_model_with_response_stream(modelId=CLAUDE, body=body,
                                                            contentType="application/json")
        return whole["body"].read(), streamed["contentType"], [e["chunk"]["bytes"] for e in streamed["body"]]

    whole, content_type, chunks = await asyncio.to_thread(run)
    assert msgspec.json.decode(whole) == INVOKE_MESSAGE
    assert content_type == "application/json"
    assert [msgspec.json.decode(c) for c in chunks] == INVOKE_STREAM
    assert [r.json for r in fake.received] == [msgspec.json.decode(body)] * 2
    assert [r.auth_error for r in fake.received] == [None, None]


async def test_fake_errors_are_what_botocore_raises(fake: FakeBedrock) -> None:
    fake.reply(Fault(429, "ThrottlingException", "Too many requests, please wait before trying again."),
               Stream([*converse_frames(CONVERSE_STREAM[:2]), exception_frame("modelStreamErrorException", "boom")]))
    client = boto_client(fake.url)
    messages = [{"role": "user", "content": [{"text": "Hi"}]}]
    with pytest.raises(client.exceptions.ThrottlingException) as throttled:
        await asyncio.to_thread(client.converse, modelId=NOVA, messages=messages)
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert throttled.value.response["Error"]["Message"] == "Too many requests, please wait before trying again."

    def run_stream() -> list[Any]:
        return list(client.converse_stream(modelId=NOVA, messages=messages)["stream"])

    with pytest.raises(botocore.exceptions.EventStreamError) as broken:
        await asyncio.to_thread(run_stream)
    assert broken.value.response["Error"] == {"Code": "modelStreamErrorException", "Message": "boom"}


async def test_fake_rejects_bad_signatures_and_bodies_like_aws(fake: FakeBedrock) -> None:
    wrong = Credentials(CREDENTIALS.access_key, "not-the-secret", CREDENTIALS.token)
    messages = [{"role": "user", "content": [{"text": "Hi"}]}]
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        await asyncio.to_thread(boto_client(fake.url, wrong).converse, modelId=NOVA, messages=messages)
    assert denied.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # With client-side validation off, the fake's own check of the service model must catch it.
    loose = boto_client(fake.url, parameter_validation=False)
    with pytest.raises(loose.exceptions.ValidationException) as invalid:
        await asyncio.to_thread(loose.converse, modelId=NOVA, messages=[{"content": [{"text": "Hi"}]}],
                                inferenceConfig={"maxTokens": 0})
    assert "Invalid value for parameter inferenceConfig.maxTokens" in invalid.value.response["Error"]["Message"]
    assert "Missing required parameter in messages[0]: \"role\"" in invalid.value.response["Error"]["Message"]
    unknown = validate_operation("Converse", NOVA, {"messages": messages, "bogus": 1})
    assert unknown is not None and unknown.startswith('Unknown parameter in input: "bogus", must be one of: ')
    assert validate_operation("Converse", NOVA, {"messages": messages}) is None
    assert validate_operation("Converse", NOVA, {"messages": [{"role": "user", "content": [
        {"image": {"format": "png", "source": {"bytes": "not base64!"}}}]}]}) is not None
    assert [r.auth_error is None for r in fake.received] == [False, True]


async def test_fake_count_tokens_speaks_the_service_model(fake: FakeBedrock) -> None:
    client = boto_client(fake.url)
    answer = await asyncio.to_thread(client.count_tokens, modelId=CLAUDE, input={"invokeModel": {"body": b"{}"}})
    assert answer["inputTokens"] == 42
    assert fake.received[0].json == {"input": {"invokeModel": {"body": base64.b64encode(b"{}").decode()}}}


# ---------------------------------------------------------------- InvokeModel


async def test_invoke_complete_sends_claude_native_body(fake: FakeBedrock,
                                                        make_provider: Callable[..., BedrockProvider]) -> None:
    request = chat(system="Be brief.", temperature=0.5)
    request.anthropic_beta = ["interleaved-thinking-2025-05-14"]
    message = await make_provider().complete(request, target())
    assert message == INVOKE_MESSAGE
    (seen,) = fake.received
    assert seen.auth_error is None
    assert seen.raw_path == "/model/anthropic.claude-sonnet-4-20250514-v1%3A0/invoke"
    assert seen.json == {"max_tokens": 256, "messages": HELLO, "system": "Be brief.", "temperature": 0.5,
                         "anthropic_version": "bedrock-2023-05-31",
                         "anthropic_beta": ["interleaved-thinking-2025-05-14"]}
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["accept"] == "application/json"
    assert seen.headers["x-amz-security-token"] == CREDENTIALS.token
    assert re.fullmatch(rf"AWS4-HMAC-SHA256 Credential={CREDENTIALS.access_key}/\d{{8}}/{REGION}/bedrock/"
                        r"aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}",
                        seen.headers["authorization"])


async def test_invoke_stream_yields_anthropic_events(fake: FakeBedrock,
                                                     make_provider: Callable[..., BedrockProvider]) -> None:
    events = await collect(make_provider().stream(chat(stream=True), target()))
    assert events == [*INVOKE_STREAM[:-1], {"type": "message_stop"}]
    for event in events:
        STREAM_EVENT.validate_python(event)
    (seen,) = fake.received
    assert seen.raw_path == "/model/anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream"
    assert seen.json == {"max_tokens": 256, "messages": HELLO, "anthropic_version": "bedrock-2023-05-31"}
    assert seen.headers["x-amzn-bedrock-accept"] == "application/json"


@pytest.mark.parametrize("api", ["invoke", "converse"])
async def test_streams_in_a_row_share_one_connection(fake: FakeBedrock, http: HttpClient, api: str,
                                                     make_provider: Callable[..., BedrockProvider]) -> None:
    provider = make_provider()
    for _ in range(3):
        events = await collect(provider.stream(chat(stream=True), target(api=api)))
        assert events[-1] == {"type": "message_stop"}
        await until_idle(http)  # the last event ends the events; the body's end is read after it
    assert http.pool.opened == 1 and len(fake.received) == 3


async def test_invoke_stream_with_thinking_and_cache_usage(fake: FakeBedrock,
                                                           make_provider: Callable[..., BedrockProvider]) -> None:
    start = {**INVOKE_STREAM[0]["message"], "usage": {"input_tokens": 4, "cache_creation_input_tokens": 0,
                                                      "cache_read_input_tokens": 2048, "output_tokens": 1}}
    upstream: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Sum."}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQB=="}},
        {"type": "content_block_stop", "index": 0},
        {"type": "ping"},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "4"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 9}},
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 4}}]
    fake.reply(Stream(invoke_frames(upstream)))
    request = chat(stream=True, thinking={"type": "enabled", "budget_tokens": 1024})
    events = await collect(make_provider().stream(request, target()))
    assert events == [e for e in upstream[:-1] if e["type"] != "ping"] + [{"type": "message_stop"}]
    assert fake.received[0].json["thinking"] == {"type": "enabled", "budget_tokens": 1024}


async def test_invoke_stream_cut_before_message_stop_raises(fake: FakeBedrock,
                                                            make_provider: Callable[..., BedrockProvider]) -> None:
    fake.reply(Stream(invoke_frames(INVOKE_STREAM[:4])))
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as cut:
        async for event in make_provider().stream(chat(stream=True), target()):
            seen.append(event)
    assert seen == INVOKE_STREAM[:4]
    assert (cut.value.kind, cut.value.retryable) == (ErrorKind.BAD_GATEWAY, True)
    assert "ended before message_stop" in cut.value.message


# ---------------------------------------------------------------- Converse


async def test_converse_complete_translates_both_ways(fake: FakeBedrock,
                                                      make_provider: Callable[..., BedrockProvider]) -> None:
    fake.reply({"output": {"message": {"role": "assistant", "content": [{"text": "Bonjour"}]}},
                "stopReason": "stop_sequence", "additionalModelResponseFields": {"stop_sequence": "END"},
                "usage": {"inputTokens": 20, "outputTokens": 3, "totalTokens": 1523,
                          "cacheReadInputTokens": 1000, "cacheWriteInputTokens": 500},
                "metrics": {"latencyMs": 100}})
    request = chat(system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
                   stop_sequences=["END"], top_k=5, temperature=0.2,
                   messages=[{"role": "user", "content": [
                       {"type": "text", "text": "What is this?"},
                       {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}])
    message = await make_provider().complete(request, target(api="converse"))
    assert re.fullmatch(r"msg_bdrk_[0-9a-f]{24}", message["id"])
    assert message == {"id": message["id"], "type": "message", "role": "assistant", "model": CLAUDE,
                       "content": [{"type": "text", "text": "Bonjour"}], "stop_reason": "stop_sequence",
                       "stop_sequence": "END",
                       "usage": {"input_tokens": 20, "output_tokens": 3, "cache_read_input_tokens": 1000,
                                 "cache_creation_input_tokens": 500}}
    anthropic.types.Message.model_validate(message)
    (seen,) = fake.received
    assert seen.raw_path == "/model/anthropic.claude-sonnet-4-20250514-v1%3A0/converse"
    assert seen.json == {
        "messages": [{"role": "user", "content": [
            {"text": "What is this?"}, {"image": {"format": "png", "source": {"bytes": PNG}}}]}],
        "system": [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}],
        "inferenceConfig": {"maxTokens": 256, "temperature": 0.2, "stopSequences": ["END"]},
        "additionalModelRequestFields": {"top_k": 5},
        "additionalModelResponseFieldPaths": ["/stop_sequence"]}


async def test_default_api_is_converse_for_other_models(fake: FakeBedrock,
                                                        make_provider: Callable[..., BedrockProvider]) -> None:
    message = await make_provider().complete(chat(), target(NOVA))
    assert message["content"] == [{"type": "text", "text": "Hello!"}]
    assert message["usage"] == {"input_tokens": 12, "output_tokens": 6}
    assert fake.received[0].raw_path == "/model/amazon.nova-pro-v1%3A0/converse"
    assert fake.received[0].json == {"messages": [{"role": "user", "content": [{"text": "Hello"}]}],
                                     "inferenceConfig": {"maxTokens": 256}}
    with pytest.raises(UpstreamError) as bad:
        await make_provider().complete(chat(), target(api="chat"))
    assert (bad.value.kind, bad.value.retryable) == (ErrorKind.BAD_GATEWAY, False)


async def test_converse_tool_use_round_trip(fake: FakeBedrock,
                                            make_provider: Callable[..., BedrockProvider]) -> None:
    tools = [{"name": "get_weather", "description": "Weather for a city",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    fake.reply({"output": {"message": {"role": "assistant", "content": [
        {"text": "Let me check."},
        {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather",
                     "input": {"city": "Paris"}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42},
        "metrics": {"latencyMs": 80}})
    provider = make_provider()
    first = await provider.complete(chat(tools=tools, tool_choice={"type": "any"}), target(NOVA))
    assert first["stop_reason"] == "tool_use"
    assert first["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather",
         "input": {"city": "Paris"}}]
    history = [*HELLO, {"role": "assistant", "content": first["content"]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                                             "content": "18C and sunny"},
                                            {"type": "tool_result", "tool_use_id": "tooluse_2", "is_error": True,
                                             "content": [{"type": "text", "text": "unknown city"}]}]}]
    second = await provider.complete(chat(tools=tools, messages=history), target(NOVA))
    assert second["content"] == [{"type": "text", "text": "Hello!"}]
    tool_config = {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather for a city",
                                           "inputSchema": {"json": tools[0]["input_schema"]}}}]}
    assert fake.received[0].json["toolConfig"] == {**tool_config, "toolChoice": {"any": {}}}
    assert fake.received[1].json == {
        "messages": [
            {"role": "user", "content": [{"text": "Hello"}]},
            {"role": "assistant", "content": [
                {"text": "Let me check."},
                {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather",
                             "input": {"city": "Paris"}}}]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                                "content": [{"text": "18C and sunny"}]}},
                {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "unknown city"}],
                                "status": "error"}}]}],
        "inferenceConfig": {"maxTokens": 256}, "toolConfig": tool_config}


async def test_converse_stream_thinking_tools_and_cache_usage(fake: FakeBedrock,
                                                              make_provider: Callable[..., BedrockProvider]) -> None:
    fake.reply(Stream(converse_frames([
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Need weather."}}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "EqQBCkgI=="}}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("contentBlockStart", {"contentBlockIndex": 1,
                               "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\": "}}}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        ("messageStop", {"stopReason": "tool_use"}),
        ("metadata", {"usage": {"inputTokens": 25, "outputTokens": 40, "totalTokens": 2113,
                                "cacheReadInputTokens": 2048}, "metrics": {"latencyMs": 900}})])))
    request = chat(stream=True, thinking={"type": "enabled", "budget_tokens": 2000},
                   tools=[{"name": "get_weather", "input_schema": {"type": "object"}}])
    events = await collect(make_provider().stream(request, target(api="converse")))
    message_id = events[0]["message"]["id"]
    assert re.fullmatch(r"msg_bdrk_[0-9a-f]{24}", message_id)
    assert events == [
        {"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": CLAUDE, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Need weather."}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCkgI=="}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "tool_use", "id": "tooluse_1", "name": "get_weather", "input": {}}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"input_tokens": 25, "output_tokens": 40, "cache_read_input_tokens": 2048}},
        {"type": "message_stop"}]
    for event in events:
        STREAM_EVENT.validate_python(event)
    (seen,) = fake.received
    assert seen.raw_path == "/model/anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream"
    assert seen.json["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2000}}
    assert seen.json["toolConfig"] == {"tools": [{"toolSpec": {"name": "get_weather",
                                                               "inputSchema": {"json": {"type": "object"}}}}]}


async def test_converse_stream_cut_before_message_stop_raises(fake: FakeBedrock,
                                                              make_provider: Callable[..., BedrockProvider]) -> None:
    fake.reply(Stream(converse_frames(CONVERSE_STREAM[:3])))
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as cut:
        async for event in make_provider().stream(chat(stream=True), target(NOVA)):
            seen.append(event)
    assert [e["type"] for e in seen] == ["message_start", "content_block_start", "content_block_delta",
                                         "content_block_delta"]
    assert (cut.value.kind, cut.value.retryable) == (ErrorKind.BAD_GATEWAY, True)
    assert "before messageStop" in cut.value.message


@pytest.mark.parametrize(("exception", "kind"), [
    ("throttlingException", ErrorKind.RATE_LIMIT),
    ("modelStreamErrorException", ErrorKind.BAD_GATEWAY),
    ("serviceUnavailableException", ErrorKind.UNAVAILABLE),
    ("modelTimeoutException", ErrorKind.TIMEOUT),
])
@pytest.mark.parametrize("api", ["invoke", "converse"])
async def test_mid_stream_exception_event_raises(fake: FakeBedrock, make_provider: Callable[..., BedrockProvider],
                                                 exception: str, kind: ErrorKind, api: str) -> None:
    frames = invoke_frames(INVOKE_STREAM[:3]) if api == "invoke" else converse_frames(CONVERSE_STREAM[:2])
    fake.reply(Stream([*frames, exception_frame(exception, "The model stream failed.")]))
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as failed:
        async for event in make_provider().stream(chat(stream=True), target(api=api)):
            seen.append(event)
    assert len(seen) == 3
    assert (failed.value.kind, failed.value.retryable) == (kind, True)
    assert failed.value.message == f"Bedrock stream error {exception}: The model stream failed."


async def test_anthropic_error_event_in_invoke_stream(fake: FakeBedrock,
                                                      make_provider: Callable[..., BedrockProvider]) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake.reply(Stream(invoke_frames([*INVOKE_STREAM[:2], overloaded])))
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as failed:
        async for event in make_provider().stream(chat(stream=True), target()):
            seen.append(event)
    assert seen == INVOKE_STREAM[:2]
    assert (failed.value.kind, failed.value.retryable) == (ErrorKind.OVERLOADED, True)
    assert failed.value.message == "Bedrock stream error overloaded_error: Overloaded"


async def test_validation_exception_event_is_not_retryable(fake: FakeBedrock,
                                                           make_provider: Callable[..., BedrockProvider]) -> None:
    fake.reply(Stream([exception_frame("validationException", "Input is too long.")]))
    with pytest.raises(UpstreamError) as failed:
        await collect(make_provider().stream(chat(stream=True), target()))
    assert (failed.value.kind, failed.value.retryable) == (ErrorKind.INVALID_REQUEST, False)


# ---------------------------------------------------------------- HTTP errors, auth


@pytest.mark.parametrize("streaming", [False, True])
async def test_throttling_is_retryable_rate_limit(fake: FakeBedrock, make_provider: Callable[..., BedrockProvider],
                                                  streaming: bool) -> None:
    fake.reply(Fault(429, "ThrottlingException", "Too many requests, please wait before trying again."))
    provider = make_provider()
    with pytest.raises(UpstreamError) as throttled:
        if streaming:
            await anext(provider.stream(chat(stream=True), target(NOVA)))
        else:
            await provider.complete(chat(), target(NOVA))
    error = throttled.value
    assert (error.kind, error.retryable, error.upstream_status) == (ErrorKind.RATE_LIMIT, True, 429)
    assert error.message == "Too many requests, please wait before trying again."


@pytest.mark.parametrize(("status", "error_type", "kind", "retryable"), [
    (424, "ModelErrorException", ErrorKind.BAD_GATEWAY, True),
    (408, "ModelTimeoutException", ErrorKind.TIMEOUT, True),
    (503, "ServiceUnavailableException", ErrorKind.UNAVAILABLE, True),
    (500, "InternalServerException", ErrorKind.BAD_GATEWAY, True),
    (400, "ValidationException", ErrorKind.INVALID_REQUEST, False),
    (404, "ResourceNotFoundException", ErrorKind.NOT_FOUND, False),
])
@pytest.mark.parametrize("streaming", [False, True])
async def test_bedrock_errors_map_by_status(fake: FakeBedrock, make_provider: Callable[..., BedrockProvider],
                                            status: int, error_type: str, kind: ErrorKind, retryable: bool,
                                            streaming: bool) -> None:
    fake.reply(Fault(status, error_type, "upstream says no"))
    provider = make_provider()
    with pytest.raises(UpstreamError) as failed:
        if streaming:
            await anext(provider.stream(chat(stream=True), target()))
        else:
            await provider.complete(chat(), target())
    assert (failed.value.kind, failed.value.retryable, failed.value.upstream_status) == (kind, retryable, status)


async def test_bad_signature_is_not_retryable(fake: FakeBedrock,
                                              make_provider: Callable[..., BedrockProvider]) -> None:
    provider = make_provider(secret_access_key="wrong-secret")
    with pytest.raises(UpstreamError) as denied:
        await provider.complete(chat(), target())
    assert (denied.value.kind, denied.value.retryable, denied.value.upstream_status) == (
        ErrorKind.BAD_GATEWAY, False, 403)
    assert "signature we calculated does not match" in denied.value.message
    assert fake.received[0].auth_error is not None


async def test_arn_model_id_is_encoded_and_signed_like_botocore(
        fake: FakeBedrock, make_provider: Callable[..., BedrockProvider]) -> None:
    await make_provider().complete(chat(), target(PROFILE_ARN, api="converse"))
    client = boto_client(fake.url)
    await asyncio.to_thread(client.converse, modelId=PROFILE_ARN,
                            messages=[{"role": "user", "content": [{"text": "Hello"}]}])
    ours, botos = fake.received
    assert ours.raw_path == botos.raw_path == model_path(PROFILE_ARN, "converse")
    assert "%3A" in ours.raw_path and "%2F" in ours.raw_path
    assert (ours.auth_error, botos.auth_error) == (None, None)
    assert ours.json == botos.json | {"inferenceConfig": {"maxTokens": 256}}


async def test_bearer_api_key_replaces_sigv4(fake: FakeBedrock, make_provider: Callable[..., BedrockProvider]) -> None:
    fake.bearer_tokens.append("ABSKQmVkcm9ja0FQSUtleS1fake")
    provider = make_provider(api_key="ABSKQmVkcm9ja0FQSUtleS1fake", access_key_id=None, secret_access_key=None,
                             session_token=None)
    await provider.complete(chat(), target())
    (seen,) = fake.received
    assert seen.headers["authorization"] == "Bearer ABSKQmVkcm9ja0FQSUtleS1fake"
    assert "x-amz-date" not in seen.headers


async def test_default_credential_chain_is_resolved_once(fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch,
                                                         make_provider: Callable[..., BedrockProvider]) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": CREDENTIALS.access_key, "AWS_SECRET_ACCESS_KEY": CREDENTIALS.secret_key,
                        "AWS_SESSION_TOKEN": CREDENTIALS.token, "AWS_REGION": REGION,
                        "AWS_CONFIG_FILE": "/nonexistent/config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/creds",
                        "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    resolved = []
    original = botocore.session.Session.get_credentials

    def counting(self: botocore.session.Session) -> Any:
        resolved.append(1)
        return original(self)

    monkeypatch.setattr(botocore.session.Session, "get_credentials", counting)
    provider = make_provider(access_key_id=None, secret_access_key=None, session_token=None, region=None)
    await provider.complete(chat(), target())
    await collect(provider.stream(chat(stream=True), target()))
    assert len(resolved) == 1
    assert [r.auth_error for r in fake.received] == [None, None]
    assert all(f"/{REGION}/bedrock/" in r.headers["authorization"] for r in fake.received)


async def test_refreshable_credentials_refresh_only_when_botocore_says(
        fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch, make_provider: Callable[..., BedrockProvider]) -> None:
    fresh = Credentials("AKIAFAKEBEDROCK00002", "second/secret", "SECOND-TOKEN")
    fake.credentials.append(fresh)
    refreshes = []

    def refresh() -> dict[str, str]:
        refreshes.append(1)
        return {"access_key": fresh.access_key, "secret_key": fresh.secret_key, "token": fresh.token,
                "expiry_time": "2999-01-01T00:00:00Z"}

    expired = RefreshableCredentials.create_from_metadata(
        {"access_key": CREDENTIALS.access_key, "secret_key": CREDENTIALS.secret_key, "token": CREDENTIALS.token,
         "expiry_time": "2000-01-01T00:00:00Z"}, refresh_using=refresh, method="test")
    monkeypatch.setattr(botocore.session.Session, "get_credentials", lambda self: expired)
    provider = make_provider(access_key_id=None, secret_access_key=None, session_token=None)
    await provider.complete(chat(), target())
    await provider.complete(chat(), target())
    assert len(refreshes) == 1
    assert [r.headers["x-amz-security-token"] for r in fake.received] == ["SECOND-TOKEN", "SECOND-TOKEN"]
    assert [r.auth_error for r in fake.received] == [None, None]


# ---------------------------------------------------------------- count_tokens, request errors


async def test_count_tokens_invoke_and_converse(fake: FakeBedrock,
                                                make_provider: Callable[..., BedrockProvider]) -> None:
    provider = make_provider()
    assert await provider.count_tokens(chat(), target("us." + CLAUDE)) == 42
    fake.count = 7
    assert await provider.count_tokens(chat(system="Hi"), target(NOVA)) == 7
    invoke_seen, converse_seen = fake.received
    assert invoke_seen.raw_path == "/model/anthropic.claude-sonnet-4-20250514-v1%3A0/count-tokens"
    body = base64.b64decode(invoke_seen.json["input"]["invokeModel"]["body"])
    assert msgspec.json.decode(body) == {"max_tokens": 256, "messages": HELLO,
                                         "anthropic_version": "bedrock-2023-05-31"}
    assert converse_seen.json == {"input": {"converse": {
        "messages": [{"role": "user", "content": [{"text": "Hello"}]}], "system": [{"text": "Hi"}]}}}


async def test_image_url_cannot_go_to_converse(fake: FakeBedrock,
                                               make_provider: Callable[..., BedrockProvider]) -> None:
    request = chat(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}]}])
    with pytest.raises(GatewayError) as refused:
        await make_provider().complete(request, target(NOVA))
    assert refused.value.kind is ErrorKind.INVALID_REQUEST
    assert "base64" in refused.value.message
    assert fake.received == []


async def test_dropped_fields_are_warned(fake: FakeBedrock, make_provider: Callable[..., BedrockProvider]) -> None:
    request = chat()
    request.passthrough = {"service_tier": "auto"}
    request.passthrough_headers = {"x-custom": "1"}
    await make_provider().complete(request, target(NOVA))
    assert request.warnings == [
        "dropped header 'x-custom': Bedrock does not take it",
        "dropped unsupported anthropic field 'service_tier' for the Bedrock Converse API"]
    invoke_request = chat()
    invoke_request.passthrough = {"metadata": {"user_id": "u1"}}
    await make_provider().complete(invoke_request, target())
    assert fake.received[1].json["metadata"] == {"user_id": "u1"}


class RecordingHttp(HttpClient):
    """Captures what would go to AWS itself, and answers with the canned Converse reply."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, str]]] = []

    async def post(self, url: Any, body: bytes, headers: Any, timeout: float,  # noqa: ASYNC109
                   params: Any = None) -> UpstreamResponse:
        self.calls.append((str(url), dict(headers)))
        return UpstreamResponse(200, {}, msgspec.json.encode(CONVERSE_ANSWER))


async def test_default_endpoint_uses_the_deployment_region() -> None:
    http = RecordingHttp()
    provider = BedrockProvider("bedrock", ProviderConfig(
        type="bedrock", region="us-east-1", access_key_id=CREDENTIALS.access_key,
        secret_access_key=CREDENTIALS.secret_key), http)
    await provider.complete(chat(), Target(deployment="d", model=NOVA, region="eu-west-1"))
    await provider.complete(chat(), Target(deployment="d", model=NOVA))
    (url_eu, headers_eu), (url_us, headers_us) = http.calls
    assert url_eu == "https://bedrock-runtime.eu-west-1.amazonaws.com/model/amazon.nova-pro-v1%3A0/converse"
    assert url_us == "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-pro-v1%3A0/converse"
    assert "/eu-west-1/bedrock/aws4_request" in headers_eu["Authorization"]
    assert "/us-east-1/bedrock/aws4_request" in headers_us["Authorization"]
    assert "X-Amz-Security-Token" not in headers_eu

"""A fake Amazon Bedrock Runtime on 127.0.0.1 that checks what it gets like AWS does.

It verifies each request's SigV4 signature by recomputing it with botocore from the fake
credentials (a bad one gets AWS's 403), validates Converse and CountTokens bodies against
botocore's own service model, checks InvokeModel bodies the way Bedrock checks Claude's,
and answers in the real wire format: JSON, or AWS event-stream frames for streams.  The
tests in tests/providers/test_bedrock.py check this fake with botocore's own client.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import struct
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import botocore.session
import msgspec
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.validate import ParamValidator

from tests.fakes import end_body
from tests.support.servers import AppServer

REGION = "us-west-2"
CREDENTIALS = Credentials("AKIAFAKEBEDROCK00001", "fake/secret+key/for-the-bedrock-fake-000", "FAKE-SESSION-TOKEN//1")
SERVICE_MODEL = botocore.session.get_session().get_service_model("bedrock-runtime")
OPERATIONS = {"invoke": "InvokeModel", "invoke-with-response-stream": "InvokeModelWithResponseStream",
              "converse": "Converse", "converse-stream": "ConverseStream", "count-tokens": "CountTokens"}
# What Bedrock accepts in a Claude InvokeModel body (it rejects any other key).
INVOKE_KEYS = {"anthropic_version", "anthropic_beta", "max_tokens", "messages", "system", "stop_sequences",
               "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "metadata"}
PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"  # AWS pads stream events with "p"
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})")

# ---------------------------------------------------------------- canned answers (real shapes)

INVOKE_MESSAGE: dict[str, Any] = {
    "id": "msg_bdrk_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
    "model": "claude-sonnet-4-20250514", "content": [{"type": "text", "text": "Hello!"}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
              "output_tokens": 6}}
INVOKE_STREAM: list[dict[str, Any]] = [
    {"type": "message_start", "message": {**INVOKE_MESSAGE, "content": [], "stop_reason": None,
                                          "usage": {**INVOKE_MESSAGE["usage"], "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo!"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
     "usage": {"output_tokens": 6}},
    {"type": "message_stop", "amazon-bedrock-invocationMetrics": {
        "inputTokenCount": 12, "outputTokenCount": 6, "invocationLatency": 412, "firstByteLatency": 301}},
]
CONVERSE_ANSWER: dict[str, Any] = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Hello!"}]}},
    "stopReason": "end_turn", "usage": {"inputTokens": 12, "outputTokens": 6, "totalTokens": 18},
    "metrics": {"latencyMs": 321}}
CONVERSE_STREAM: list[tuple[str, dict[str, Any]]] = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "lo!"}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("messageStop", {"stopReason": "end_turn"}),
    ("metadata", {"usage": {"inputTokens": 12, "outputTokens": 6, "totalTokens": 18},
                  "metrics": {"latencyMs": 412}}),
]

# ---------------------------------------------------------------- AWS event-stream framing


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (lengths + CRC), string headers, payload, message CRC."""
    encoded = b"".join(len(k).to_bytes(1, "big") + k + b"\x07" + len(v).to_bytes(2, "big") + v
                       for k, v in ((k.encode(), v.encode()) for k, v in headers.items()))
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    return frame({":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
                 msgspec.json.encode({**payload, "p": PADDING}))


def exception_frame(exception_type: str, message: str) -> bytes:
    return frame({":exception-type": exception_type, ":content-type": "application/json",
                  ":message-type": "exception"}, msgspec.json.encode({"message": message}))


def invoke_frames(events: list[dict[str, Any]]) -> list[bytes]:
    """InvokeModelWithResponseStream: each Anthropic event, base64-encoded in a ``chunk``."""
    return [event_frame("chunk", {"bytes": base64.b64encode(msgspec.json.encode(e)).decode()}) for e in events]


def converse_frames(events: list[tuple[str, dict[str, Any]]]) -> list[bytes]:
    return [event_frame(kind, payload) for kind, payload in events]


# ---------------------------------------------------------------- scripted replies


@dataclass
class Fault:
    """An AWS JSON error answer, e.g. Fault(429, "ThrottlingException", "Too many requests")."""

    status: int
    error_type: str
    message: str


@dataclass
class Stream:
    """An event-stream answer: these frames, then the end of the body."""

    frames: list[bytes]


Reply = dict[str, Any] | Fault | Stream


@dataclass
class Received:
    operation: str  # the URI's last segment: invoke, converse-stream, count-tokens...
    model_id: str
    raw_path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    auth_error: str | None = None

    @property
    def json(self) -> Any:
        return msgspec.json.decode(self.body)


# ---------------------------------------------------------------- checks


def verify_sigv4(request_line: tuple[str, str, str], headers: dict[str, str], body: bytes,
                 known: dict[str, Credentials]) -> str | None:
    """None when the request's SigV4 signature is right, else AWS's complaint."""
    method, host, raw_path = request_line
    match = _AUTH.fullmatch(headers.get("authorization", ""))
    if match is None:
        return "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders'."
    key, day, region, service, signed, signature = match.groups()
    creds = known.get(key)
    if creds is None:
        return "The security token included in the request is invalid."
    if service != "bedrock" or region != REGION:
        return f"Credential should be scoped to a valid region and to service 'bedrock', not {region}/{service}."
    names = signed.split(";")
    amz_date = headers.get("x-amz-date", "")
    if "host" not in names or "x-amz-date" not in names or not amz_date.startswith(day):
        return "Signed headers must include host and x-amz-date for this date."
    if creds.token and headers.get("x-amz-security-token") != creds.token:
        return "The security token included in the request is invalid."
    aws_request = AWSRequest(method=method, url=f"http://{host}{raw_path}", data=body,
                             headers={name: headers.get(name, "") for name in names})
    aws_request.context["timestamp"] = amz_date
    signer = SigV4Auth(creds, "bedrock", region)
    expected = signer.signature(signer.string_to_sign(aws_request, signer.canonical_request(aws_request)),
                                aws_request)
    if not hmac.compare_digest(expected, signature):
        return ("The request signature we calculated does not match the signature you provided. Check your "
                "AWS Secret Access Key and signing method.")
    return None


def decode_blobs(value: Any, shape: Any) -> Any:
    """The wire JSON carries blobs as base64 strings: decode them where the model says blob."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict) and not shape.metadata.get("document"):
        return {k: decode_blobs(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [decode_blobs(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: decode_blobs(v, shape.value) for k, v in value.items()}
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value, validate=True)
    return value


def validate_operation(operation: str, model_id: str, body: Any) -> str | None:
    """None when ``body`` is a valid wire body for the operation per botocore's service model."""
    input_shape = SERVICE_MODEL.operation_model(operation).input_shape
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    misplaced = [k for k in body if k in input_shape.members and input_shape.members[k].serialization.get("location")]
    if misplaced:
        return f"{misplaced} belong in the URI or headers, not in the body."
    try:
        params = {**decode_blobs(body, input_shape), "modelId": model_id}
    except (binascii.Error, ValueError) as exc:
        return f"A blob member is not valid base64: {exc}"
    report = ParamValidator().validate(params, input_shape)
    return report.generate_report() if report.has_errors() else None


def validate_invoke_body(body: Any) -> str | None:
    """Bedrock's own checks of a Claude InvokeModel body."""
    if not isinstance(body, dict):
        return "Malformed input request: expected type: JSONObject, please reformat your input and try again."
    extraneous = sorted(set(body) - INVOKE_KEYS)
    if extraneous:
        return f"Malformed input request: #: extraneous key [{extraneous[0]}] is not permitted, please reformat."
    if body.get("anthropic_version") != "bedrock-2023-05-31":
        return "Malformed input request: #/anthropic_version: bedrock-2023-05-31 is required."
    if not isinstance(body.get("messages"), list) or not isinstance(body.get("max_tokens"), int):
        return "Malformed input request: #: required key [max_tokens] or [messages] not found."
    beta = body.get("anthropic_beta", [])
    if not isinstance(beta, list) or not all(isinstance(b, str) for b in beta):
        return "Malformed input request: #/anthropic_beta: expected type: JSONArray."
    return None


# ---------------------------------------------------------------- the server


@dataclass
class FakeBedrock:
    credentials: list[Credentials] = field(default_factory=lambda: [CREDENTIALS])
    bearer_tokens: list[str] = field(default_factory=list)
    count: int = 42  # CountTokens' answer
    received: list[Received] = field(default_factory=list)
    replies: deque[Reply] = field(default_factory=deque)
    url: str = ""
    _server: AppServer = field(default_factory=AppServer)

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", self._handle)
        self.url = await self._server.start(app)
        return self.url

    async def close(self) -> None:
        await self._server.close()

    def _check_auth(self, request: web.Request, headers: dict[str, str], body: bytes) -> str | None:
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            known_token = auth.removeprefix("Bearer ") in self.bearer_tokens
            return None if known_token else "Invalid API Key format: Must start with pre-defined prefix"
        known = {c.access_key: c for c in self.credentials}
        return verify_sigv4((request.method, request.host, request.raw_path), headers, body, known)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        parts = request.raw_path.split("?")[0].split("/")
        if len(parts) != 4 or parts[1] != "model" or parts[3] not in OPERATIONS:
            return _error(404, "UnknownOperationException", f"no operation at {request.raw_path}")
        operation, model_id = parts[3], unquote(parts[2])
        received = Received(operation, model_id, request.raw_path, headers, body)
        self.received.append(received)
        received.auth_error = self._check_auth(request, headers, body)
        if received.auth_error is not None:
            kind = "UnrecognizedClientException" if "token" in received.auth_error else "InvalidSignatureException"
            return _error(403, kind, received.auth_error)
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return _error(400, "SerializationException", "The request body is not valid JSON.")
        problem = (validate_invoke_body(data) if operation.startswith("invoke")
                   else validate_operation(OPERATIONS[operation], model_id, data))
        if problem is not None:
            return _error(400, "ValidationException", problem)
        answer = self.replies.popleft() if self.replies else _default(operation, self.count)
        if isinstance(answer, Fault):
            return _error(answer.status, answer.error_type, answer.message)
        if isinstance(answer, Stream):
            return await _stream(request, answer, operation)
        return web.json_response(answer, dumps=lambda obj: msgspec.json.encode(obj).decode(),
                                 headers=_response_headers(operation, answer))


def _default(operation: str, count: int) -> Reply:
    defaults: dict[str, Reply] = {
        "invoke": INVOKE_MESSAGE, "invoke-with-response-stream": Stream(invoke_frames(INVOKE_STREAM)),
        "converse": CONVERSE_ANSWER, "converse-stream": Stream(converse_frames(CONVERSE_STREAM)),
        "count-tokens": {"inputTokens": count}}
    return defaults[operation]


def _response_headers(operation: str, answer: dict[str, Any]) -> dict[str, str]:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if operation == "invoke":
        usage = answer.get("usage") or {}
        headers.update({"X-Amzn-Bedrock-Input-Token-Count": str(usage.get("input_tokens", 0)),
                        "X-Amzn-Bedrock-Output-Token-Count": str(usage.get("output_tokens", 0)),
                        "X-Amzn-Bedrock-Invocation-Latency": "412"})
    return headers


def _error(status: int, error_type: str, message: str) -> web.Response:
    # AWS names the error in x-amzn-ErrorType (with a namespace suffix) and puts "message" in the body.
    return web.json_response({"message": message}, status=status, headers={
        "x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "x-amzn-RequestId": str(uuid.uuid4())})


async def _stream(request: web.Request, answer: Stream, operation: str) -> web.StreamResponse:
    headers = {"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": str(uuid.uuid4())}
    if operation == "invoke-with-response-stream":
        headers["X-Amzn-Bedrock-Content-Type"] = "application/json"
    response = web.StreamResponse(status=200, headers=headers)
    await response.prepare(request)
    for data in answer.frames:
        # Frames split across writes: a client must reassemble them.
        cut = len(data) // 2
        await response.write(data[:cut])
        await response.write(data[cut:])
    await end_body(response)
    return response

"""A fake Google Vertex AI: the OAuth token endpoint and Claude's rawPredict endpoints.

Like Google, the token endpoint verifies the service account's signed JWT assertion (RS256
signature with the account's public key, issuer, audience, scope, lifetime) before it issues
an access token, and the prediction endpoints refuse any request without a live token.  The
prediction endpoints check the path and the Vertex body rules, record what they received and
answer in Anthropic's JSON and SSE formats.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes import end_body
from tests.support.servers import AppServer

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # the aud Google requires
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
VERTEX_VERSION = "vertex-2023-10-16"
PROJECT = "test-project"
MODEL = "claude-sonnet-4@20250514"
ANSWER_TEXT = "Bonjour from Vertex"
COUNT_TOKENS_ANSWER = 17


@dataclass(slots=True)
class ServiceAccount:
    email: str
    key_id: str
    key: rsa.RSAPrivateKey
    path: Path


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_service_account(path: Path, token_uri: str, *, project: str = PROJECT,
                          email: str = "gateway@test-project.iam.gserviceaccount.com",
                          key: rsa.RSAPrivateKey | None = None, key_id: str | None = None) -> ServiceAccount:
    """A service account JSON file in Google's format, with a real RSA key."""
    key = key or new_rsa_key()
    key_id = key_id or secrets.token_hex(20)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": email,
        "client_id": "123456789012345678901",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    path.write_text(json.dumps(info))
    return ServiceAccount(email, key_id, key, path)


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def answer_message(model: str, text: str = ANSWER_TEXT) -> dict[str, Any]:
    """Claude's JSON answer on Vertex (the model field is the Vertex model id)."""
    return {
        "id": "msg_vrtx_01AbCdEfGhIjKlMnOpQrStUv",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 5, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0},
    }


def stream_events(model: str) -> list[dict[str, Any]]:
    """The SSE events of a streamed answer, in order (ping included, as Vertex sends it)."""
    start = answer_message(model)
    start["content"] = []
    start["stop_reason"] = None
    start["usage"] = {"input_tokens": 12, "output_tokens": 1, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0}
    return [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bonjour"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " from Vertex"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 5}},
        {"type": "message_stop"},
    ]


# Google's words when the assertion's audience or lifetime is wrong.
BAD_TIMEFRAME = "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."
OVERLOADED_EVENT = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def google_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "status": code}}, status=status)


def anthropic_error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}}, status=status)


@dataclass(slots=True)
class Call:
    method: str  # rawPredict or streamRawPredict
    path: str  # the raw path as sent
    location: str
    model: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass(slots=True)
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakeVertex:
    """Token endpoint at ``/token``; Vertex API under ``/v1``.  Set ``stream_mode`` to "ok",
    "overloaded" (an error event mid-stream), "truncated" (ends cleanly before message_stop) or
    "reset" (the connection drops mid-stream); queue HTTP failures in ``failures``."""

    def __init__(self, project: str = PROJECT) -> None:
        self.project = project
        self.locations = {"global", "us-east5", "europe-west1"}
        self.models = {MODEL, "claude-opus-4-1@20250805"}
        self.accounts: dict[str, tuple[str, rsa.RSAPublicKey]] = {}  # email -> (key id, public key)
        self.expires_in = 3600
        self.tokens: dict[str, float] = {}  # access token -> expiry (epoch seconds)
        self.grants: list[dict[str, Any]] = []  # claims of each accepted assertion, in order
        self.issued: list[str] = []  # access tokens, in order
        self.rejected_grants: list[str] = []  # error descriptions of refused assertions
        self.calls: list[Call] = []
        self.unauthenticated: list[str] = []  # Authorization headers refused
        self.count_calls: list[Call] = []
        self.failures: list[Failure] = []
        self.stream_mode = "ok"
        self.url = ""
        self._server = AppServer()

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    def register(self, account: ServiceAccount) -> None:
        self.accounts[account.email] = (account.key_id, account.key.public_key())

    def issue_token(self, value: str | None = None) -> str:
        token = value or "ya29.fake-" + secrets.token_urlsafe(24)
        self.tokens[token] = time.time() + self.expires_in
        self.issued.append(token)
        return token

    def revoke_all(self) -> None:
        self.tokens.clear()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/token", self._token)
        models = "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{target}"
        app.router.add_post(models, self._predict)
        self.url = await self._server.start(app)
        return self.url

    async def stop(self) -> None:
        await self._server.close()

    # -- OAuth 2.0 JWT bearer grant (RFC 7523), as oauth2.googleapis.com/token does it --

    def _refuse(self, description: str) -> web.Response:
        self.rejected_grants.append(description)
        return web.json_response({"error": "invalid_grant", "error_description": description}, status=400)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        assertion = str(form.get("assertion", ""))
        try:
            head_b64, claims_b64, sig_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(head_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            signature = _b64url_decode(sig_b64)
        except ValueError:
            return self._refuse("Invalid JWT: malformed assertion.")
        if header.get("alg") != "RS256" or header.get("typ") != "JWT":
            return self._refuse("Invalid JWT: unsupported algorithm.")
        account = self.accounts.get(claims.get("iss", ""))
        if account is None:
            return self._refuse("Invalid JWT: unknown issuer.")
        key_id, public_key = account
        if header.get("kid") != key_id:
            return self._refuse("Invalid JWT Signature.")
        try:
            public_key.verify(signature, f"{head_b64}.{claims_b64}".encode(), padding.PKCS1v15(),
                              hashes.SHA256())
        except InvalidSignature:
            return self._refuse("Invalid JWT Signature.")
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            return self._refuse(BAD_TIMEFRAME)
        if CLOUD_PLATFORM_SCOPE not in str(claims.get("scope", "")).split():
            return self._refuse("Invalid OAuth scope or ID token audience provided.")
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not (isinstance(iat, int) and isinstance(exp, int)):
            return self._refuse(BAD_TIMEFRAME)
        if not (iat - 300 <= now < exp and exp - iat <= 3600):
            return self._refuse(BAD_TIMEFRAME)
        self.grants.append(claims)
        token = self.issue_token()
        return web.json_response({"access_token": token, "expires_in": self.expires_in,
                                  "token_type": "Bearer"})

    # -- Vertex AI publisher model endpoints --

    async def _predict(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or self.tokens.get(token, 0.0) <= time.time():
            self.unauthenticated.append(auth)
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. "
                                "Expected OAuth 2 access token, login cookie or other valid authentication "
                                "credential.")
        info = request.match_info
        model, _, method = info["target"].rpartition(":")
        if info["project"] != self.project:
            return google_error(403, "PERMISSION_DENIED", f"Permission 'aiplatform.endpoints.predict' denied "
                                f"on resource '//aiplatform.googleapis.com/projects/{info['project']}'.")
        if info["location"] not in self.locations or info["publisher"] != "anthropic":
            return google_error(404, "NOT_FOUND", f"Publisher Model `{info['target']}` not found.")
        if method not in ("rawPredict", "streamRawPredict") or (model not in self.models
                                                                and model != "count-tokens"):
            return google_error(404, "NOT_FOUND", f"Publisher Model `{info['target']}` not found.")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        call = Call(method, request.raw_path, info["location"], model, dict(request.headers), body)
        if self.failures:
            failure = self.failures.pop(0)
            self.calls.append(call)
            return web.json_response(failure.body, status=failure.status, headers=failure.headers)
        if body.get("anthropic_version") != VERTEX_VERSION:
            return anthropic_error(400, "invalid_request_error",
                                   f"anthropic_version: must be {VERTEX_VERSION}")
        if model == "count-tokens":
            self.count_calls.append(call)
            return self._count_tokens(body)
        self.calls.append(call)
        if "model" in body:
            return anthropic_error(400, "invalid_request_error", "model: Extra inputs are not permitted")
        if not isinstance(body.get("max_tokens"), int) or not isinstance(body.get("messages"), list):
            return anthropic_error(400, "invalid_request_error", "max_tokens and messages are required")
        if bool(body.get("stream")) != (method == "streamRawPredict"):
            return anthropic_error(400, "invalid_request_error", "stream must match the endpoint")
        if method == "rawPredict":
            return web.json_response(answer_message(model), headers={"request-id": "req_vrtx_1"})
        return await self._stream(request, model)

    def _count_tokens(self, body: dict[str, Any]) -> web.Response:
        if body.get("model") not in self.models or not isinstance(body.get("messages"), list):
            return anthropic_error(400, "invalid_request_error", "model and messages are required")
        for key in ("max_tokens", "stream", "temperature"):
            if key in body:
                return anthropic_error(400, "invalid_request_error", f"{key}: Extra inputs are not permitted")
        return web.json_response({"input_tokens": COUNT_TOKENS_ANSWER})

    async def _stream(self, request: web.Request, model: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await resp.prepare(request)
        events = stream_events(model)
        if self.stream_mode == "ok":
            for event in events:
                await resp.write(sse(event))
            await end_body(resp)
            return resp
        for event in events[:4]:  # message_start, content_block_start, ping, first delta
            await resp.write(sse(event))
        if self.stream_mode == "overloaded":
            await resp.write(sse(OVERLOADED_EVENT))
            await resp.write_eof()
        elif self.stream_mode == "reset":
            assert request.transport is not None
            request.transport.close()
        # "truncated": the response ends cleanly here, without its final events
        return resp

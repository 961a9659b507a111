"""HTTP emulators of the token exchanges the cloud SDKs make for workload identity, so a test can follow a
projected Kubernetes ServiceAccount token through an SDK's own default credential chain to the first API
call, on 127.0.0.1 (AWS's exchange is moto's STS).

- `GcpStsEmulator`: Google's Security Token Service (`POST /v1/token`, RFC 8693 token exchange, as
  google-auth's external-account credentials call it) and IAM Credentials
  (`POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken`, service account impersonation).
- `AlibabaStsEmulator`: Alibaba Cloud STS `AssumeRoleWithOIDC` (RPC style, query parameters), as
  alibabacloud-credentials' OIDC provider calls it.

Like the real services they accept a token only when it is a JWT signed by one of the issuer's keys
(RS256 or ES256), issued by the configured issuer, unexpired, and carrying the configured audience; every
exchange they grant is recorded with the credentials they issued, so a test can find those credentials
in the cloud call that follows.
"""

from __future__ import annotations

import abc
import base64
import datetime
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, ClassVar, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from providers.emulators.params import RpcHandler, request_params

Json = dict[str, Any]
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


class Refused(Exception):
    """The exchange is refused: HTTP status, an error code and a message, as the service words them."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Exchange:
    """One granted exchange: who presented what, and what was handed out for it."""

    api: str
    subject: str
    """The presented token's `sub` (a ServiceAccount: system:serviceaccount:NS:NAME) or principal."""
    claims: Mapping[str, Any] = field(hash=False, compare=False)
    issued: str
    """GCP: the access token issued; Alibaba: the AccessKeyId of the temporary credentials."""
    secret: str = ""
    """Alibaba: the SecurityToken that goes with the AccessKeyId."""


@dataclass(frozen=True, slots=True)
class Issuer:
    """The identity provider the STS trusts: the cluster's ServiceAccount issuer and its public keys."""

    url: str
    keys: Sequence[PublicKey]

    def verify(self, token: str, audience: str, now: float) -> Json:
        """The claims of `token`, or Refused: a bad signature, issuer, audience or expiry."""
        try:
            header_b64, payload_b64, signature_b64 = token.strip().split(".")
            header = json.loads(_unb64(header_b64))
            claims: Json = json.loads(_unb64(payload_b64))
            signature = _unb64(signature_b64)
        except ValueError:
            raise Refused(400, "invalid_grant", "the subject token is not a JWT") from None
        signed = f"{header_b64}.{payload_b64}".encode()
        if not any(_signed_by(key, header.get("alg", ""), signed, signature) for key in self.keys):
            raise Refused(400, "invalid_grant", "the subject token's signature is not the issuer's")
        if claims.get("iss") != self.url:
            raise Refused(400, "invalid_grant", f"issuer {claims.get('iss')!r} is not trusted")
        audiences = claims.get("aud")
        if audience not in (audiences if isinstance(audiences, list) else [audiences]):
            raise Refused(400, "invalid_grant", f"audience {audiences!r} does not include {audience!r}")
        if float(claims.get("exp", 0)) <= now:
            raise Refused(400, "invalid_grant", "the subject token has expired")
        return claims


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _signed_by(key: PublicKey, alg: str, signed: bytes, signature: bytes) -> bool:
    try:
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            return True
        if alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 64:
            der = encode_dss_signature(int.from_bytes(signature[:32]), int.from_bytes(signature[32:]))
            key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
            return True
    except InvalidSignature:
        return False
    return False


class _Service(abc.ABC):
    """The HTTP side shared by both emulators: one threaded server on 127.0.0.1, a lock, a record."""

    name: ClassVar[str]

    def __init__(self, issuer: Issuer, clock: Callable[[], float]) -> None:
        self._issuer = issuer
        self._clock = clock
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def handle(self, method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Json:
        """The answer to one request; raises Refused."""

    @abc.abstractmethod
    def refusal(self, refused: Refused) -> Json:
        """A refusal as the service words its errors."""

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def _grant(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:PORT`."""
        if self._server is None:
            raise RuntimeError(f"{self.name} emulator not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Self:
        handler = type("_BoundHandler", (_Handler,), {"service": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"{self.name}-emulator")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class GcpStsEmulator(_Service):
    """sts.googleapis.com token exchange for one Workload Identity Federation provider, and
    iamcredentials.googleapis.com impersonation of the service accounts the federated principals may
    use (one server: the paths differ)."""

    name = "gcp-sts"

    def __init__(
        self,
        issuer: Issuer,
        *,
        provider: str,
        token_audience: str,
        service_accounts: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(issuer, clock)
        self.provider = provider
        """The pool provider's full name: the `audience` of the exchange request."""
        self.token_audience = token_audience
        """The `aud` the presented Kubernetes token must carry."""
        self.service_accounts = frozenset(service_accounts)
        self._federated: dict[str, str] = {}
        """Federated access token -> its principal."""

    def handle(self, method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Json:
        if method == "POST" and path == "/v1/token":
            return self._exchange(params)
        prefix, suffix = "/v1/projects/-/serviceAccounts/", ":generateAccessToken"
        if method == "POST" and path.startswith(prefix) and path.endswith(suffix):
            return self._impersonate(path[len(prefix) : -len(suffix)], headers.get("authorization", ""))
        raise Refused(404, "NOT_FOUND", f"{method} {path}")

    def _exchange(self, params: Mapping[str, str]) -> Json:
        if params.get("grant_type") != TOKEN_EXCHANGE:
            raise Refused(400, "unsupported_grant_type", f"grant_type {params.get('grant_type')!r}")
        if params.get("subject_token_type") != JWT_TOKEN_TYPE:
            raise Refused(400, "invalid_request", "subject_token_type must be a JWT")
        if params.get("audience") != self.provider:
            raise Refused(400, "invalid_target", f"unknown provider {params.get('audience')!r}")
        claims = self._issuer.verify(params.get("subject_token", ""), self.token_audience, self._clock())
        token = "ya29.federated-" + secrets.token_urlsafe(16)
        principal = f"principal://{self.provider.removeprefix('//')}/subject/{claims['sub']}"
        with self._lock:
            self._federated[token] = principal
        self._grant(Exchange("sts.token", str(claims["sub"]), claims, token))
        return {
            "access_token": token,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": 3600,
        }

    def _impersonate(self, account: str, authorization: str) -> Json:
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            principal = self._federated.get(token) if scheme.lower() == "bearer" else None
        if principal is None:
            raise Refused(401, "UNAUTHENTICATED", "the bearer token is not a federated token of this STS")
        if account not in self.service_accounts:
            raise Refused(403, "PERMISSION_DENIED", f"{principal} may not impersonate {account}")
        issued = "ya29.impersonated-" + secrets.token_urlsafe(16)
        self._grant(Exchange("iamcredentials.generateAccessToken", principal, {"account": account}, issued))
        expiry = datetime.datetime.fromtimestamp(self._clock() + 3600, datetime.UTC)
        return {"accessToken": issued, "expireTime": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def refusal(self, refused: Refused) -> Json:
        if refused.code.isupper():  # Google API style (iamcredentials)
            return {"error": {"code": refused.status, "message": refused.message, "status": refused.code}}
        return {"error": refused.code, "error_description": refused.message}  # OAuth style (sts)


class AlibabaStsEmulator(_Service):
    """sts.aliyuncs.com `AssumeRoleWithOIDC` for one RAM role trusting one OIDC provider."""

    name = "alibaba-sts"

    def __init__(
        self,
        issuer: Issuer,
        *,
        role_arn: str,
        oidc_provider_arn: str,
        audience: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(issuer, clock)
        self.role_arn = role_arn
        self.oidc_provider_arn = oidc_provider_arn
        self.audience = audience

    def handle(self, method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Json:
        if params.get("Action") != "AssumeRoleWithOIDC":
            raise Refused(400, "InvalidAction.NotFound", f"action {params.get('Action')!r}")
        if params.get("OIDCProviderArn") != self.oidc_provider_arn:
            raise Refused(404, "EntityNotExist.OIDCProvider", f"{params.get('OIDCProviderArn')!r}")
        if params.get("RoleArn") != self.role_arn:
            raise Refused(404, "EntityNotExist.Role", f"{params.get('RoleArn')!r}")
        try:
            claims = self._issuer.verify(params.get("OIDCToken", ""), self.audience, self._clock())
        except Refused as refused:
            raise Refused(400, "AuthenticationFail.OIDCToken.Invalid", refused.message) from None
        key_id, token = "STS.oidc" + secrets.token_hex(10), "CAIS" + secrets.token_urlsafe(24)
        self._grant(Exchange("AssumeRoleWithOIDC", str(claims["sub"]), claims, key_id, token))
        expiry = datetime.datetime.fromtimestamp(self._clock() + 3600, datetime.UTC)
        session = params.get("RoleSessionName", "")
        return {
            "RequestId": secrets.token_hex(16).upper(),
            "Credentials": {
                "AccessKeyId": key_id,
                "AccessKeySecret": secrets.token_urlsafe(24),
                "SecurityToken": token,
                "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "AssumedRoleUser": {
                "Arn": f"{self.role_arn}/{session}",
                "AssumedRoleId": "3" + secrets.token_hex(8),
            },
            "OIDCTokenInfo": {"Subject": claims["sub"], "Issuer": claims["iss"]},
        }

    def refusal(self, refused: Refused) -> Json:
        return {"RequestId": secrets.token_hex(16).upper(), "Code": refused.code, "Message": refused.message}


class _Handler(RpcHandler):
    service: ClassVar[_Service]

    def serve(self) -> None:
        params = request_params(self)
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = urllib.parse.urlsplit(self.path).path
        try:
            status, payload = 200, self.service.handle(self.command, path, params, headers)
        except Refused as refused:
            status, payload = refused.status, self.service.refusal(refused)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


__all__ = ["AlibabaStsEmulator", "Exchange", "GcpStsEmulator", "Issuer", "Refused"]

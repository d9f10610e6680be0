"""The HTTP API's JWT authorizer, emulated: RS256 tokens from a key pair kept in the data directory.

The issuer and audience are the template's (its JwtConfiguration resolved with the parameters). When
they name something that only exists in AWS (the Cognito user pool the template creates when no issuer
is given), a local issuer ``http://127.0.0.1:<port>/local-issuer`` with audience ``arcturus-local``
stands in. Validation follows API Gateway: signature and key id, ``iss``, ``aud`` or ``client_id``,
``exp``/``nbf``, scopes when the route requires some; failures get API Gateway's bodies.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.intrinsics import NotEmulated
from local.template import Template

LOCAL_AUDIENCE = "arcturus-local"
UNAUTHORIZED = {"message": "Unauthorized"}
FORBIDDEN = {"message": "Forbidden"}


@dataclass(frozen=True)
class JwtConfig:
    issuer: str
    audience: list[str]


def local_issuer(port: int) -> str:
    return f"http://127.0.0.1:{port}/local-issuer"


def jwt_configs(template: Template, port: int) -> dict[tuple[str, str], JwtConfig]:
    """``{(api, authorizer name): JwtConfig}`` for every JWT authorizer of every HttpApi."""
    resolver = template.resolver({}, {})
    configs = {}
    for api, properties in template.http_apis().items():
        for name, authorizer in properties.get("Auth", {}).get("Authorizers", {}).items():
            settings = authorizer.get("JwtConfiguration")
            if settings is None:
                continue
            try:
                issuer = resolver.resolve(settings.get("issuer", ""))
                audience = resolver.resolve(settings.get("audience", []))
            except NotEmulated:
                issuer, audience = "", []
            audience = [item for item in ([audience] if isinstance(audience, str) else audience) if item]
            if not issuer:
                issuer, audience = local_issuer(port), [LOCAL_AUDIENCE]
            configs[(api, name)] = JwtConfig(str(issuer), audience)
    return configs


def token_config(template: Template, port: int) -> JwtConfig:
    """The configuration tokens are made for: the template's first JWT authorizer (or the local one)."""
    configs = jwt_configs(template, port)
    return next(iter(configs.values()), JwtConfig(local_issuer(port), [LOCAL_AUDIENCE]))


class SigningKey:
    """The RS256 key pair under ``<data dir>/jwt/``, made on first use."""

    def __init__(self, directory: Path) -> None:
        path = directory / "private.pem"
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            partial = path.with_suffix(".tmp")
            partial.write_bytes(pem)
            partial.chmod(0o600)
            partial.replace(path)
        self.private_pem = path.read_bytes()
        private = serialization.load_pem_private_key(self.private_pem, password=None)
        public = private.public_key()
        self.public_pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = hashlib.sha256(self.public_pem).hexdigest()[:16]

    def token(self, config: JwtConfig, email: str, ttl: int) -> str:
        """A signed ID-style token for ``email`` (``sub`` is stable per email)."""
        now = int(time.time())
        claims = {
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{email}")),
            "email": email,
            "email_verified": True,
            "iss": config.issuer,
            "aud": config.audience[0] if len(config.audience) == 1 else config.audience,
            "iat": now,
            "exp": now + ttl,
            "token_use": "id",
        }
        return jwt.encode(claims, self.private_pem, algorithm="RS256", headers={"kid": self.key_id})


def _claim_text(value: Any) -> str:
    """A claim as API Gateway passes it on: every value a string, lists as ``[a b]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


@dataclass(frozen=True)
class Verdict:
    """The authorizer's answer: ``claims`` and ``scopes`` for the request, or the error to send."""

    claims: dict[str, str] | None = None
    scopes: list[str] | None = None
    status: int = 200
    error: dict[str, str] | None = None


class JwtAuthorizer:
    """Checks a request's Authorization header the way the HTTP API's JWT authorizer does."""

    def __init__(self, key: SigningKey, config: JwtConfig) -> None:
        self._key = key
        self.config = config

    def check(self, authorization: str | None, required_scopes: tuple[str, ...]) -> Verdict:
        token = (authorization or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        claims = self._decode(token) if token else None
        if claims is None:
            return Verdict(status=401, error=UNAUTHORIZED)
        granted = str(claims.get("scope", claims.get("scp", ""))).split()
        if required_scopes and not set(required_scopes) & set(granted):
            return Verdict(status=403, error=FORBIDDEN)
        return Verdict(
            claims={name: _claim_text(value) for name, value in claims.items()},
            scopes=granted if required_scopes else None,
        )

    def _decode(self, token: str) -> dict[str, Any] | None:
        try:
            if jwt.get_unverified_header(token).get("kid") != self._key.key_id:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_pem,
                algorithms=["RS256"],
                issuer=self.config.issuer,
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except jwt.PyJWTError:
            return None
        audiences = claims.get("aud", [])
        audiences = [audiences] if isinstance(audiences, str) else list(audiences)
        if not set(self.config.audience) & {*audiences, claims.get("client_id")}:
            return None
        return claims

"""A passkey in software, for the tests that drive the console without a browser.

It does what an authenticator does (WebAuthn L2 §6): an EC P-256 key pair per
credential, authenticator data with the RP ID hash, flags and counter, "none"
attestation on creation, and an ECDSA signature over authenticator data and the
client data hash on sign-in; the `webauthn` package checks all of it for real.
The browser tests use Chromium's own virtual authenticator instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

_UP, _UV, _AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


class SoftPasskey:
    def __init__(self, rp_id: str, origin: str, *, user_verified: bool = True) -> None:
        self.rp_id = rp_id
        self.origin = origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = 0
        self.user_handle: str | None = None
        self.flags = _UP | (_UV if user_verified else 0)

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge,
                           "origin": origin or self.origin, "crossOrigin": False}).encode()

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def create(self, options: dict[str, Any], *, origin: str | None = None) -> dict[str, Any]:
        """The answer to navigator.credentials.create() for these options."""
        self.user_handle = options["user"]["id"]
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + \
            self.credential_id + self._cose_key()
        auth_data = hashlib.sha256(options["rp"]["id"].encode()).digest() + \
            bytes([self.flags | _AT]) + struct.pack(">I", self.sign_count) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {"id": self.id, "rawId": self.id, "type": "public-key",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": b64url(client_data),
                             "attestationObject": b64url(attestation)}}

    def get(self, options: dict[str, Any], *, origin: str | None = None) -> dict[str, Any]:
        """The answer to navigator.credentials.get(): a signature over the challenge."""
        allowed = [c["id"] for c in options.get("allowCredentials") or []]
        if allowed and self.id not in allowed:
            raise ValueError("this passkey was not asked for")
        self.sign_count += 1
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        auth_data = hashlib.sha256(options["rpId"].encode()).digest() + \
            bytes([self.flags]) + struct.pack(">I", self.sign_count)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        response = {"clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data), "signature": b64url(signature)}
        if self.user_handle:
            response["userHandle"] = self.user_handle
        return {"id": self.id, "rawId": self.id, "type": "public-key",
                "clientExtensionResults": {}, "response": response}

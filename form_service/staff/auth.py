"""Passkeys and sessions of the staff console.

Sign-in is a WebAuthn ceremony (the maintained `webauthn` package checks it):
the service hands out a random challenge, the browser's authenticator signs
it with the private key that never leaves the device, and the signature is
checked against the public key registered at enrolment. There is no password
to steal, guess or reuse, and a phishing site gets a signature for its own
domain, which is worthless here (WebAuthn L2 §13.4.9).

Challenges are kept server-side and used once (members.take_challenge), so a
captured answer cannot be replayed. User verification is required (a PIN or a
fingerprint on the device): a passkey is something one has and knows or is.

The session cookie, `__Host-staff`: Secure, HttpOnly, SameSite=Strict, Path=/,
no Domain (RFC 6265bis §4.1.3.2), holding a random token of which the
database keeps only the SHA-256 (members.py).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from form_service.settings import Settings
from form_service.staff.members import SESSION_ABSOLUTE, Member, Passkey

SESSION_COOKIE = "__Host-staff"
# What a browser's ceremony may take (milliseconds; a hint to the browser).
_TIMEOUT_MS = 120_000
# A credential JSON is a few hundred bytes; a generous cap keeps parsing cheap.
MAX_CREDENTIAL_BYTES = 16 * 1024


class PasskeyError(Exception):
    """Raised when a WebAuthn answer does not verify (forged, for another site, malformed)."""


@dataclass(frozen=True)
class NewPasskey:
    credential_id: str
    public_key: bytes
    sign_count: int


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Ceremonies:
    """The WebAuthn ceremonies for one relying party: this service's host and origin."""

    def __init__(self, settings: Settings, rp_name: str) -> None:
        parts = urlsplit(settings.base_url)
        self.rp_id = settings.host
        # The exact origin the browser reports in clientDataJSON (scheme, host, port).
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.rp_name = rp_name

    def registration_options(self, member: Member) -> tuple[str, bytes]:
        """Options for navigator.credentials.create(), as JSON, and their challenge."""
        options = generate_registration_options(
            rp_id=self.rp_id,
            rp_name=self.rp_name,
            user_name=member.email,
            user_id=member.user_handle.encode("ascii"),
            user_display_name=member.name,
            timeout=_TIMEOUT_MS,
            # A discoverable credential (a passkey): sign-in needs no user name typed.
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
        )
        return options_to_json(options), options.challenge

    def verify_registration(self, credential: Any, challenge: bytes) -> NewPasskey:
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                require_user_verification=True,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            raise PasskeyError(f"registration did not verify: {exc}") from None
        return NewPasskey(_b64url(verified.credential_id), verified.credential_public_key,
                          verified.sign_count)

    def authentication_options(self, allow: list[str] | None = None) -> tuple[str, bytes]:
        """Options for navigator.credentials.get(); `allow`: only these credentials
        (re-asking the signed-in member), else any passkey of this site."""
        options = generate_authentication_options(
            rp_id=self.rp_id,
            timeout=_TIMEOUT_MS,
            allow_credentials=[PublicKeyCredentialDescriptor(id=_unb64url(c))
                               for c in allow or []],
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return options_to_json(options), options.challenge

    def verify_authentication(self, credential: Any, passkey: Passkey,
                              challenge: bytes) -> int:
        """The new signature counter; PasskeyError unless the answer is genuine."""
        handle = (credential.get("response") or {}).get("userHandle")
        if handle and _safe_unb64url(handle) != passkey.member.user_handle.encode("ascii"):
            raise PasskeyError("the passkey answered for another account")
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                credential_public_key=passkey.public_key,
                credential_current_sign_count=passkey.sign_count,
                require_user_verification=True,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            raise PasskeyError(f"sign-in did not verify: {exc}") from None
        return int(verified.new_sign_count)


def _safe_unb64url(text: Any) -> bytes | None:
    try:
        return _unb64url(str(text))
    except (binascii.Error, ValueError):
        return None


def parse_credential(body: bytes) -> tuple[dict[str, Any], bytes, str]:
    """(the credential JSON, the challenge it answers, its id) from a request body.

    The challenge is read from clientDataJSON only to find which challenge of
    ours is meant; the signature over it is checked by the ceremony afterwards.
    """
    if len(body) > MAX_CREDENTIAL_BYTES:
        raise PasskeyError("credential too large")
    try:
        data = json.loads(body)
        credential = data["credential"]
        client_data = json.loads(_unb64url(credential["response"]["clientDataJSON"]))
        challenge = _unb64url(client_data["challenge"])
        credential_id = str(credential["id"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise PasskeyError("not a WebAuthn credential") from None
    if not isinstance(credential, dict) or not challenge:
        raise PasskeyError("not a WebAuthn credential")
    return data, challenge, credential_id


def session_token(request: Request) -> str:
    return request.cookies.get(SESSION_COOKIE, "")


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(SESSION_ABSOLUTE.total_seconds()), path="/",
        # Secure always: the console runs only on https or localhost, which browsers treat
        # as a secure context for cookies too (settings._check_console_origin).
        secure=True, httponly=True,
        # Strict: no other site's page can make the browser send it, not even a link.
        samesite="strict",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True,
                           samesite="strict")

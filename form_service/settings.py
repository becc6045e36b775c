"""Settings of the service, read once from the environment (prefix POLICY_).

Every setting has an embedded default so that `policy-site serve` runs on a
fresh machine (SQLite and a Maildir under var/); production (an https
POLICY_BASE_URL) must set POLICY_SECRET_KEY.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from site_config.project import find_project


class SettingsError(Exception):
    """Raised when a setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    root: Path
    var_dir: Path
    site_dir: Path
    database_url: str
    smtp_url: str | None
    maildir: Path
    staff_email: str
    mail_from: str
    secret_key: str = field(repr=False)
    base_url: str
    webhook_url: str | None
    webhook_secret: str | None = field(repr=False)
    rate_limit_storage: str
    trusted_proxies: tuple[str, ...]
    unverified_ttl_hours: int
    retention_days: int
    verify_link_max_age_hours: int
    outbox_lease_seconds: int
    # Whether the mail path delivers to addresses with non-ASCII letters before the @.
    smtputf8: bool = False
    # At most this many verification e-mails to one mailbox a day (store.gather_verification).
    verify_mails_per_day: int = 3
    # A client must send its request's headers, and then its body, within these.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    log_format: str = "text"
    # The staff console (form_service/staff/console.py) at /staff/: off unless asked for.
    staff_console: bool = False
    # Answer files (answer_files.py): the AES-256 key that seals them at rest (None: files
    # cannot be used), the largest file staff may attach, and how long files are kept.
    files_key: bytes | None = field(default=None, repr=False)
    answer_file_max_bytes: int = 50 * 1000 * 1000
    answer_files_days: int = 30
    # How long the worker keeps trying a message before it gives up and staff are
    # told: days, like a mail server (RFC 5321 §4.5.4.1 suggests 4-5 days).
    delivery_give_up_days: float = 5.0
    # How long a request waits on the database before the customer is told to try again
    # (web/deadline.py), and PostgreSQL's statement and lock timeouts (db.py).
    database_timeout_seconds: float = 5.0
    # /healthz reports "disk": "low" below this much free space under var/ (SQLite).
    min_free_mb: int = 100

    @property
    def answers_dir(self) -> Path:
        """Where sealed answer files are kept: under var/, 0700."""
        return self.var_dir / "answers"

    def require_files_key(self) -> bytes:
        """The files key, or a one-sentence SettingsError naming POLICY_FILES_KEY."""
        if self.files_key is None:
            raise SettingsError(
                "POLICY_FILES_KEY must be set to use answer files: it is the 256-bit key "
                "that encrypts them at rest (`policy-site secret` prints one).")
        return self.files_key

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def host(self) -> str:
        """POLICY_BASE_URL's host name: the passkeys' relying-party id (WebAuthn §5.1.4.1)."""
        return urlsplit(self.base_url).hostname or ""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} must be a whole number.") from None


# The key signs every link, form and cookie: NIST SP 800-107 asks an HMAC key to carry
# at least the security of the hash's output it is relied on for; 256 bits for SHA-256.
MIN_SECRET_BITS = 256
_HEX = set("0123456789abcdefABCDEF")
_BASE64URL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def secret_bits(key: str) -> float:
    """A generous estimate of a key's strength: its length times the bits of its alphabet.

    A hex key carries 4 bits a character, base64url 6, other text at most
    about 6.5 (printable ASCII); a key of few distinct characters ("aaaa…")
    carries next to nothing, whatever its length.
    """
    chars = set(key)
    if len(chars) < 8:
        return 0.0
    per_char = 4.0 if chars <= _HEX else 6.0 if chars <= _BASE64URL else 6.5
    return len(key) * per_char


def new_secret() -> str:
    """A fresh key for POLICY_SECRET_KEY: 256 random bits, base64url (43 characters)."""
    return secrets.token_urlsafe(32)


def _dev_secret(var_dir: Path) -> str:
    """A development secret, generated once and kept under var/ (never in production).

    Instances started together (tests, `policy-site migrate` beside `serve`) may
    all find no key: each writes its own to a temporary file and links it into
    place, so one wins, the others read the winner's, and nobody reads half a key.
    """
    path = var_dir / "secret_key"
    if path.is_file():
        return path.read_text().strip()
    # Private from the first byte: var/ 0700, the key 0600 (form_service/private.py).
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=var_dir, prefix=".secret_key.")  # mode 0600
    try:
        with open(fd, "w") as out:
            out.write(new_secret())
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process was first: its key is the one
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


def load_settings(env: Mapping[str, str] | None = None, root: Path | None = None) -> Settings:
    """The settings of the project at `root` (default: the one where the process stands)."""
    env = os.environ if env is None else env
    root = find_project() if root is None else Path(root).resolve()
    var_dir = Path(env.get("POLICY_VAR_DIR") or root / "var")
    base_url = (env.get("POLICY_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise SettingsError(f"POLICY_BASE_URL={base_url!r} must start with http:// or https://.")
    secret = env.get("POLICY_SECRET_KEY")
    if not secret:
        if base_url.startswith("https://"):
            raise SettingsError("POLICY_SECRET_KEY must be set when POLICY_BASE_URL is https.")
        secret = _dev_secret(var_dir)
    if secret_bits(secret) < MIN_SECRET_BITS:
        raise SettingsError(
            f"POLICY_SECRET_KEY is too weak: it must carry at least {MIN_SECRET_BITS} bits "
            "(e.g. 43 random base64url characters); `policy-site secret` prints a fresh one."
        )
    staff_console = _switch(env, "POLICY_STAFF_CONSOLE", default=False)
    if staff_console:
        _check_console_origin(base_url)
    raw_proxies = env.get("POLICY_TRUSTED_PROXIES", "").split(",")
    proxies = tuple(p.strip() for p in raw_proxies if p.strip())
    return Settings(
        root=root,
        var_dir=var_dir,
        site_dir=Path(env.get("POLICY_SITE_DIR") or root / "site"),
        database_url=env.get("POLICY_DATABASE_URL") or f"sqlite:///{var_dir / 'requests.sqlite3'}",
        smtp_url=env.get("POLICY_SMTP_URL") or None,
        maildir=Path(env.get("POLICY_MAILDIR") or var_dir / "maildir"),
        staff_email=env.get("POLICY_STAFF_EMAIL") or "privacy-staff@localhost",
        mail_from=env.get("POLICY_MAIL_FROM") or "privacy@localhost",
        secret_key=secret,
        base_url=base_url,
        webhook_url=env.get("POLICY_WEBHOOK_URL") or None,
        webhook_secret=env.get("POLICY_WEBHOOK_SECRET") or None,
        rate_limit_storage=env.get("POLICY_RATE_LIMIT_STORAGE") or "memory://",
        trusted_proxies=proxies,
        unverified_ttl_hours=_int(env, "POLICY_UNVERIFIED_TTL_HOURS", 7 * 24),
        retention_days=_int(env, "POLICY_RETENTION_DAYS", 3 * 365),
        verify_link_max_age_hours=_int(env, "POLICY_VERIFY_LINK_MAX_AGE_HOURS", 72),
        # How long a claimed message is a worker's own: longer than a batch can
        # take to send, short enough that a crashed worker's mail is not late.
        outbox_lease_seconds=_int(env, "POLICY_OUTBOX_LEASE_SECONDS", 300),
        # With a Maildir the mail never leaves this machine, so any address is "delivered";
        # with SMTP only the operator knows whether every hop speaks SMTPUTF8 (RFC 6531).
        smtputf8=_switch(env, "POLICY_SMTPUTF8", default=not env.get("POLICY_SMTP_URL")),
        verify_mails_per_day=_positive(env, "POLICY_VERIFY_MAILS_PER_DAY", 3),
        header_timeout_seconds=_seconds(env, "POLICY_HEADER_TIMEOUT_SECONDS", 10.0),
        body_timeout_seconds=_seconds(env, "POLICY_BODY_TIMEOUT_SECONDS", 30.0),
        log_format=_choice(env, "POLICY_LOG_FORMAT", ("text", "json")),
        staff_console=staff_console,
        files_key=_files_key(env),
        answer_file_max_bytes=_positive(env, "POLICY_ANSWER_FILE_MAX_MB", 50) * 1000 * 1000,
        answer_files_days=_positive(env, "POLICY_ANSWER_FILES_DAYS", 30),
        delivery_give_up_days=_seconds(env, "POLICY_DELIVERY_GIVE_UP_DAYS", 5.0, "days"),
        database_timeout_seconds=_seconds(env, "POLICY_DATABASE_TIMEOUT_SECONDS", 5.0),
        min_free_mb=_positive(env, "POLICY_MIN_FREE_MB", 100),
    )


def _files_key(env: Mapping[str, str]) -> bytes | None:
    """POLICY_FILES_KEY: 32 random bytes in base64url (AES-256-GCM, NIST SP 800-38D)."""
    raw = (env.get("POLICY_FILES_KEY") or "").strip()
    if not raw:
        return None
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != 32:
        raise SettingsError(
            "POLICY_FILES_KEY must be 32 random bytes in base64url (43 characters; "
            "`policy-site secret` prints one).")
    return key


def _check_console_origin(base_url: str) -> None:
    """Passkeys work only in a secure context and for a domain name (WebAuthn §5.1.3,
    §5.1.4.1): https, or http://localhost for development and tests; never an IP address."""
    host = urlsplit(base_url).hostname or ""
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    local = base_url.startswith("http://") and (host == "localhost" or host.endswith(".localhost"))
    if is_ip or not (base_url.startswith("https://") or local):
        raise SettingsError(
            f"POLICY_STAFF_CONSOLE=on needs POLICY_BASE_URL on https with a host name "
            f"(or http://localhost for development), not {base_url!r}: passkeys work "
            "only there.")


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "true", "yes", "1"):
        return True
    if raw in ("off", "false", "no", "0"):
        return False
    raise SettingsError(f"{name}={raw!r} must be on or off.")


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise SettingsError(f"{name}={value} must be 1 or more.")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float, unit: str = "seconds") -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise SettingsError(f"{name}={raw!r} must be a number of {unit} above 0.")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise SettingsError(f"{name}={raw!r} must be one of: {', '.join(choices)}.")
    return raw

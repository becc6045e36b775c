"""Settings of the service, read once from the environment (prefix POLICY_).

Every setting has an embedded default so that `policy-site serve` runs on a
fresh machine (SQLite and a Maildir under var/); production (an https
POLICY_BASE_URL) must set POLICY_SECRET_KEY.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from site_config.facts import DEFAULT_ROOT


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

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} must be a whole number.") from None


def _dev_secret(var_dir: Path) -> str:
    """A development secret, generated once and kept under var/ (never in production)."""
    path = var_dir / "secret_key"
    if path.is_file():
        return path.read_text().strip()
    # Private from the first byte: var/ 0700, the key 0600 (form_service/private.py).
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w") as out:
        out.write(key)
    return key


def load_settings(env: Mapping[str, str] | None = None, root: Path = DEFAULT_ROOT) -> Settings:
    env = os.environ if env is None else env
    var_dir = Path(env.get("POLICY_VAR_DIR") or root / "var")
    base_url = (env.get("POLICY_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise SettingsError(f"POLICY_BASE_URL={base_url!r} must start with http:// or https://.")
    secret = env.get("POLICY_SECRET_KEY")
    if not secret:
        if base_url.startswith("https://"):
            raise SettingsError("POLICY_SECRET_KEY must be set when POLICY_BASE_URL is https.")
        secret = _dev_secret(var_dir)
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
    )

"""What every handler needs that lives as long as the app (resources with a lifetime,
the store, worker and rate limiter, come from the lifespan through request.state)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from form_service.customer.policy import PolicyVersions
from form_service.settings import Settings
from form_service.web.pages import Pages
from site_config.facts import Site


@dataclass(frozen=True)
class WebContext:
    settings: Settings
    site: Site
    pages: Pages
    policy: PolicyVersions
    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    today: Callable[[], dt.date]


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context

"""API keys and roles: a rider app, a driver (of one bus) or a dispatcher.

The key comes in the ``X-Api-Key`` header; the dispatcher page's event stream may pass it as the
``api_key`` query parameter instead (browsers' EventSource cannot set headers).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery

from api.limits import key_id
from nachtbus.errors import AccessDenied, Unauthenticated
from nachtbus.settings import Settings


class Role(StrEnum):
    RIDER_APP = "rider_app"
    DRIVER = "driver"
    DISPATCHER = "dispatcher"


@dataclass(frozen=True)
class Principal:
    """Who is asking: the role and whose (app id or bus id; empty for dispatchers)."""

    role: Role
    subject: str
    key_id: str = ""  # a fingerprint of the key (not the key): what limits count per key
    name: str = ""  # a dispatcher's name, recorded with their actions

    @property
    def scope(self) -> str:
        return f"{self.role}:{self.subject}"


class KeyRing:
    """The configured keys, checked in constant time."""

    def __init__(self, settings: Settings) -> None:
        settings.check_keys()
        keys: list[tuple[str, Principal]] = [
            *((k, Principal(Role.RIDER_APP, app)) for k, app in settings.rider_app_keys.items()),
            *(
                (k, Principal(Role.DRIVER, vid))
                for k, vid in settings.resolved_driver_keys().items()
            ),
            *(
                (
                    k,
                    Principal(
                        Role.DISPATCHER,
                        "",
                        name=settings.dispatcher_names.get(k, f"dispatcher-{i + 1}"),
                    ),
                )
                for i, k in enumerate(settings.dispatcher_keys)
            ),
        ]
        self._keys = [(k, replace(who, key_id=key_id(k))) for k, who in keys]

    def key_ids(self) -> frozenset[str]:
        """The fingerprints (:func:`api.limits.key_id`) of every configured key."""
        return frozenset(who.key_id for _, who in self._keys)

    def find(self, key: str) -> Principal | None:
        found = None
        for known, who in self._keys:
            if hmac.compare_digest(known.encode(), key.encode()):
                found = who
        return found


_header = APIKeyHeader(name="X-Api-Key", auto_error=False, description="Your API key.")
_query = APIKeyQuery(
    name="api_key", auto_error=False, description="API key (for EventSource clients)."
)


def principal(
    request: Request,
    header_key: Annotated[str | None, Depends(_header)],
    query_key: Annotated[str | None, Depends(_query)],
) -> Principal:
    key = header_key or query_key
    if not key:
        raise Unauthenticated("send your API key in X-Api-Key", field="X-Api-Key")
    ring: KeyRing = request.app.state.keys
    who = ring.find(key)
    if who is None:
        raise Unauthenticated("unknown API key", field="X-Api-Key")
    return who


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits only these roles (403 for the others)."""

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise AccessDenied(f"this needs the role {allowed}", field="X-Api-Key")
        return who

    return check


RiderApp = Annotated[Principal, Depends(require(Role.RIDER_APP, Role.DISPATCHER))]
Driver = Annotated[Principal, Depends(require(Role.DRIVER, Role.DISPATCHER))]
Dispatcher = Annotated[Principal, Depends(require(Role.DISPATCHER))]

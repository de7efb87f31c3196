"""ICE for the rooms' peer connections: the configured ICE servers, and which host addresses are offered.

aioice gathers host candidates on every interface except loopback, from one module-level function
(``aioice.ice.get_host_addresses``); :func:`offer_host_addresses` puts a function of ours in its place that
returns the configured addresses (and 127.0.0.1 when loopback is on). It is process-wide, as the media
addresses of a media server are: call it once at startup (the consult app does; so does the test client).
"""

from __future__ import annotations

from typing import Any

import aioice.ice
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

_aioice_default = aioice.ice.get_host_addresses


def offer_host_addresses(addresses: list[str] | None = None, *, loopback: bool = False) -> None:
    """Gather host candidates on ``addresses`` (None or empty: aioice's own choice), plus 127.0.0.1 when
    ``loopback``. Idempotent; ``offer_host_addresses()`` restores aioice's behaviour."""
    chosen = list(addresses or [])

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        found = [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)] if chosen \
            else _aioice_default(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        if loopback and use_ipv4 and "127.0.0.1" not in found:
            found = ["127.0.0.1", *found]
        return found

    if not chosen and not loopback:
        aioice.ice.get_host_addresses = _aioice_default
    else:
        aioice.ice.get_host_addresses = host_addresses


def rtc_configuration(ice_servers: list[dict[str, Any]]) -> RTCConfiguration:
    """An RTCConfiguration from RTCIceServer dicts (always explicit: aiortc's default asks a public STUN).

    max-bundle: with aiortc's default (balanced) policy, a second m-line of a kind keeps the transport of the
    first one of its kind, which BUNDLE then discards; its media never flows. Browsers bundle everything."""
    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
               for s in ice_servers]
    return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)

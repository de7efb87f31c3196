"""``python -m gateway.identity.otp [username]``: the current TOTP code of the demo administrators.

For development: the demo accounts' secrets are fixed (gateway/identity/seed.py), so this needs no
database. Prints ``username code seconds-left`` per line. A code signs in once: for a second sign-in,
wait for the next code (the seconds left say when).
"""

from __future__ import annotations

import sys
import time

import pyotp

from gateway.identity.seed import DEMO_ACCOUNTS


def current_codes(username: str | None = None) -> list[tuple[str, str, int]]:
    """(username, code, seconds the code stays current) for the demo accounts with a TOTP secret."""
    now = time.time()
    rows = []
    for account in DEMO_ACCOUNTS:
        if account.totp_secret and (username is None or account.username == username):
            totp = pyotp.TOTP(account.totp_secret)
            rows.append((account.username, totp.at(now), int(totp.interval - now % totp.interval)))
    return rows


def main(argv: list[str]) -> int:
    username = argv[0] if argv else None
    rows = current_codes(username)
    if not rows:
        known = ", ".join(a.username for a in DEMO_ACCOUNTS if a.totp_secret)
        print(f"no demo account with a TOTP secret named {username!r}; try one of: {known}", file=sys.stderr)
        return 1
    for name, code, left in rows:
        print(f"{name:<16} {code}  (valid {left:>2}s more)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""The bearer tokens of a load run: one per simulated user, and an admin's to create the run's
events.

They are all minted before the load starts, with the dev signing key the target stack verifies
against (`tools.devkeys`, the same directory the stack uses), so that the run measures the
services verifying tokens, not the load generator signing them. Each user reuses its token for
all of its requests, as a real client does; a service verifies it in full once and then finds
it in its cache, which is part of what is measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from tools.devkeys import DevIdentity, mint_token

ADMIN = "loadtest-admin"


@dataclass(frozen=True)
class Tokens:
    # Kept out of reprs: a token is a credential, even a dev one.
    admin: str = field(repr=False)
    users: Mapping[str, str] = field(repr=False)

    @classmethod
    def mint(cls, identity: DevIdentity, users: Iterable[str], ttl: timedelta) -> Tokens:
        return cls(
            admin=mint_token(identity, ADMIN, admin=True, ttl=ttl),
            users={user: mint_token(identity, user, ttl=ttl) for user in users},
        )

    def of_admin(self) -> dict[str, str]:
        """The Authorization header of the run's admin."""
        return {"Authorization": f"Bearer {self.admin}"}

    def of(self, user: str) -> dict[str, str]:
        """The Authorization header of `user`, one of the run's users."""
        return {"Authorization": f"Bearer {self.users[user]}"}

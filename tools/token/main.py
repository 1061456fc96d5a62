"""Prints dev bearer tokens, one per `--sub`, one per line, in order.

    bazel run //tools/token -- --sub alice --sub bob [--admin] [--ttl 1h]

The tokens are signed with this machine's dev key (`tools.devkeys`, created if missing), so
every dev stack on the machine accepts them. `--admin` makes every token an admin's.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import timedelta

from tools.devkeys import dev_identity, mint_token

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL = timedelta(days=30)


def duration(text: str) -> timedelta:
    """`90`, `90s`, `15m`, `1h` or `2d`, at most 30 days."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m, 1h or 2d")
    ttl = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if not timedelta(seconds=1) <= ttl <= MAX_TTL:
        raise argparse.ArgumentTypeError(f"{text!r}: a token lives 1s to {MAX_TTL.days}d")
    return ttl


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="token", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sub", action="append", required=True, help="the user id; repeat for several tokens")
    parser.add_argument("--admin", action="store_true", help="tokens carry the admin role")
    parser.add_argument("--ttl", type=duration, default=timedelta(hours=1), help="lifetime (default 1h)")
    args = parser.parse_args(argv)
    for sub in args.sub:
        if not 1 <= len(sub) <= 64 or not sub.isprintable():
            parser.error(f"--sub {sub!r}: a subject is 1 to 64 printable characters")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    identity = dev_identity()
    sys.stdout.write("".join(mint_token(identity, sub, admin=args.admin, ttl=args.ttl) + "\n" for sub in args.sub))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The dev stack's command line: which ports, which PostgreSQL, what to keep.

Ports default to the README's (HTTP 8082/8081, gRPC 9092/9091); `--port-offset N` moves all
four at once, the `--*-port` options move one each.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from booking_service import config as booking_config
from event_service import config as event_config
from tools.stack.config import Ports, StackConfig


@dataclass(frozen=True)
class Options:
    stack: StackConfig
    # An existing PostgreSQL given by the DB_* variables, instead of the stack's throw-away one.
    external_db: bool
    demo: bool


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="ticketflow",
        description="Runs TicketFlow: a throw-away PostgreSQL, event_service and booking_service, "
        "with demo events, identity on (the banner prints dev tokens for alice, bob and an admin). "
        "Ctrl-C stops everything and removes the throw-away data.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address the services listen on (default %(default)s)")
    parser.add_argument("--port-offset", type=int, default=0, help="add N to the four default service ports")
    parser.add_argument("--event-http-port", type=int, help=f"default {event_config.DEFAULT_HTTP_PORT} + offset")
    parser.add_argument("--event-grpc-port", type=int, help=f"default {event_config.DEFAULT_GRPC_PORT} + offset")
    parser.add_argument("--booking-http-port", type=int, help=f"default {booking_config.DEFAULT_HTTP_PORT} + offset")
    parser.add_argument("--booking-grpc-port", type=int, help=f"default {booking_config.DEFAULT_GRPC_PORT} + offset")
    parser.add_argument(
        "--postgres-port", type=int, default=0, help="port of the throw-away PostgreSQL (default: a free one)"
    )
    parser.add_argument(
        "--external-db",
        action="store_true",
        help="use an existing PostgreSQL given by DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_SSLMODE "
        "(environment or .env) instead of a throw-away one; the two databases are created if missing. "
        "Identity and mutual TLS use this machine's dev credentials unless AUTH_* (or GRPC_TLS_* and "
        "EVENT_SERVICE_TLS_*) are set in the environment",
    )
    parser.add_argument(
        "--event-db",
        default=event_config.DEFAULT_DB_NAME,
        help="event_service's database (default %(default)s)",
    )
    parser.add_argument(
        "--booking-db",
        default=booking_config.DEFAULT_DB_NAME,
        help="booking_service's database (default %(default)s)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the throw-away PostgreSQL's directory on exit")
    parser.add_argument("--no-demo", dest="demo", action="store_false", help="do not create demo events")
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=8.0,
        help="seconds a service gets to stop before it is killed (default %(default)s)",
    )
    args = parser.parse_args(argv)

    def port(explicit: int | None, default: int) -> int:
        value = explicit if explicit is not None else default + args.port_offset
        if not 0 < value < 65536:
            parser.error(f"port {value} is outside 1..65535")
        return value

    ports = Ports(
        event_http=port(args.event_http_port, event_config.DEFAULT_HTTP_PORT),
        event_grpc=port(args.event_grpc_port, event_config.DEFAULT_GRPC_PORT),
        booking_http=port(args.booking_http_port, booking_config.DEFAULT_HTTP_PORT),
        booking_grpc=port(args.booking_grpc_port, booking_config.DEFAULT_GRPC_PORT),
    )
    if len(set(ports.named().values())) != 4:
        parser.error(f"the four service ports must differ: {ports.named()}")
    if args.external_db and (args.keep_data or args.postgres_port):
        parser.error("--keep-data and --postgres-port are about the throw-away PostgreSQL, not --external-db")
    stack = StackConfig(
        ports=ports,
        event_db=args.event_db,
        booking_db=args.booking_db,
        host=args.host,
        stop_timeout=args.stop_timeout,
        postgres_port=args.postgres_port,
        keep_data=args.keep_data,
    )
    return Options(stack=stack, external_db=args.external_db, demo=args.demo)

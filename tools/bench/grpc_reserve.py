"""`bazel run //tools/bench:grpc_reserve -- --target HOST:PORT`: ReserveSeats through gRPC.

Drives a running event service's `ReserveSeats` (one call per reservation, one seat, a new
booking id each) with N concurrent callers for a fixed time, all on one event it creates with
more seats than a run can take, and prints reservations per second and latency percentiles.
This is the event service alone, as the booking service's callers see it (the end-to-end
figure through POST /bookings is //tools/bench's). Only loopback or explicitly given targets.

Seat calls are the booking service's alone: the channel is mutual TLS with the booking
service's dev certificate, and the event is created with a dev admin token (both from this
machine's dev credentials, `tools.devkeys`, as //:ticketflow uses them).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid

import grpc
import uvloop
from google.protobuf import timestamp_pb2

from ticketflow.event.v1 import event_service_pb2 as pb
from ticketflow.event.v1 import event_service_pb2_grpc as pb_grpc
from tools.devkeys import dev_identity, dev_tls, mint_token
from tools.loadtest.stats import Series


def booking_service_credentials() -> grpc.ChannelCredentials:
    """What the dev stack's booking service presents to the event service."""
    tls = dev_tls()
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca_file.read_bytes(),
        private_key=tls.booking_key.read_bytes(),
        certificate_chain=tls.booking_cert.read_bytes(),
    )


async def drive(target: str, concurrency: int, seconds: float) -> tuple[Series, float]:
    admin = (("authorization", f"Bearer {mint_token(dev_identity(), 'grpc-reserve-admin', admin=True)}"),)
    async with grpc.aio.secure_channel(target, booking_service_credentials()) as channel:
        stub = pb_grpc.EventServiceStub(channel)
        event = await stub.CreateEvent(
            pb.CreateEventRequest(
                name="grpc_reserve benchmark",
                start_time=timestamp_pb2.Timestamp(seconds=int(time.time()) + 86_400),
                total_seats=1_000_000,  # the default MAX_TOTAL_SEATS; more than a run takes
            ),
            timeout=10,
            metadata=admin,
        )
        series = Series()
        deadline = time.perf_counter() + seconds

        async def caller() -> None:
            while time.perf_counter() < deadline:
                request = pb.ReserveSeatsRequest(booking_id=str(uuid.uuid4()), event_id=event.id, seats=1)
                started = time.perf_counter()
                try:
                    await stub.ReserveSeats(request, timeout=30)
                    status: int | str = "OK"
                except grpc.aio.AioRpcError as error:
                    status = error.code().name
                series.add(status, time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return series, time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="grpc_reserve", description=__doc__)
    parser.add_argument("--target", default="127.0.0.1:9092", help="event service gRPC address")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    series, elapsed = uvloop.run(drive(args.target, args.concurrency, args.seconds))
    latency = series.summary()
    print(
        f"ReserveSeats, 1 event, {args.concurrency} concurrent callers: {series.count} calls in {elapsed:.1f} s, "
        f"{series.count / elapsed:.1f}/s; latency ms p50 {latency['p50']:.1f} p95 {latency['p95']:.1f} "
        f"p99 {latency['p99']:.1f} max {latency['max']:.1f}; statuses {dict(series.statuses)}"
    )
    return 0 if set(series.statuses) == {"OK"} else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

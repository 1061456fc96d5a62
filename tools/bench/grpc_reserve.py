"""`bazel run //tools/bench:grpc_reserve -- --target HOST:PORT`: ReserveSeats through gRPC.

Drives a running event service's `ReserveSeats` (one call per reservation, one seat, a new
booking id each) with N concurrent callers for a fixed time, all on one event it creates with
more seats than a run can take, and prints reservations per second and latency percentiles.
This is the event service alone, as the booking service's callers see it (the end-to-end
figure through POST /bookings is //tools/bench's). Only loopback or explicitly given targets.
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
from tools.loadtest.stats import Series


async def drive(target: str, concurrency: int, seconds: float) -> tuple[Series, float]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.EventServiceStub(channel)
        event = await stub.CreateEvent(
            pb.CreateEventRequest(
                name="grpc_reserve benchmark",
                start_time=timestamp_pb2.Timestamp(seconds=int(time.time()) + 86_400),
                total_seats=1_000_000,  # the default MAX_TOTAL_SEATS; more than a run takes
            ),
            timeout=10,
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

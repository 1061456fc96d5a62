"""One error table, two renderings: the REST body and the gRPC rich status agree."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

from service_runtime.error_table import ErrorSpec, ErrorTable
from service_runtime.errors import Conflict, InvalidArgument


class SoldOut(Conflict):
    pass


class VerySoldOut(SoldOut):
    pass


TABLE = ErrorTable("test.ticketflow", {SoldOut: ErrorSpec(409, grpc.StatusCode.FAILED_PRECONDITION, "SOLD_OUT")})


def test_rest_body_is_the_grpc_gateway_shape() -> None:
    status, body = TABLE.http_body(InvalidArgument("seats", "must be positive"))
    assert status == 400
    assert body == {
        "code": 3,
        "message": "seats: must be positive",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "FIELD_INVALID",
                "domain": "test.ticketflow",
                "metadata": {"field": "seats"},
            }
        ],
    }


def test_subclasses_inherit_their_parents_entry() -> None:
    assert TABLE.spec(VerySoldOut("gone")).reason == "SOLD_OUT"


def test_grpc_status_carries_the_same_error_info() -> None:
    status = TABLE.grpc_status(SoldOut("gone", available_seats=0))
    assert status.code == grpc.StatusCode.FAILED_PRECONDITION
    ((key, raw),) = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    assert isinstance(raw, bytes)
    info = error_details_pb2.ErrorInfo()
    status_pb2.Status.FromString(raw).details[0].Unpack(info)
    assert (info.reason, info.domain, dict(info.metadata)) == ("SOLD_OUT", "test.ticketflow", {"available_seats": "0"})

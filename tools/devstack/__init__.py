"""The whole TicketFlow system on one machine: `./tools/bazel run //:ticketflow`."""

"""What both TicketFlow services run on: configuration, PostgreSQL, migrations, error mapping,
the REST and gRPC plumbing, metrics, and the one-process server that hosts both transports."""

"""The one launcher of the whole system: PostgreSQL, event_service and booking_service.

The dev stack (//:ticketflow), the tests (e2e, the load tool's, the event service's process
tests) and the benchmark all start the services through it. Layout:

    config.py        StackConfig and Ports: what to run where
    database.py      DatabaseServer: the PostgreSQL the services use, and their databases in it
    services.py      the two services (binary, name) and Service, one running service process
    environment.py   the one place a service process's environment is put together
    ports.py         the check, before anything starts, that the ports are free
    stack.py         Stack: start in order, wait until ready, restart or kill one, stop all
"""

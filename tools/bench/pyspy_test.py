"""py-spy's collapsed stacks are summed per library as the benchmark reports them."""

from __future__ import annotations

from tools.bench.pyspy import library, summarize

SITE = "/x/runfiles/pypi/site-packages"
OURS = "/x/runfiles/ticketflow"
STDLIB = "/usr/lib/python3.11"
LOOP = (
    f"<module> ({OURS}/booking_service/__main__.py:17);run ({STDLIB}/asyncio/runners.py:190);"
    f"Handle._run ({STDLIB}/asyncio/events.py:80)"
)


def test_files_belong_to_their_library() -> None:
    assert library(f"{SITE}/psycopg/_cursor_base.py") == "psycopg"
    assert library(f"{SITE}/typing_extensions.py") == "typing_extensions"
    assert library(f"{OURS}/service_runtime/rest.py") == "service_runtime"
    assert library(f"{STDLIB}/asyncio/events.py") is None


def test_stdlib_time_counts_for_the_library_that_called_it() -> None:
    collapsed = "\n".join(
        [
            f"{LOOP};execute ({SITE}/psycopg/cursor_async.py:90);write ({STDLIB}/asyncio/selector_events.py:1070) 6",
            f"{LOOP};dumps ({OURS}/service_runtime/protojson.py:66) 3",
            f"{LOOP} 1",
        ]
    )
    profile = summarize(collapsed)
    assert profile.samples == 10
    assert profile.by_library == {
        "psycopg": 6,
        "service_runtime": 3,
        "native code run by the event loop (uvloop, grpc Cython, C tasks)": 1,
    }
    assert profile.by_function.most_common(1) == [("write (asyncio/selector_events.py)", 6)]


def test_the_loops_own_work_counts_for_the_stdlib_not_for_who_started_the_loop() -> None:
    loop = (
        f"main ({OURS}/service_runtime/cli.py:50);run ({STDLIB}/asyncio/runners.py:190);"
        f"BaseEventLoop._run_once ({STDLIB}/asyncio/base_events.py:1898)"
    )
    profile = summarize(f"{loop};EpollSelector.select ({STDLIB}/selectors.py:468) 4\n{loop} 1")
    assert profile.by_library == {"stdlib selectors": 4, "stdlib asyncio": 1}


def test_on_uvloop_tasks_run_right_inside_the_runner() -> None:
    runner = f"main ({OURS}/service_runtime/cli.py:50);Runner.run ({STDLIB}/asyncio/runners.py:118)"
    collapsed = f"{runner};reserve ({OURS}/event_service/service.py:80) 2\n{runner} 3"
    profile = summarize(collapsed)
    assert profile.by_library == {
        "event_service": 2,
        "native code run by the event loop (uvloop, grpc Cython, C tasks)": 3,
    }

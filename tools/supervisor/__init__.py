"""The process layer under the launcher (tools.stack): child processes found in runfiles,
their output prefixed or logged to files, readiness over HTTP, SIGTERM then SIGKILL."""

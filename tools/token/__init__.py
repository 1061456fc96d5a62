"""`bazel run //tools/token`: dev bearer tokens for scripts, curl and load tests."""

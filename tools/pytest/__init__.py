"""Running pytest under Bazel: the `py_pytest_test` macro's entry point and plugins."""

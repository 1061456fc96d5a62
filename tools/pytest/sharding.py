"""pytest plugin for Bazel test sharding (`shard_count`): keeps every Nth collected test."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    total = int(os.environ["TEST_TOTAL_SHARDS"])
    index = int(os.environ["TEST_SHARD_INDEX"])
    kept = [item for n, item in enumerate(items) if n % total == index]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept

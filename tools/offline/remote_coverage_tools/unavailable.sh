#!/bin/sh
# Placeholder for a coverage tool that cannot be downloaded offline.
echo "bazel coverage is not available offline: @remote_coverage_tools is a placeholder (tools/offline/README.md)" >&2
exit 1

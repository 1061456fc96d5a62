#!/bin/sh
# Bazel's workspace status command (--workspace_status_command in .bazelrc): what the container
# images record about their source (tools/oci/image.py reads it). Only STABLE_ keys: when one
# changes, the image archives are rebuilt (their layers are not). Outside a git checkout the
# values say "unknown" and the creation time is 1970-01-01.
if revision=$(git rev-parse HEAD 2>/dev/null); then
  # Uncommitted changes make a different image than the commit's: say so.
  [ -z "$(git status --porcelain 2>/dev/null)" ] || revision="$revision-dirty"
  echo "STABLE_GIT_REVISION $revision"
  echo "STABLE_GIT_VERSION $(git describe --tags --always --dirty)"
  echo "STABLE_GIT_COMMIT_TIME $(git log -1 --format=%ct)"
else
  echo "STABLE_GIT_REVISION unknown"
  echo "STABLE_GIT_VERSION unknown"
  echo "STABLE_GIT_COMMIT_TIME 0"
fi

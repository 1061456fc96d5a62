"""Regenerates requirements.lock from requirements.in with pip-compile: `bazel run //:requirements.update`.

Runs the locked pip-tools against the workspace's source tree (not the runfiles), writing every
distribution with the sha256 hashes of all its published files, so the lock serves any
interpreter the project supports. Extra arguments go to pip-compile, for example
`bazel run //:requirements.update -- --upgrade-package grpcio`.
"""

from __future__ import annotations

import os
import sys

from piptools.scripts.compile import cli


def main() -> None:
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace:
        sys.exit("requirements.update must be started with `bazel run //:requirements.update`")
    os.chdir(workspace)
    # pip-compile writes this into the lock's header as the command that regenerates it.
    os.environ["CUSTOM_COMPILE_COMMAND"] = "bazel run //:requirements.update"
    args = [
        "--generate-hashes",
        "--allow-unsafe",
        "--no-strip-extras",
        "--no-emit-index-url",
        "--no-emit-find-links",
        "--output-file=requirements.lock",
        "requirements.in",
        *sys.argv[1:],
    ]
    cli.main(args=args, prog_name="pip-compile")


if __name__ == "__main__":
    main()

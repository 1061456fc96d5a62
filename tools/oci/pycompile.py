"""Compiles Python sources to .pyc files for an image; run by the image's own interpreter.

    python3.11 pycompile.py JOBS.json OUT_DIR

JOBS.json is a list of [source file, path of that source in the image]. Each .pyc is compiled
as the image's interpreter would cache it, with the image path as the code's file name (so
tracebacks name files in the image, never the build machine's), and with an unchecked source
hash instead of a modification time (so the same source always gives the same bytes, and the
interpreter never rewrites it). It is written to OUT_DIR + the path the image's interpreter
will look for (`__pycache__/<name>.<cache tag>.pyc`). Prints that list as JSON; sources that do
not compile (test data with deliberate syntax errors, Python 2 leftovers) are listed on stderr
and left without a .pyc, as `compileall` does.

Only the standard library: it runs with the image's interpreter, outside Bazel's Python setup.
Start it with PYTHONHASHSEED=0: constant sets are marshalled in hash order.
"""

import importlib.util
import json
import os
import py_compile
import sys


def main() -> int:
    jobs_file, out_dir = sys.argv[1], sys.argv[2]
    with open(jobs_file, encoding="utf-8") as f:
        jobs = json.load(f)
    compiled = []
    for source, image_path in jobs:
        pyc = importlib.util.cache_from_source(image_path)
        target = os.path.join(out_dir, pyc.lstrip("/"))
        try:
            py_compile.compile(
                source,
                cfile=target,
                dfile=image_path,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except py_compile.PyCompileError as error:
            print(f"pycompile: left without .pyc: {image_path}: {error.exc_type_name}", file=sys.stderr)
            continue
        compiled.append(pyc)
    json.dump(compiled, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

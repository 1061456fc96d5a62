"""The images' health probe: exits 0 when the service answers GET PATH with 200, else 1.

    python3.11 healthcheck.py --path /healthz --port 8082 --port-env HTTP_PORT

The image's HEALTHCHECK runs it (the images have no shell and no curl). The port is read from
the environment variable --port-env when it is set, as the service itself does, else --port.
It asks 127.0.0.1 unless SERVER_HOST names one specific address to listen on. Standard library
only: it runs with the image's bare interpreter.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request

_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def probe_url(path: str, default_port: int, port_env: str, environ: dict[str, str]) -> str:
    port = environ.get(port_env) or str(default_port)
    host = environ.get("SERVER_HOST", "")
    if host in _WILDCARDS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default="/healthz")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--port-env", default="HTTP_PORT")
    parser.add_argument("--timeout", type=float, default=4.0)
    args = parser.parse_args()

    url = probe_url(args.path, args.port, args.port_env, dict(os.environ))
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        with error:
            status = error.code
    except OSError as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The cost of `TokenVerifier.verify`: a fresh token (signature and claims checked) against one
already verified (the cache), each timed over many calls in one process.

    bazel run //service_runtime/auth:verify_bench [-- --calls 2000]

Prints microseconds per call for ES256 and RS256, uncached and cached, and the ratio.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from service_runtime.auth import testkeys
from service_runtime.auth.jwks import JwksKeySet
from service_runtime.auth.testkeys import claims, sign
from service_runtime.auth.verifier import TokenVerifier


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def per_call_us(tokens: TokenVerifier, batch: list[str]) -> float:
    started = time.perf_counter()
    for token in batch:
        tokens.verify(token)
    return (time.perf_counter() - started) / len(batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="verify calls per figure")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; {args.calls} calls per figure")
    print(f"{'algorithm':<10}{'uncached µs':>14}{'cached µs':>12}{'ratio':>10}")
    for alg in ("ES256", "RS256"):
        key = testkeys.signing_key("bench", alg)
        keys = JwksKeySet.from_document(testkeys.jwks(key))
        # Distinct tokens (distinct subjects): every call of the first batch misses the cache.
        fresh = [sign(key, claims(sub=f"user{n}")) for n in range(args.calls)]
        uncached = TokenVerifier(testkeys.settings(), keys, cache_size=0)
        per_call_us(uncached, fresh[:50])  # warm-up
        miss = per_call_us(uncached, fresh)
        cached = TokenVerifier(testkeys.settings(), keys)
        one = fresh[0]
        cached.verify(one)
        hit = per_call_us(cached, [one] * args.calls)
        print(f"{alg:<10}{miss:>14.1f}{hit:>12.2f}{miss / hit:>9.0f}x")


if __name__ == "__main__":
    main()

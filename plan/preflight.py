"""The preflight checks of a stack, run offline: `python -m plan preflight [STACK]`.

Runs the program under the mocks, as the plan does, and reports the checks
the GPU node pool waits for (infra/preflight.py): which data sources they
call with which arguments, and what they conclude. Offline, the platform's
answers come from the mocks' `PlatformFacts` (plan/mocks.py), so this shows
what is checked and that the messages name what to change; against a real
project the same checks run at `pulumi preview` (once the Compute Engine and
Cloud Quotas APIs are on) and stop `pulumi up` before the GPU pool.

Exit status: 0 all checks pass, 1 a check fails, 2 the stack cannot be planned.
"""

from __future__ import annotations

import argparse
import logging
import sys

from infra.config import ConfigError
from infra.preflight import PreflightError
from plan import runner
from plan.mocks import CapturingMonitor, PlanMocks

# The data sources the preflight checks call.
CHECK_TOKENS = {
    "gcp:compute/getMachineTypes:getMachineTypes": "machine type offered in the zone",
    "command:local:run": "RoCE network profile in the zone",
    "gcp:compute/getReservation:getReservation": "reservation exists and fits",
    "gcp:compute/getReservationBlock:getReservationBlock": "reservation block has room",
    "gcp:cloudquota/getSQuotaInfo:getSQuotaInfo": "regional GPU quota",
    "gcp:compute/getSubnetwork:getSubnetwork": "adopted cluster's subnet exists",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plan preflight", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("stack", nargs="?", default="dev", help="stack name (Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting"
    )
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = value
    monitor = CapturingMonitor(PlanMocks())
    failed: PreflightError | None = None
    # A failed check leaves outputs nobody awaits; asyncio would print each
    # with a traceback at exit. The message below says it all.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    try:
        runner.run(args.stack, overrides=overrides, monitor=monitor)
    except (FileNotFoundError, ConfigError) as err:
        print(f"Stack {args.stack!r} would not deploy: {err}", file=sys.stderr)
        return 2
    except PreflightError as err:
        failed = err
    print(f"Preflight checks of stack {args.stack!r} (offline: answers from plan/mocks.py):")
    calls = [c for c in monitor.invokes if c.token in CHECK_TOKENS]
    if not calls:
        print("  none (preflightChecks is false)")
    for call in calls:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(call.args.items()))
        print(f"  - {CHECK_TOKENS[call.token]}: {call.token.rsplit(':', 1)[-1]}({shown})")
    if failed is not None:
        print(f"\n{failed}", file=sys.stderr)
        return 1
    print("\nAll checks pass; nothing stops the GPU node pool.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

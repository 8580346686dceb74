"""What the slixmpp interoperability scripts of this directory share: the
import of slixmpp, which exits with status 2 ("SKIP") when it cannot be
imported, the outcome of a run, and the runner of the scripts that report
through one. Each script imports it from its own
directory, which Python puts first on the module path."""

import argparse
import asyncio
import logging
import sys

try:
    import slixmpp  # noqa: F401 - re-exported to the scripts
except ImportError as exc:  # pragma: no cover - depends on the system
    print(f"SKIP: cannot import slixmpp: {exc}", file=sys.stderr)
    sys.exit(2)


class Outcome:
    """The first success or failure wins; later reports are ignored."""

    def __init__(self, loop):
        self.future = loop.create_future()

    def fail(self, reason):
        if not self.future.done():
            self.future.set_result(reason)

    def succeed(self):
        if not self.future.done():
            self.future.set_result(None)


def run_scenario(scenario, names):
    """Parses --host, --port, --timeout, --debug and the required string
    options names, runs scenario(args, outcome) until it reports an outcome
    or --timeout passes, prints "OK" or "FAIL: reason" and returns the exit
    status."""
    p = argparse.ArgumentParser()
    for name in names:
        p.add_argument("--" + name, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--debug", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR)

    async def main():
        outcome = Outcome(asyncio.get_running_loop())
        task = asyncio.ensure_future(scenario(args, outcome))
        try:
            reason = await asyncio.wait_for(asyncio.shield(outcome.future), args.timeout)
        except asyncio.TimeoutError:
            reason = f"timed out after {args.timeout} s"
        task.cancel()
        if reason is not None:
            print(f"FAIL: {reason}")
            return 1
        print("OK")
        return 0

    return asyncio.run(main())

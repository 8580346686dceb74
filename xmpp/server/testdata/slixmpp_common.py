"""What the slixmpp interoperability scripts of this directory share: the
import of slixmpp, which exits with status 2 ("SKIP") when it cannot be
imported, and the outcome of a run. Each script imports it from its own
directory, which Python puts first on the module path."""

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

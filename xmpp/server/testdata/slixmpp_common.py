"""What the slixmpp interoperability scripts of this directory share: the
import of slixmpp, which exits with status 2 ("SKIP") when it cannot be
imported, the outcome of a run, a client that reports to one, and the
runner of the scripts that report through one. Each script imports it
from its own directory, which Python puts first on the module path."""

import argparse
import asyncio
import logging
import ssl
import sys
from pathlib import Path

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


class Client(slixmpp.ClientXMPP):
    """A ClientXMPP with the plugins named that dials --host and --port,
    verifies TLS for the XMPP domain, sends its initial presence, records
    the bodies it receives and reports failures: a bounce, a stream error,
    a disconnection not expected, a second session (one that should have
    resumed)."""

    def __init__(self, role, user, password, args, outcome, plugins=()):
        super().__init__(f"{user}@{args.domain}", password)
        self.role = role
        self.args = args
        self.outcome = outcome
        self.ca_certs = Path(args.ca)
        self.default_domain = args.domain
        self.use_ipv6 = False
        # slixmpp 1.8.3 binds SCRAM-*-PLUS to tls-unique, which TLS 1.3
        # lacks (see slixmpp_chat.py).
        self.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
        for plugin in plugins:
            self.register_plugin(plugin)
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        self.sessions = 0
        self.expect_disconnect = False
        self.bodies = asyncio.Queue()
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("presence_available", self.on_presence)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("connection_failed", lambda e: self.fail(f"connection failed: {e}"))
        self.add_event_handler("ssl_invalid_chain", lambda e: self.fail(f"certificate not trusted: {e}"))
        self.add_event_handler("failed_all_auth", lambda _e: self.fail("authentication failed"))
        self.add_event_handler("stream_error", lambda e: self.fail(f"stream error: {e['condition']} {e['text']}"))
        self.add_event_handler("disconnected", self.on_disconnected)

    async def get_dns_records(self, domain, port=None):
        return [(self.args.domain, self.args.host, self.args.port)]

    def fail(self, reason):
        self.outcome.fail(f"{self.role}: {reason}")

    def on_disconnected(self, reason):
        if not self.expect_disconnect:
            self.fail(f"disconnected before the test ended: {reason}")

    async def on_session_start(self, _event):
        self.sessions += 1
        if self.sessions > 1:
            self.fail("a new session started where the old one should resume")
            return
        self.send_presence()

    def on_presence(self, pres):
        if pres["from"] == self.boundjid and not self.ready.done():
            self.ready.set_result(True)

    def on_message(self, msg):
        if msg["type"] == "error":
            self.fail(f"message bounced from {msg['from']}: {msg['error']['condition']}")
            return
        if msg["body"]:
            self.bodies.put_nowait((str(msg["from"]), msg["body"]))

    async def receive(self, body):
        """Waits for body, skipping others (a resent copy included)."""
        while True:
            sender, got = await self.bodies.get()
            if got == body:
                return sender


def finish(outcome, *clients):
    """Disconnects the clients, as expected, and reports success."""
    for c in clients:
        c.expect_disconnect = True
        c.disconnect()
    outcome.succeed()


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

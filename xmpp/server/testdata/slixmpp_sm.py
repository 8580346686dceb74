#!/usr/bin/env python3
"""Interoperability check: slixmpp's stream management (XEP-0198) against
Switchboard.

Run by TestSlixmppStreamManagement (xmpp/server/interop_sm_test.go) against
a server that servertest started:

    slixmpp_sm.py --host 127.0.0.1 --port 5222 --ca tls-cert.pem \
        --domain localhost --user1 alice --password1 pw1 \
        --user2 bob --password2 pw2 --body hello-123

1. Client 1 logs in with slixmpp's xep_0198 plugin, which enables stream
   management with resumption; it sends its initial presence.
2. Client 2 logs in and sends client 1 a first message, which client 1
   receives.
3. Client 1's connection is cut (no closing tag). Client 2 sends a second
   message meanwhile: it must not bounce.
4. Client 1 connects again; slixmpp resumes the session instead of binding
   a resource. The second message arrives, client 1 is the same full JID,
   and its message reaches client 2 from it.

Prints "OK ..." lines and exits 0; any failure (TLS, authentication, a
bounce, a stream error, a new session instead of a resumed one, the
--timeout) exits 1 with "FAIL: reason". Exit status 2 means slixmpp cannot
be imported.

Tested with slixmpp 1.8.3 (Debian bookworm).
"""

import asyncio
import ssl
import sys
from pathlib import Path

from slixmpp_common import run_scenario, slixmpp


class Client(slixmpp.ClientXMPP):
    """A ClientXMPP that dials a fixed address, verifies TLS for the XMPP
    domain, records what it receives and reports failures."""

    def __init__(self, role, user, password, args, outcome, sm):
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
        if sm:
            self.register_plugin("xep_0198")
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


async def scenario(args, outcome):
    c1 = Client("client 1", args.user1, args.password1, args, outcome, sm=True)
    c2 = Client("client 2", args.user2, args.password2, args, outcome, sm=False)
    loop = asyncio.get_running_loop()
    enabled = loop.create_future()
    resumed = loop.create_future()
    c1.add_event_handler("sm_enabled", lambda st: enabled.done() or enabled.set_result(st))
    c1.add_event_handler("session_resumed", lambda st: resumed.done() or resumed.set_result(st))
    c1.add_event_handler("sm_failed", lambda st: c1.fail(f"stream management failed: {st}"))

    c1.connect()
    st = await enabled
    if st["resume"] not in (True, "true", "1") or not st["id"]:
        c1.fail(f"stream management enabled without resumption: {st}")
        return
    await c1.ready
    full = str(c1.boundjid)
    print(f"OK: client 1 enabled stream management as {full}, resumable")
    c2.connect()
    await c2.ready

    c2.send_message(mto=full, mbody=args.body + "-1", mtype="chat")
    await c1.receive(args.body + "-1")
    print("OK: client 1 received the first message")

    # The connection breaks: no closing tag, the server sees it end.
    c1.expect_disconnect = True
    c1.abort()
    await asyncio.sleep(0.3)
    c2.send_message(mto=full, mbody=args.body + "-2", mtype="chat")
    await asyncio.sleep(0.3)

    c1.expect_disconnect = False
    c1.connect()
    await resumed
    sender = await c1.receive(args.body + "-2")
    if str(c1.boundjid) != full:
        c1.fail(f"resumed as {c1.boundjid}, want {full}")
        return
    print(f"OK: client 1 resumed as {full} and received the second message from {sender}")

    c1.send_message(mto=c2.boundjid.bare, mbody=args.body + "-3", mtype="chat")
    sender = await c2.receive(args.body + "-3")
    if sender != full:
        c2.fail(f"message from {sender}, want {full}")
        return
    print(f"OK: client 2 received the reply from {sender}")
    c1.expect_disconnect = c2.expect_disconnect = True
    c1.disconnect()
    c2.disconnect()
    outcome.succeed()


if __name__ == "__main__":
    sys.exit(run_scenario(scenario, ("host", "ca", "domain", "user1", "password1", "user2", "password2", "body")))

#!/usr/bin/env python3
"""Interoperability check: two slixmpp clients become friends through
Switchboard, see each other's presence and chat.

Run by TestSlixmppFriends (xmpp/server/interop_friends_test.go) against a
server that servertest started; it can be run by hand too:

    slixmpp_friends.py --host 127.0.0.1 --port 5222 --ca tls-cert.pem \
        --domain localhost --user1 alice --password1 pw1 \
        --user2 bob --password2 pw2 --status "Out for lunch" --body hello-123

Both accounts exist. Both clients log in with STARTTLS, verifying the
server certificate against --ca for --domain, fetch their roster and send
their initial presence: client 2 with show 'away' and --status. A client is
ready once the server echoes its presence (RFC 6121 §4.2.2): no sleeps.
Automatic subscription handling is off in both, so every step is the
script's own:

1. Client 1 sends a subscription request (a friend request) to client 2.
2. Client 2 accepts it ('subscribed') and asks back ('subscribe');
   client 1 accepts that.
3. Client 1 must receive client 2's presence with show 'away' and
   --status; client 2 must receive client 1's available presence.
4. Client 1 then sends a chat message with --body; client 2 checks the
   body and the sender, and the script exits 0 and prints "OK".

Any failure (TLS, authentication, a bounce, a lost connection, a presence
with the wrong show or status, the --timeout) exits 1 with "FAIL: reason"
on stderr. Exit status 2 means slixmpp cannot be imported.

Tested with slixmpp 1.8.3 (Debian bookworm).
"""

import argparse
import asyncio
import logging
import ssl
import sys
from pathlib import Path

from slixmpp_common import Outcome, slixmpp


def available(pres):
    """Whether pres is available presence: slixmpp gives the show value
    as its type, and fires presence_away and not presence_available for
    one with show 'away'."""
    return pres["type"] in ("available", "away", "chat", "dnd", "xa")


class Friend(slixmpp.ClientXMPP):
    """A ClientXMPP that dials a fixed address but verifies TLS for the
    XMPP domain, handles subscriptions by hand and reports failures."""

    def __init__(self, role, user, password, show, status, args, outcome):
        super().__init__(f"{user}@{args.domain}", password)
        self.role = role
        self.args = args
        self.outcome = outcome
        self.show = show
        self.status = status
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        # Trust exactly the server's self-signed certificate, checked for
        # the XMPP domain (see slixmpp_chat.py).
        self.ca_certs = Path(args.ca)
        self.default_domain = args.domain
        self.use_ipv6 = False
        # slixmpp 1.8.3 binds SCRAM-*-PLUS to tls-unique, which TLS 1.3
        # lacks: over TLS 1.2 its first choice of mechanism succeeds (see
        # TestSlixmppChat).
        if args.tls_max == "1.2":
            self.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
        # No automatic answers: the script accepts and asks itself.
        self.auto_authorize = None
        self.auto_subscribe = False
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("presence", self.on_own_presence)
        self.add_event_handler("presence_error", self.on_presence_error)
        self.add_event_handler("connection_failed", self.on_connection_failed)
        self.add_event_handler("ssl_invalid_chain", self.on_invalid_chain)
        self.add_event_handler("failed_all_auth", self.on_failed_auth)
        self.add_event_handler("stream_error", self.on_stream_error)
        self.add_event_handler("disconnected", self.on_disconnected)
        self.add_event_handler("message", self.on_message_error)

    async def get_dns_records(self, domain, port=None):
        # Resolve the domain to the address under test.
        return [(self.args.domain, self.args.host, self.args.port)]

    def fail(self, reason):
        self.outcome.fail(f"{self.role} ({self.boundjid.bare}): {reason}")

    def on_connection_failed(self, err):
        self.fail(f"connection failed: {err}")

    def on_invalid_chain(self, err):
        self.fail(f"server certificate not trusted: {err}")

    def on_failed_auth(self, _event):
        self.fail("SASL authentication failed with every mechanism offered")

    def on_stream_error(self, err):
        self.fail(f"stream error: {err['condition']} {err['text']}")

    def on_disconnected(self, reason):
        self.fail(f"disconnected before the test ended: {reason}")

    def on_presence_error(self, pres):
        self.fail(f"presence error from {pres['from']}: {pres['error']['condition']}")

    def on_message_error(self, msg):
        if msg["type"] == "error":
            self.fail(f"message bounced from {msg['from']}: {msg['error']['condition']}")

    async def on_session_start(self, _event):
        if self.transport is None or self.transport.get_extra_info("ssl_object") is None:
            self.fail("session started without TLS")
            return
        try:
            await self.get_roster(timeout=self.args.timeout)
        except Exception as exc:  # IqError, IqTimeout
            self.fail(f"roster request failed: {exc!r}")
            return
        self.send_presence(pshow=self.show, pstatus=self.status)

    def on_own_presence(self, pres):
        # The server echoes our own initial presence: we are available.
        if available(pres) and pres["from"] == self.boundjid and not self.ready.done():
            self.ready.set_result(True)


class Client1(Friend):
    """Asks client 2 for a subscription, accepts client 2's request,
    waits for client 2's away presence, then sends the message."""

    def __init__(self, args, outcome):
        super().__init__("client 1", args.user1, args.password1, None, None, args, outcome)
        self.peer = f"{args.user2}@{args.domain}"
        self.asked = False
        self.add_event_handler("presence_subscribe", self.on_subscribe)
        self.add_event_handler("presence_subscribed", self.on_subscribed)
        self.add_event_handler("presence", self.on_peer_presence)

    def friend_request(self):
        self.asked = True
        self.send_presence_subscription(pto=self.peer)

    def on_subscribe(self, pres):
        if pres["from"].bare != self.peer:
            return
        if not self.asked:
            self.fail("got a subscription request before asking for one")
            return
        print(f"{self.role}: accepting the request of {pres['from']}")
        self.send_presence(pto=self.peer, ptype="subscribed")

    def on_subscribed(self, pres):
        if pres["from"].bare == self.peer:
            print(f"{self.role}: {self.peer} accepted the friend request")

    def on_peer_presence(self, pres):
        if not available(pres) or pres["from"].bare != self.peer:
            return
        if pres["show"] != "away" or pres["status"] != self.args.status:
            self.fail(f"presence of {pres['from']}: show {pres['show']!r} status"
                      f" {pres['status']!r}, want 'away' {self.args.status!r}")
            return
        print(f"OK: {self.role} sees {pres['from']} away: {pres['status']!r}")
        self.outcome.milestone("client 1 sees client 2")


class Client2(Friend):
    """Accepts client 1's request and asks back; waits for client 1's
    presence and the message."""

    def __init__(self, args, outcome):
        super().__init__("client 2", args.user2, args.password2, "away", args.status, args, outcome)
        self.peer = f"{args.user1}@{args.domain}"
        self.add_event_handler("presence_subscribe", self.on_subscribe)
        self.add_event_handler("presence", self.on_peer_presence)
        self.add_event_handler("message", self.on_message)

    def on_subscribe(self, pres):
        if pres["from"].bare != self.peer:
            self.fail(f"unexpected subscription request from {pres['from']}")
            return
        print(f"{self.role}: friend request from {pres['from']}: accepting and asking back")
        self.send_presence(pto=self.peer, ptype="subscribed")
        self.send_presence_subscription(pto=self.peer)

    def on_peer_presence(self, pres):
        if not available(pres) or pres["from"].bare != self.peer:
            return
        print(f"OK: {self.role} sees {pres['from']} available")
        self.outcome.milestone("client 2 sees client 1")

    def on_message(self, msg):
        if msg["type"] == "error":
            return  # reported by on_message_error
        if msg["body"] != self.args.body:
            logging.info("client 2: ignoring message %r", msg["body"])
            return
        if msg["from"].bare != self.peer:
            self.fail(f"message from {msg['from']}, want {self.peer}")
            return
        if msg["type"] != "chat":
            self.fail(f"message of type {msg['type']!r}, want 'chat'")
            return
        print(f"OK: {self.boundjid} received {msg['body']!r} from {msg['from']}")
        self.outcome.succeed()


class Milestones(Outcome):
    """An Outcome that also tracks the presence milestones and sends the
    chat message once both friends see each other."""

    WANT = {"client 1 sees client 2", "client 2 sees client 1"}

    def __init__(self, loop):
        super().__init__(loop)
        self.reached = set()
        self.on_friends = None

    def milestone(self, name):
        if name in self.reached:
            return
        self.reached.add(name)
        if self.reached == self.WANT and self.on_friends is not None:
            self.on_friends()


async def run(args):
    loop = asyncio.get_running_loop()
    outcome = Milestones(loop)
    clients = []
    stage = "client 2 to become available"
    try:
        async with asyncio.timeout(args.timeout):
            c2 = Client2(args, outcome)
            clients.append(c2)
            c2.connect(address=(args.host, args.port))
            await asyncio.wait({c2.ready, outcome.future}, return_when=asyncio.FIRST_COMPLETED)
            if not outcome.future.done():
                stage = "client 1 to become available"
                c1 = Client1(args, outcome)
                clients.append(c1)

                def send_message():
                    print("both friends see each other: client 1 sends the message")
                    c1.send_message(mto=c1.peer, mbody=args.body, mtype="chat")

                outcome.on_friends = send_message
                c1.connect(address=(args.host, args.port))
                await asyncio.wait({c1.ready, outcome.future}, return_when=asyncio.FIRST_COMPLETED)
            if not outcome.future.done():
                stage = "the friendship and the message"
                c1.friend_request()
            reason = await outcome.future
    except TimeoutError:
        reason = f"timed out after {args.timeout}s waiting for {stage}" \
                 f" (reached: {sorted(outcome.reached)})"
    for c in clients:
        # Success or not, we are done: later disconnects are not failures.
        c.del_event_handler("disconnected", c.on_disconnected)
        try:
            async with asyncio.timeout(5):
                await c.disconnect(wait=1)
        except (TimeoutError, Exception):  # best effort
            c.abort()
    return reason


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True, help="PEM file of the server certificate")
    p.add_argument("--domain", default="localhost")
    p.add_argument("--user1", required=True)
    p.add_argument("--password1", required=True)
    p.add_argument("--user2", required=True)
    p.add_argument("--password2", required=True)
    p.add_argument("--status", required=True, help="client 2's status text")
    p.add_argument("--body", required=True)
    p.add_argument("--tls-max", choices=("1.2", "1.3"), default="1.2")
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--debug", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not Path(args.ca).is_file():
        print(f"FAIL: CA file {args.ca} not found", file=sys.stderr)
        return 1
    reason = asyncio.run(run(args))
    if reason is not None:
        print(f"FAIL: {reason}", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

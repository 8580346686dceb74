#!/usr/bin/env python3
"""Interoperability check: two slixmpp clients meet in a Switchboard chat
room (XEP-0045, slixmpp plugin xep_0045) and exchange groupchat messages.

Run by TestSlixmppRoom (xmpp/server/interop_muc_test.go) against a server
that servertest started; it can be run by hand too:

    slixmpp_room.py --host 127.0.0.1 --port 5222 --ca tls-cert.pem \
        --domain localhost --user1 alice --password1 pw1 \
        --user2 bob --password2 pw2 --room team@conference.localhost \
        --body1 hello-1 --body2 hello-2

Both accounts exist. Both clients log in with STARTTLS, verifying the
server certificate against --ca for --domain. Every step waits for the
server's answer, never for time:

1. Client 1 joins --room as "One" (join_muc_wait: occupants, its own
   presence with status 110, history, subject). The room is new: the
   self-presence must carry 201, and client 1 accepts the default
   configuration (an instant room, muc#owner).
2. Client 2 joins as "Two" and must find "One" among the occupants.
3. Once client 1 sees "Two" arrive, it sends --body1 to the room.
4. Client 2 receives --body1 from room/One and answers with --body2;
   client 1 must receive its own --body1 back and --body2 from room/Two.
   The script then exits 0 and prints "OK".

Any failure (TLS, authentication, a presence or message error, a lost
connection, the --timeout) exits 1 with "FAIL: reason" on stderr. Exit
status 2 means slixmpp cannot be imported.

Tested with slixmpp 1.8.3 (Debian bookworm).
"""

import argparse
import asyncio
import logging
import ssl
import sys
from pathlib import Path

import slixmpp_common
from slixmpp_common import slixmpp
from slixmpp.exceptions import IqError, IqTimeout, PresenceError


class Outcome(slixmpp_common.Outcome):
    """The first failure wins; success needs every milestone."""

    WANT = {"client 1 got its own message", "client 1 got the answer"}

    def __init__(self, loop):
        super().__init__(loop)
        self.reached = set()

    def milestone(self, name):
        self.reached.add(name)
        if self.reached >= self.WANT:
            self.succeed()


class Occupant(slixmpp.ClientXMPP):
    """A ClientXMPP with the MUC plugin that dials a fixed address but
    verifies TLS for the XMPP domain and reports failures."""

    def __init__(self, role, user, password, nick, args, outcome):
        super().__init__(f"{user}@{args.domain}", password)
        self.role = role
        self.nick = nick
        self.args = args
        self.room = args.room
        self.outcome = outcome
        loop = asyncio.get_running_loop()
        # Set once the client is in the room (join_muc_wait returned).
        self.joined = loop.create_future()
        # Trust exactly the server's self-signed certificate, checked for
        # the XMPP domain (see slixmpp_chat.py).
        self.ca_certs = Path(args.ca)
        self.default_domain = args.domain
        self.use_ipv6 = False
        # slixmpp 1.8.3 binds SCRAM-*-PLUS to tls-unique, which TLS 1.3
        # lacks: over TLS 1.2 its first choice of mechanism succeeds (see
        # TestSlixmppChat).
        self.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0004")
        self.register_plugin("xep_0045")
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("connection_failed", self.on_connection_failed)
        self.add_event_handler("ssl_invalid_chain", self.on_invalid_chain)
        self.add_event_handler("failed_all_auth", self.on_failed_auth)
        self.add_event_handler("stream_error", self.on_stream_error)
        self.add_event_handler("disconnected", self.on_disconnected)
        self.add_event_handler(f"muc::{self.room}::message_error", self.on_message_error)
        self.add_event_handler(f"muc::{self.room}::presence-error", self.on_presence_error)

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

    def on_message_error(self, msg):
        self.fail(f"message bounced from {msg['from']}: {msg['error']['condition']}")

    def on_presence_error(self, pres):
        self.fail(f"presence error from {pres['from']}: {pres['error']['condition']}")

    async def on_session_start(self, _event):
        if self.transport is None or self.transport.get_extra_info("ssl_object") is None:
            self.fail("session started without TLS")
            return
        muc = self.plugin["xep_0045"]
        try:
            pres, subject, occupants, history = await muc.join_muc_wait(
                self.room, self.nick, maxstanzas=0, timeout=self.args.timeout)
        except PresenceError as exc:
            self.fail(f"join refused: {exc.condition}")
            return
        except Exception as exc:  # TimeoutError
            self.fail(f"join failed: {exc!r}")
            return
        codes = sorted(pres["muc"]["status_codes"])
        others = sorted(p["from"].resource for p in occupants if p["from"].resource != self.nick)
        print(f"{self.role}: joined {pres['from']} with status {codes}, occupants {others},"
              f" {len(history)} history messages, subject {subject['subject']!r}")
        if 110 not in codes:
            self.fail(f"self-presence without status 110: {pres}")
            return
        if pres["muc"]["role"] not in ("moderator", "participant"):
            self.fail(f"joined with role {pres['muc']['role']!r}")
            return
        if history:
            self.fail(f"history despite maxstanzas=0: {[m['body'] for m in history]}")
            return
        await self.joined_room(codes, others)
        if not self.joined.done():
            self.joined.set_result(True)

    async def joined_room(self, codes, others):
        pass


class One(Occupant):
    """Creates the room (instant room), waits for Two, sends --body1 and
    waits for its echo and for Two's answer."""

    def __init__(self, args, outcome):
        super().__init__("client 1", args.user1, args.password1, "One", args, outcome)
        self.add_event_handler(f"muc::{self.room}::got_online", self.on_got_online)
        self.add_event_handler(f"muc::{self.room}::message", self.on_message)

    async def joined_room(self, codes, others):
        if 201 not in codes:
            self.fail(f"new room's self-presence without status 201: {codes}")
            return
        if others:
            self.fail(f"new room has occupants {others}")
            return
        # Accept the default configuration: an instant room (§10.1.2).
        form = self.plugin["xep_0004"].make_form(ftype="submit")
        try:
            await self.plugin["xep_0045"].set_room_config(self.room, form, timeout=self.args.timeout)
        except (IqError, IqTimeout) as exc:
            self.fail(f"instant room configuration refused: {exc!r}")
            return
        print(f"{self.role}: configured an instant room")

    def on_got_online(self, pres):
        if pres["from"].resource != "Two":
            return
        print(f"{self.role}: sees {pres['from']} arrive; sending the first message")
        self.send_message(mto=self.room, mbody=self.args.body1, mtype="groupchat")

    def on_message(self, msg):
        if msg["type"] != "groupchat" or not msg["body"]:
            return
        nick = msg["from"].resource
        if msg["body"] == self.args.body1 and nick == "One":
            print(f"OK: {self.role} got its own message back from {msg['from']}")
            self.outcome.milestone("client 1 got its own message")
        elif msg["body"] == self.args.body2 and nick == "Two":
            print(f"OK: {self.role} received {msg['body']!r} from {msg['from']}")
            self.outcome.milestone("client 1 got the answer")
        else:
            self.fail(f"unexpected message {msg['body']!r} from {msg['from']}")


class Two(Occupant):
    """Joins, finds One, and answers One's message with --body2."""

    def __init__(self, args, outcome):
        super().__init__("client 2", args.user2, args.password2, "Two", args, outcome)
        self.add_event_handler(f"muc::{self.room}::message", self.on_message)

    async def joined_room(self, codes, others):
        if 201 in codes:
            self.fail(f"joining an existing room gave status 201: {codes}")
        elif others != ["One"]:
            self.fail(f"occupants {others}, want ['One']")

    def on_message(self, msg):
        if msg["type"] != "groupchat" or not msg["body"]:
            return
        if msg["body"] == self.args.body1 and msg["from"].resource == "One":
            print(f"OK: {self.role} received {msg['body']!r} from {msg['from']}; answering")
            self.send_message(mto=self.room, mbody=self.args.body2, mtype="groupchat")
        elif msg["body"] != self.args.body2:
            self.fail(f"unexpected message {msg['body']!r} from {msg['from']}")


async def run(args):
    loop = asyncio.get_running_loop()
    outcome = Outcome(loop)
    clients = []
    stage = "client 1 to join"
    try:
        async with asyncio.timeout(args.timeout):
            one = One(args, outcome)
            clients.append(one)
            one.connect(address=(args.host, args.port))
            await asyncio.wait({one.joined, outcome.future}, return_when=asyncio.FIRST_COMPLETED)
            if not outcome.future.done():
                stage = "client 2 to join and the messages"
                two = Two(args, outcome)
                clients.append(two)
                two.connect(address=(args.host, args.port))
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
    p.add_argument("--room", required=True, help="bare JID of a room that does not exist yet")
    p.add_argument("--body1", required=True)
    p.add_argument("--body2", required=True)
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

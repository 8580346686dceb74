#!/usr/bin/env python3
"""Interoperability check: two slixmpp clients chat through Switchboard.

Run by TestSlixmppChat (xmpp/server/interop_test.go) against a server that
servertest started; it is not meant to be run by hand, but can be:

    slixmpp_chat.py --host 127.0.0.1 --port 5222 --ca tls-cert.pem \
        --domain localhost --sender alice --sender-password pw1 \
        --receiver bob --receiver-password pw2 --body hello-123

1. The receiver (an existing account) logs in with STARTTLS, verifying the
   server certificate against --ca for --domain, and sends its initial
   presence; it is ready once the server echoes that presence back
   (RFC 6121 §4.2.2), so no sleep is needed.
2. The sender registers in band (XEP-0077) on a fresh STARTTLS stream, or
   only logs in with --no-register, and sends a chat message with --body to
   the receiver's bare JID.
3. The receiver checks the body and sender; the script exits 0 and prints
   "OK". Any failure (TLS, registration, authentication, a bounce, a lost
   connection, the --timeout) exits 1 with "FAIL: reason" on stderr.

--mechanism pins the SASL mechanism and --tls-max 1.2 caps TLS; each client
prints "auth: ROLE MECHANISM TLS-VERSION after N failed attempts" for the Go
test to check. Exit status 2 means slixmpp cannot be imported.

Tested with slixmpp 1.8.3 (Debian bookworm), which has two quirks met here:
its SCRAM-*-PLUS uses tls-unique only (undefined for TLS 1.3, so over TLS 1.3
it reaches PLAIN after four refused attempts), and it holds back the XEP-0077
registration IQs until a session exists (worked around in Sender).
"""

import argparse
import asyncio
import logging
import ssl
import sys
from pathlib import Path

from slixmpp_common import Outcome, slixmpp
from slixmpp.exceptions import IqError, IqTimeout


class Client(slixmpp.ClientXMPP):
    """A ClientXMPP that dials a fixed address but verifies TLS for the
    XMPP domain, and reports any failure to outcome."""

    def __init__(self, role, jid, password, args, outcome):
        super().__init__(jid, password, sasl_mech=args.mechanism)
        self.role = role
        self.args = args
        self.outcome = outcome
        # Trust exactly the server's self-signed certificate. slixmpp
        # loads ca_certs into its ssl_context (CERT_REQUIRED, hostname
        # checked) at STARTTLS time.
        self.ca_certs = Path(args.ca)
        # slixmpp checks the certificate against default_domain. Dialling
        # an IP literal leaves it empty, so name the XMPP domain here...
        self.default_domain = args.domain
        self.use_ipv6 = False
        if args.tls_max == "1.2":
            self.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
        self.failed_mechs = []
        self.add_event_handler("failed_auth", self.on_failed_attempt)
        self.add_event_handler("auth_success", self.on_auth_success)
        self.add_event_handler("connection_failed", self.on_connection_failed)
        self.add_event_handler("ssl_invalid_chain", self.on_invalid_chain)
        self.add_event_handler("failed_all_auth", self.on_failed_auth)
        self.add_event_handler("stream_error", self.on_stream_error)
        self.add_event_handler("disconnected", self.on_disconnected)

    async def get_dns_records(self, domain, port=None):
        # ...and resolve it to the address under test: without this,
        # slixmpp would look "localhost" up and dial port 5222.
        return [(self.args.domain, self.args.host, self.args.port)]

    def fail(self, reason):
        self.outcome.fail(f"{self.role} ({self.boundjid.bare}): {reason}")

    def on_connection_failed(self, err):
        self.fail(f"connection failed: {err}")

    def on_invalid_chain(self, err):
        self.fail(f"server certificate not trusted: {err}")

    def on_failed_attempt(self, failure):
        # slixmpp tries the next mechanism after a failure.
        self.failed_mechs.append(f"{self['feature_mechanisms'].mech.name}:"
                                 f"{failure['condition']}")

    def on_auth_success(self, _event):
        tls = self.transport.get_extra_info("ssl_object").version()
        # The Go test checks this line.
        print(f"auth: {self.role} {self['feature_mechanisms'].mech.name} {tls}"
              f" after {len(self.failed_mechs)} failed attempts"
              f" {' '.join(self.failed_mechs)}".rstrip())

    def on_failed_auth(self, _event):
        self.fail("SASL authentication failed with every mechanism offered")

    def on_stream_error(self, err):
        self.fail(f"stream error: {err['condition']} {err['text']}")

    def on_disconnected(self, reason):
        self.fail(f"disconnected before the test ended: {reason}")


class Receiver(Client):
    def __init__(self, args, outcome, sender_bare):
        super().__init__("receiver", f"{args.receiver}@{args.domain}",
                         args.receiver_password, args, outcome)
        self.sender_bare = sender_bare
        self.ready = asyncio.get_running_loop().create_future()
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("presence_available", self.on_presence)
        self.add_event_handler("message", self.on_message)

    def on_session_start(self, _event):
        if not self.is_secure():
            self.fail("session started without TLS")
            return
        self.send_presence()

    def is_secure(self):
        return self.transport is not None and \
            self.transport.get_extra_info("ssl_object") is not None

    def on_presence(self, pres):
        # The server echoes our own initial presence: we are available.
        if pres["from"] == self.boundjid and not self.ready.done():
            self.ready.set_result(True)

    def on_message(self, msg):
        if msg["type"] == "error":
            self.fail(f"error message: {msg['error']['condition']}")
            return
        if msg["body"] != self.args.body:
            logging.info("receiver: ignoring message %r", msg["body"])
            return
        if msg["from"].bare != self.sender_bare:
            self.fail(f"message from {msg['from']}, want {self.sender_bare}")
            return
        if msg["type"] != "chat":
            self.fail(f"message of type {msg['type']!r}, want 'chat'")
            return
        print(f"OK: {self.boundjid} received {msg['body']!r} from {msg['from']}")
        self.outcome.succeed()


class Sender(Client):
    def __init__(self, args, outcome, receiver_bare):
        super().__init__("sender", f"{args.sender}@{args.domain}",
                         args.sender_password, args, outcome)
        self.receiver_bare = receiver_bare
        self.registered = False
        if not args.no_register:
            # With a 'register' handler, xep_0077 registers when the
            # server offers the feature (not forced: a server that does not
            # advertise it must fail the test); SASL then follows on the
            # same stream with the same credentials.
            self.register_plugin("xep_0077")
            self.add_event_handler("register", self.on_register)
            # slixmpp 1.8.3 holds back every stanza but bind and session
            # IQs until the session starts, so its own XEP-0077 client
            # (which registers before SASL) never sends the registration
            # IQs. Later slixmpp versions let register IQs through; until
            # then, let everything through while registering (the switch
            # is the one slixmpp's own test suite uses).
            self._always_send_everything = True
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("message", self.on_message)

    async def on_register(self, _form):
        iq = self.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = self.boundjid.user
        iq["register"]["password"] = self.password
        try:
            await iq.send(timeout=self.args.timeout)
        except IqError as err:
            self.fail(f"in-band registration refused: {err.iq['error']['condition']}"
                      f" {err.iq['error']['text']}")
            return
        except IqTimeout:
            self.fail("in-band registration timed out")
            return
        self.registered = True
        self._always_send_everything = False
        print(f"registered {self.boundjid.bare} in band")

    def on_session_start(self, _event):
        if not self.args.no_register and not self.registered:
            self.fail("logged in without registering (no register stream feature?)")
            return
        self.send_message(mto=self.receiver_bare, mbody=self.args.body, mtype="chat")

    def on_message(self, msg):
        if msg["type"] == "error":
            self.fail(f"message bounced: {msg['error']['condition']} {msg['error']['text']}")


async def run(args):
    loop = asyncio.get_running_loop()
    outcome = Outcome(loop)
    sender_bare = f"{args.sender}@{args.domain}"
    receiver_bare = f"{args.receiver}@{args.domain}"
    clients = []
    try:
        async with asyncio.timeout(args.timeout):
            receiver = Receiver(args, outcome, sender_bare)
            clients.append(receiver)
            receiver.connect(address=(args.host, args.port))
            done, _ = await asyncio.wait({receiver.ready, outcome.future},
                                         return_when=asyncio.FIRST_COMPLETED)
            if not outcome.future.done():
                sender = Sender(args, outcome, receiver_bare)
                clients.append(sender)
                sender.connect(address=(args.host, args.port))
            reason = await outcome.future
    except TimeoutError:
        stage = "the receiver to become available"
        if len(clients) > 1:
            stage = "the message"
        reason = f"timed out after {args.timeout}s waiting for {stage}"
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
    p.add_argument("--sender", required=True)
    p.add_argument("--sender-password", required=True)
    p.add_argument("--no-register", action="store_true",
                   help="the sender's account exists: log in only")
    p.add_argument("--receiver", required=True)
    p.add_argument("--receiver-password", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--mechanism", default=None,
                   help="the only SASL mechanism to use (default: slixmpp's choice)")
    p.add_argument("--tls-max", choices=("1.2", "1.3"), default="1.3")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())

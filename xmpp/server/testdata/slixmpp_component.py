#!/usr/bin/env python3
"""Interoperability check: a slixmpp external component (XEP-0114,
slixmpp's ComponentXMPP) serves a domain through Switchboard, and a
slixmpp client talks to it.

Run by TestSlixmppComponent (xmpp/server/interop_component_test.go)
against a server that servertest started:

    slixmpp_component.py --host 127.0.0.1 --port 5222 --ca tls-cert.pem \
        --domain localhost --user alice --password pw \
        --component gw.localhost --component-port 5347 --secret s

1. The component connects to --component-port and completes the
   handshake with --secret.
2. The user asks the component for its service discovery information
   (XEP-0030), which slixmpp's xep_0030 plugin answers on the component's
   side: the identity the component registered comes back.
3. The user sends a chat message to echo@COMPONENT; the component answers
   from echo@COMPONENT/bot with the body reversed, which the user receives.

Prints "OK ..." lines and exits 0; any failure (TLS, authentication, the
handshake, an error answer, a wrong reply, the --timeout) exits 1 with
"FAIL: reason". Exit status 2 means slixmpp cannot be imported.

Tested with slixmpp 1.8.3 (Debian bookworm).
"""

import asyncio
import sys

from slixmpp_common import Client, finish, run_scenario, slixmpp
from slixmpp.exceptions import IqError


class Echo(slixmpp.ComponentXMPP):
    """A component answering each chat message with its body reversed."""

    def __init__(self, args, outcome):
        super().__init__(args.component, args.secret, args.host, args.component_port)
        self.outcome = outcome
        self.expect_disconnect = False
        self.register_plugin("xep_0030")
        self["xep_0030"].add_identity(category="gateway", itype="pstn", name="Echo gateway")
        self.ready = asyncio.get_running_loop().create_future()
        self.add_event_handler("session_start", lambda _e: self.ready.done() or self.ready.set_result(True))
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("stream_error", lambda e: outcome.fail(f"component: stream error: {e['condition']}"))
        self.add_event_handler("connection_failed", lambda e: outcome.fail(f"component: connection failed: {e}"))
        self.add_event_handler("disconnected", self.on_disconnected)

    def on_disconnected(self, reason):
        if not self.expect_disconnect:
            self.outcome.fail(f"component: disconnected: {reason}")

    def on_message(self, msg):
        if msg["type"] == "error" or not msg["body"]:
            return
        reply = self.make_message(mto=msg["from"], mfrom=f"{msg['to'].bare}/bot", mbody=msg["body"][::-1], mtype="chat")
        reply.send()


async def scenario(args, outcome):
    echo = Echo(args, outcome)
    echo.connect(args.host, int(args.component_port))
    await echo.ready
    print("OK: the component completed its handshake")

    user = Client("user", args.user, args.password, args, outcome, plugins=("xep_0030",))
    user.connect()
    await user.ready
    try:
        info = await user["xep_0030"].get_info(jid=args.component, timeout=10)
    except IqError as e:
        outcome.fail(f"disco#info of the component: {e.iq['error']['condition']}")
        return
    identities = [(i[0], i[1], i[3]) for i in info["disco_info"]["identities"]]
    if ("gateway", "pstn", "Echo gateway") not in identities:
        outcome.fail(f"disco#info of the component: identities {identities}")
        return
    print("OK: the component answered disco#info")

    body = "hello component"
    user.send_message(mto=f"echo@{args.component}", mbody=body, mtype="chat")
    sender = await user.receive(body[::-1])
    if sender != f"echo@{args.component}/bot":
        outcome.fail(f"the echo came from {sender}")
        return
    print(f"OK: the echo came from {sender}")
    echo.expect_disconnect = True
    finish(outcome, user, echo)


if __name__ == "__main__":
    sys.exit(run_scenario(scenario, ["host", "ca", "domain", "user", "password", "component", "component-port", "secret"]))

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
import sys

from slixmpp_common import Client, finish, run_scenario


async def scenario(args, outcome):
    c1 = Client("client 1", args.user1, args.password1, args, outcome, plugins=("xep_0198",))
    c2 = Client("client 2", args.user2, args.password2, args, outcome)
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
    finish(outcome, c1, c2)


if __name__ == "__main__":
    sys.exit(run_scenario(scenario, ("host", "ca", "domain", "user1", "password1", "user2", "password2", "body")))

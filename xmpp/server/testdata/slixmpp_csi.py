#!/usr/bin/env python3
"""Interoperability check: slixmpp's Client State Indication (XEP-0352)
against Switchboard.

Run by TestSlixmppCSI (xmpp/server/interop_csi_test.go) against a server
that servertest started, where the two users are mutual contacts:

    slixmpp_csi.py --host 127.0.0.1 --port 5222 --ca tls-cert.pem \
        --domain localhost --user1 alice --password1 pw1 \
        --user2 bob --password2 pw2 --body hello-123

1. Client 1 logs in with slixmpp's xep_0352 plugin, which finds CSI among
   the stream features; client 2 logs in, and client 1 sees it available.
2. Client 1 says it is inactive (and pings the server, which answers after
   handling that). Client 2 changes its status three times, then sends
   client 1 a message. Client 1 sees the third status alone, before the
   message.
3. Client 1 says it is active again; client 2's next status reaches it
   without a message to carry it.

Prints "OK ..." lines and exits 0; any failure (TLS, authentication, CSI
not offered, a status too many or missing, a stream error, the --timeout)
exits 1 with "FAIL: reason". Exit status 2 means slixmpp cannot be
imported.

Tested with slixmpp 1.8.3 (Debian bookworm).
"""

import asyncio
import sys

from slixmpp_common import Client, finish, run_scenario


def drain(queue):
    """What the queue holds now."""
    got = []
    while not queue.empty():
        got.append(queue.get_nowait())
    return got


async def scenario(args, outcome):
    c1 = Client("client 1", args.user1, args.password1, args, outcome, plugins=("xep_0352", "xep_0199"))
    c2 = Client("client 2", args.user2, args.password2, args, outcome, plugins=("xep_0199",))
    statuses = asyncio.Queue()
    peer = f"{args.user2}@{args.domain}"

    def on_presence(pres):
        if pres["from"].bare == peer:
            statuses.put_nowait(pres["status"])

    c1.add_event_handler("presence_available", on_presence)
    csi = c1.plugin["xep_0352"]

    c1.connect()
    await c1.ready
    if not csi.enabled:
        c1.fail("CSI not among the stream features")
        return
    print("OK: client 1 found CSI among the stream features")
    c2.connect()
    await c2.ready
    if (first := await statuses.get()) != "":
        c1.fail(f"client 2's initial presence has status {first!r}")
        return

    csi.send_inactive()
    await c1.plugin["xep_0199"].ping(jid=args.domain)
    for status in ("s1", "s2", "s3"):
        c2.send_presence(pstatus=status)
    c2.send_message(mto=c1.boundjid, mbody=args.body, mtype="chat")
    await c1.receive(args.body)
    if (seen := drain(statuses)) != ["s3"]:
        c1.fail(f"inactive, saw the statuses {seen} before the message, want ['s3']")
        return
    print("OK: inactive, client 1 saw the latest status alone, with the message")

    csi.send_active()
    await c1.plugin["xep_0199"].ping(jid=args.domain)
    c2.send_presence(pstatus="s4")
    if (got := await statuses.get()) != "s4":
        c1.fail(f"active, saw the status {got!r}, want 's4'")
        return
    print("OK: active, client 1 saw the next status at once")
    finish(outcome, c1, c2)


if __name__ == "__main__":
    sys.exit(run_scenario(scenario, ("host", "ca", "domain", "user1", "password1", "user2", "password2", "body")))

#!/usr/bin/env python3
"""Interoperability check: slixmpp's private XML storage (XEP-0049) and
the bookmarks kept in it (XEP-0048) against Switchboard.

Run by TestSlixmppPrivate (xmpp/server/interop_private_test.go) against
a server that servertest started:

    slixmpp_private.py --host 127.0.0.1 --port 5222 --ca tls-cert.pem \
        --domain localhost --user alice --password pw \
        --other bob --other-password pw2 --room lobby@conference.localhost

1. The user's first client ("desk") stores bookmarks with xep_0048 in
   private storage (xep_0049): the room, with a nickname and autojoin.
2. Its second client ("phone") reads them back: the same room, nickname
   and autojoin.
3. Another user asking for the first user's private XML is refused with
   forbidden.
4. The phone stores bookmarks with a second room; the desk reads both.

Prints "OK ..." lines and exits 0; any failure (TLS, authentication, an
error answer, a missing or wrong bookmark, the --timeout) exits 1 with
"FAIL: reason". Exit status 2 means slixmpp cannot be imported.

Tested with slixmpp 1.8.3 (Debian bookworm).
"""

import sys

from slixmpp_common import Client, finish, run_scenario
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0048.stanza import Bookmarks

PLUGINS = ("xep_0049", "xep_0048")


def rooms(result):
    """The (jid, nick, autojoin) of the bookmarked rooms in a result."""
    return sorted((str(c["jid"]), c["nick"], c["autojoin"]) for c in result["private"]["bookmarks"]["conferences"])


async def scenario(args, outcome):
    desk = Client("desk", args.user, args.password, args, outcome, plugins=PLUGINS)
    phone = Client("phone", args.user, args.password, args, outcome, plugins=PLUGINS)
    other = Client("other", args.other, args.other_password, args, outcome, plugins=PLUGINS)
    for c in (desk, phone, other):
        c.connect()
        await c.ready
    try:
        await steps(args, outcome, desk, phone, other)
    except IqError as e:
        outcome.fail(f"error answer: {e.iq['error']['condition']} {e.iq['error']['text']}")


async def steps(args, outcome, desk, phone, other):
    marks = Bookmarks()
    marks.add_conference(args.room, "Alice", name="Lobby", autojoin=True)
    await desk["xep_0048"].set_bookmarks(marks)
    print("OK: the desk stored its bookmarks")

    got = rooms(await phone["xep_0048"].get_bookmarks())
    if got != [(args.room, "Alice", True)]:
        outcome.fail(f"the phone read {got}")
        return
    print(f"OK: the phone read the bookmark of {args.room}")

    iq = other.make_iq_get(ito=f"{args.user}@{args.domain}")
    iq["private"].enable("bookmarks")
    try:
        await iq.send()
        outcome.fail("another user read the private XML")
        return
    except IqError as e:
        if e.iq["error"]["condition"] != "forbidden":
            outcome.fail(f"another user's request: {e.iq['error']['condition']}, want forbidden")
            return
    print("OK: another user is forbidden")

    second = "support@" + args.room.split("@", 1)[1]
    marks = Bookmarks()
    marks.add_conference(args.room, "Alice", name="Lobby", autojoin=True)
    marks.add_conference(second, "Al", name="Support")
    await phone["xep_0048"].set_bookmarks(marks)
    got = rooms(await desk["xep_0048"].get_bookmarks())
    if got != sorted([(args.room, "Alice", True), (second, "Al", False)]):
        outcome.fail(f"the desk read {got} after the phone's change")
        return
    print("OK: the desk read the phone's change")
    finish(outcome, desk, phone, other)


if __name__ == "__main__":
    sys.exit(run_scenario(scenario, ("host", "ca", "domain", "user", "password", "other", "other-password", "room")))

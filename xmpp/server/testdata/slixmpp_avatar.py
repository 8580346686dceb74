#!/usr/bin/env python3
"""Interoperability check: avatar conversion (XEP-0398) between a client
that publishes its avatar with XEP-0084 and one that knows only vCard
avatars (XEP-0054, XEP-0153), both slixmpp, against Switchboard.

Run by TestSlixmppAvatar (xmpp/server/interop_avatar_test.go) against a
server that servertest started, with the two users subscribed to each
other's presence:

    slixmpp_avatar.py --host 127.0.0.1 --port 5222 --ca tls-cert.pem \
        --domain localhost --user alice --password pw \
        --other bob --other-password pw2

1. The user's client ("phone", xep_0084) publishes a PNG as its avatar:
   the data, then the metadata, and sends presence again.
2. The other user's client ("desk", xep_0054 and xep_0153) sees the
   image's hash in that presence and reads the image in the user's vCard.
3. The desk sets its own avatar in its vCard (xep_0153's set_avatar); the
   phone reads it with xep_0084: the metadata names it, the data is it.

Prints "OK ..." lines and exits 0; any failure (TLS, authentication, an
error answer, a missing or wrong image or hash, the --timeout) exits 1
with "FAIL: reason". Exit status 2 means slixmpp cannot be imported.

Tested with slixmpp 1.8.3 (Debian bookworm).
"""

import asyncio
import hashlib
import struct
import sys
import zlib

from slixmpp_common import Client, finish, run_scenario
from slixmpp.exceptions import IqError

PHONE = ("xep_0030", "xep_0060", "xep_0163", "xep_0084")
DESK = ("xep_0054", "xep_0153")


def png(width, height, grey):
    """A PNG of one grey level."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes([grey]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


async def scenario(args, outcome):
    phone = Client("phone", args.user, args.password, args, outcome, plugins=PHONE)
    desk = Client("desk", args.other, args.other_password, args, outcome, plugins=DESK)
    for c in (phone, desk):
        c.connect()
        await c.ready
    try:
        await steps(args, outcome, phone, desk)
    except IqError as e:
        outcome.fail(f"error answer: {e.iq['error']['condition']} {e.iq['error']['text']}")
    except Exception as e:  # a stanza interface slixmpp lacks, say
        outcome.fail(f"{type(e).__name__}: {e}")


async def steps(args, outcome, phone, desk):
    user = f"{args.user}@{args.domain}"
    other = f"{args.other}@{args.domain}"
    image = png(4, 3, 200)
    image_id = hashlib.sha1(image).hexdigest()

    hashes = asyncio.Queue()

    def on_update(pres):
        if pres["from"].bare == user:
            hashes.put_nowait(pres["vcard_temp_update"]["photo"])

    desk.add_event_handler("vcard_avatar_update", on_update)

    await phone["xep_0084"].publish_avatar(image)
    await phone["xep_0084"].publish_avatar_metadata(
        [{"id": image_id, "type": "image/png", "bytes": str(len(image)), "width": "4", "height": "3"}])
    print("OK: the phone published its avatar")
    phone.send_presence()
    while True:
        got = await hashes.get()
        if got == image_id:
            break
    print("OK: the desk saw the avatar's hash in presence")

    card = (await desk["xep_0054"].get_vcard(user))["vcard_temp"]
    if card["PHOTO"]["BINVAL"] != image or card["PHOTO"]["TYPE"] != "image/png":
        outcome.fail(f"the desk read a PHOTO of {len(card['PHOTO']['BINVAL'] or b'')} bytes, type {card['PHOTO']['TYPE']!r}")
        return
    print("OK: the desk read the avatar in the vCard")

    image2 = png(2, 2, 30)
    image2_id = hashlib.sha1(image2).hexdigest()
    await desk["xep_0153"].set_avatar(avatar=image2, mtype="image/png")
    print("OK: the desk set its avatar in its vCard")

    meta = await phone["xep_0060"].get_items(other, "urn:xmpp:avatar:metadata")
    ns = "{urn:xmpp:avatar:metadata}"
    infos = [i.attrib for i in meta.xml.iter(ns + "info")]
    if len(infos) != 1 or infos[0].get("id") != image2_id or infos[0].get("type") != "image/png" or infos[0].get("bytes") != str(len(image2)):
        outcome.fail(f"the phone read the metadata {infos}")
        return
    data = await phone["xep_0084"].retrieve_avatar(other, image2_id)
    if data["pubsub"]["items"]["item"]["avatar_data"]["value"] != image2:
        outcome.fail("the phone read other data than the desk's image")
        return
    print("OK: the phone read the desk's avatar")
    finish(outcome, phone, desk)


if __name__ == "__main__":
    sys.exit(run_scenario(scenario, ("host", "ca", "domain", "user", "password", "other", "other-password")))

#!/usr/bin/env python3
"""Interoperability check: slixmpp's vCards (XEP-0054) and directory
search (XEP-0055) against Switchboard.

Run by TestSlixmppDirectory (xmpp/server/interop_directory_test.go)
against a server that servertest started, where --peer has set a vCard:

    slixmpp_directory.py --host 127.0.0.1 --port 5222 --ca tls-cert.pem \
        --domain localhost --user alice --password pw \
        --peer bob --peer-name "Bob Builder" --peer-ext 5678

1. The client publishes its own vCard with xep_0054 (a full name, a given
   and family name, a department and a work extension) and reads it back
   from the server.
2. It reads the peer's vCard: the peer's full name.
3. Service discovery on the domain lists jabber:iq:search.
4. It asks the domain for the search form (xep_0055's stanzas, XEP-0004
   forms), which has an extension field, submits a search by the peer's
   extension and finds the peer's JID and name.

Prints "OK ..." lines and exits 0; any failure (TLS, authentication, an
error answer, a missing field or result, the --timeout) exits 1 with
"FAIL: reason". Exit status 2 means slixmpp cannot be imported.

Tested with slixmpp 1.8.3 (Debian bookworm).
"""

import asyncio
import ssl
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

from slixmpp_common import run_scenario, slixmpp
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0054.stanza import VCardTemp

EXTENSION = "{urn:switchboard:directory:0}extension"


async def scenario(args, outcome):
    c = slixmpp.ClientXMPP(f"{args.user}@{args.domain}", args.password)
    c.ca_certs = Path(args.ca)
    c.default_domain = args.domain
    c.use_ipv6 = False
    # slixmpp 1.8.3 binds SCRAM-*-PLUS to tls-unique, which TLS 1.3 lacks
    # (see slixmpp_chat.py).
    c.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2

    async def dns(domain, port=None):
        return [(args.domain, args.host, args.port)]

    c.get_dns_records = dns
    for plugin in ("xep_0030", "xep_0004", "xep_0054", "xep_0055"):
        c.register_plugin(plugin)
    started = asyncio.get_running_loop().create_future()
    c.add_event_handler("session_start", lambda _e: started.done() or started.set_result(True))
    c.add_event_handler("connection_failed", lambda e: outcome.fail(f"connection failed: {e}"))
    c.add_event_handler("ssl_invalid_chain", lambda e: outcome.fail(f"certificate not trusted: {e}"))
    c.add_event_handler("failed_all_auth", lambda _e: outcome.fail("authentication failed"))
    c.connect()
    await started
    try:
        await steps(c, args, outcome)
    except IqError as e:
        outcome.fail(f"error answer: {e.iq['error']['condition']} {e.iq['error']['text']}")
    finally:
        c.disconnect()


async def steps(c, args, outcome):
    own = f"{args.user}@{args.domain}"
    card = VCardTemp(xml=ET.fromstring(
        "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN>"
        "<N><FAMILY>Liddell</FAMILY><GIVEN>Alice</GIVEN></N>"
        "<ORG><ORGNAME>Example</ORGNAME><ORGUNIT>Sales</ORGUNIT></ORG>"
        "<TEL><WORK/><VOICE/><NUMBER>1234</NUMBER></TEL></vCard>"))
    await c["xep_0054"].publish_vcard(card)
    got = await c["xep_0054"].get_vcard(own, local=False)
    if got["vcard_temp"]["FN"] != "Alice Liddell":
        outcome.fail(f"own vCard read back: {got}")
        return
    print(f"OK: published and read back the vCard of {own}")

    peer = f"{args.peer}@{args.domain}"
    got = await c["xep_0054"].get_vcard(peer, local=False)
    if got["vcard_temp"]["FN"] != args.peer_name:
        outcome.fail(f"peer's vCard: {got}")
        return
    print(f"OK: read the vCard of {peer}: {args.peer_name}")

    info = await c["xep_0030"].get_info(jid=args.domain)
    if "jabber:iq:search" not in info["disco_info"]["features"]:
        outcome.fail(f"no jabber:iq:search in {info}")
        return
    print("OK: the domain offers jabber:iq:search")

    iq = c.make_iq_get(ito=args.domain)
    iq.enable("search")
    form = (await iq.send())["search"]["form"]
    if EXTENSION not in form.get_fields():
        outcome.fail(f"no extension field in the search form: {form}")
        return
    print("OK: the search form has the extension field")

    iq = c["xep_0055"].make_search_iq(ito=args.domain)
    iq["search"]["form"].add_field(EXTENSION, value=args.peer_ext)
    res = (await iq.send())["search"]["form"]
    found = [(str(item["jid"]), item.get("{urn:switchboard:directory:0}name")) for item in res["items"]]
    if found != [(peer, args.peer_name)]:
        outcome.fail(f"search by extension {args.peer_ext} found {found}")
        return
    print(f"OK: the search by extension found {found[0][0]} ({found[0][1]})")
    outcome.succeed()


if __name__ == "__main__":
    sys.exit(run_scenario(scenario, ("host", "ca", "domain", "user", "password", "peer", "peer-name", "peer-ext")))

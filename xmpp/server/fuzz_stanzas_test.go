package server_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// fuzzTargets are the addresses a fuzzed stanza goes to, by index: the
// server's own handlers, the sender's account, another account, the room
// service and a room, a domain served nowhere.
var fuzzTargets = []string{
	"",
	"localhost",
	"alice@localhost",
	"alice@localhost/fuzz", // the sender itself: an IQ request gets no answer
	"bob@localhost",
	"bob@localhost/desk",
	"conference.localhost",
	"room@conference.localhost",
	"room@conference.localhost/nick",
	"localhost/res",
	"example.net",
}

// fuzzSelf is fuzzTargets' index of the sender's own full JID.
const fuzzSelf = 3

// fuzzStanza is the stanza a fuzz input stands for: kind picks iq, message
// or presence, to one of fuzzTargets, typ the type attribute (none if
// empty) and payload the children, as XML text.
func fuzzStanza(kind, to uint8, typ, payload string) (stanza, name string) {
	name = [...]string{"iq", "message", "presence"}[kind%3]
	target := fuzzTargets[int(to)%len(fuzzTargets)]
	b := []byte("<" + name + " id='fz'")
	for _, a := range [...][2]string{{"to", target}, {"type", typ}} {
		if a[1] != "" {
			b = append(b, " "+a[0]+"='"...)
			b = append(wire.AppendEscapedAttr(b, a[1]), '\'')
		}
	}
	b = append(b, '>')
	b = append(b, payload...)
	b = append(b, "</"+name+">"...)
	return string(b), name
}

// FuzzClientStanzas sends one stanza a client might send, over a real
// stream to a server started for the test, and checks that the server
// answers it as RFC 6120 requires: an IQ request gets its result or error
// (§8.2.3), the stream goes on (a ping after it is answered) or ends with
// a stream error (§4.9), and the server still takes logins. The modules'
// parsers of what clients send (rosters, blocking, personal eventing,
// private storage, push services, vCards, archives, rooms, search,
// commands, uploads, receipts, carbons, presence) are reached through the
// router, as in production. Input that is not well-formed XML is the stream parser's
// (c2s FuzzIngress); in-band registration is left out, since it can
// change or remove the account every input logs in with. Every input of a
// fuzzing worker goes to the same server and account, so what earlier
// inputs stored (roster items, blocks, nodes, rooms, offline messages)
// stays: a failure found while fuzzing may need them, and may not come
// back when its input alone is run again.
func FuzzClientStanzas(f *testing.F) {
	s := servertest.Start(f)
	s.AddUser(f, "alice", ftPassword)
	s.AddUser(f, "bob", ftPassword)
	seeds := []struct {
		kind, to uint8
		typ      string
		payload  string
	}{
		{0, 0, "get", "<query xmlns='jabber:iq:roster' ver='x'/>"},
		{0, 0, "set", "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob' subscription='both'><group>a</group><group>a</group></item></query>"},
		{0, 0, "set", "<query xmlns='jabber:iq:roster'><item jid='@@' subscription='remove'/><item/></query>"},
		{0, 0, "set", "<block xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/><item jid=''/></block>"},
		{0, 0, "set", "<unblock xmlns='urn:xmpp:blocking'/>"},
		{0, 0, "get", "<blocklist xmlns='urn:xmpp:blocking'/>"},
		{0, 0, "set", "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='room@conference.localhost' autojoin='maybe'/></storage></query>"},
		{0, 0, "get", "<query xmlns='jabber:iq:private'><x xmlns='jabber:iq:private'/></query>"},
		{0, 0, "set", "<enable xmlns='urn:xmpp:push:0' jid='example.net' node='n'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>s</value></field></x></enable>"},
		{0, 2, "set", "<disable xmlns='urn:xmpp:push:0' jid='example.net'/>"},
		{0, 0, "set", "<enable xmlns='urn:xmpp:push:0' jid='@@'><x xmlns='jabber:x:data'/></enable>"},
		{0, 2, "set", "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>!!</BINVAL></PHOTO><TEL><WORK/><NUMBER>1</NUMBER></TEL></vCard>"},
		{0, 4, "get", "<vCard xmlns='vcard-temp'/>"},
		{0, 2, "set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:avatar:metadata'><item id='a'><metadata xmlns='urn:xmpp:avatar:metadata'/></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='pubsub#access_model'><value>nobody</value></field></x></publish-options></pubsub>"},
		{0, 2, "set", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='n'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#max_items'><value>-1</value></field></x></configure></pubsub>"},
		{0, 4, "get", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:data' max_items='x'/></pubsub>"},
		{0, 2, "set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='n' notify='1'><item/></retract></pubsub>"},
		{0, 0, "set", "<query xmlns='urn:xmpp:mam:2' queryid='q'><x xmlns='jabber:x:data' type='submit'><field var='start'><value>yesterday</value></field><field var='with'><value>@</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>-5</max><before/></set></query>"},
		{0, 0, "set", "<prefs xmlns='urn:xmpp:mam:2' default='sometimes'><always><jid/></always></prefs>"},
		{0, 1, "get", "<query xmlns='http://jabber.org/protocol/disco#info' node='http://x#'/>"},
		{0, 6, "get", "<query xmlns='http://jabber.org/protocol/disco#items'/>"},
		{0, 7, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_maxusers'><value>0</value></field></x></query>"},
		{0, 7, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='owner' jid='nobody'/><item role='moderator'/></query>"},
		{0, 1, "set", "<command xmlns='http://jabber.org/protocol/commands' node='x' action='complete'><x xmlns='jabber:x:data' type='submit'/></command>"},
		{0, 1, "get", "<query xmlns='jabber:iq:search'/>"},
		{0, 1, "set", "<query xmlns='jabber:iq:search'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>jabber:iq:search</value></field><field var='fn'><value>*</value></field></x></query>"},
		{0, 1, "get", "<request xmlns='urn:xmpp:http:upload:0' filename='../x' size='-1'/>"},
		{0, 0, "set", "<enable xmlns='urn:xmpp:carbons:2'/><disable xmlns='urn:xmpp:carbons:2'/>"},
		{0, 5, "get", "<ping xmlns='urn:xmpp:ping'/>"},
		{0, 1, "get", "<time xmlns='urn:xmpp:time'/>"},
		{0, 4, "get", "<query xmlns='jabber:iq:last'/>"},
		{0, 1, "get", "<query xmlns='jabber:iq:version'/>"},
		{0, 1, "get", "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>"},
		{0, 10, "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"},
		{0, 1, "get", ""},
		{0, 1, "result", ""},
		{1, 4, "chat", "<body>hi</body><request xmlns='urn:xmpp:receipts'/><store xmlns='urn:xmpp:hints'/><private xmlns='urn:xmpp:carbons:2'/>"},
		{1, 7, "", "<x xmlns='http://jabber.org/protocol/muc#user'><invite to='bob@localhost'><reason>r</reason></invite><invite/></x>"},
		{1, 7, "groupchat", "<subject>s</subject>"},
		{1, 5, "error", "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"},
		{1, 4, "chat", "<displayed xmlns='urn:xmpp:chat-markers:0' id=''/><composing xmlns='http://jabber.org/protocol/chatstates'/>"},
		{2, 0, "", "<priority>500</priority><show>dnd</show><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='bad'/>"},
		{2, 8, "", "<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='-1' since='then'/><password/></x>"},
		{2, 4, "subscribe", "<status>please</status>"},
		{2, 4, "probe", ""},
		{2, 5, "unavailable", "<x xmlns='vcard-temp:x:update'><photo/></x>"},
		{2, 0, "bogus", ""},
	}
	for _, sd := range seeds {
		f.Add(sd.kind, sd.to, sd.typ, sd.payload)
	}
	f.Fuzz(func(t *testing.T, kind, to uint8, typ, payload string) {
		st, name := fuzzStanza(kind, to, typ, payload)
		el, err := wire.Parse([]byte(st), wire.NewScope(wire.NSClient))
		if err != nil {
			t.Skip("not a well-formed stanza")
		}
		if uses(el, "jabber:iq:register") {
			t.Skip("in-band registration")
		}
		r := fuzzLogin(t, s)
		r.Write(t, st+"<iq type='get' id='fz-ping' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
		answer := name == "iq" && (typ == "get" || typ == "set") && int(to)%len(fuzzTargets) != fuzzSelf
		_ = r.Conn.SetReadDeadline(time.Now().Add(ftWait))
		for pinged := false; !pinged || answer; {
			el, err := r.Read()
			if err != nil {
				t.Fatalf("%s: stream ended without a stream error: %v", st, err)
			}
			switch {
			case el.Space == wire.NSStream && el.Name == "error":
				// The stream may end for what was sent, but not
				// for a fault of ours (a panic recovered is
				// internal-server-error); the server must still
				// take logins.
				if el.Child("internal-server-error", "urn:ietf:params:xml:ns:xmpp-streams") != nil {
					t.Fatalf("%s: %s", st, el)
				}
				fuzzLogin(t, s).Write(t, "</stream:stream>")
				return
			case el.Name != "iq":
			case el.AttrValue("id") == "fz-ping":
				if el.AttrValue("type") != "result" {
					t.Fatalf("%s: ping answered %s", st, el)
				}
				pinged = true
			case el.AttrValue("id") == "fz" && answer:
				switch el.AttrValue("type") {
				case "error":
					// A handler's unexpected error, or a
					// panic recovered.
					if e := el.Child("error", wire.NSClient); e != nil && e.Child("internal-server-error", ftNSStanzas) != nil {
						t.Fatalf("%s: answered %s", st, el)
					}
					answer = false
				case "result":
					answer = false
				default:
					t.Fatalf("%s: answered with %s", st, el)
				}
			}
		}
		r.Write(t, "</stream:stream>")
		// The server's end of the stream follows.
		for {
			if _, err := r.Read(); err != nil {
				if !errors.Is(err, wire.ErrStreamEnd) && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					t.Fatalf("%s: closing: %v", st, err)
				}
				return
			}
		}
	})
}

// uses reports whether el or any element inside it is in namespace ns
// (however its declaration was written: entities, prefixes).
func uses(el *wire.Element, ns string) bool {
	if el.Space == ns {
		return true
	}
	for _, c := range el.Children {
		if uses(c, ns) {
			return true
		}
	}
	return false
}

// fuzzLogin logs alice in as alice@localhost/fuzz over a raw stream.
func fuzzLogin(t *testing.T, s *servertest.Server) *servertest.Raw {
	t.Helper()
	return rtRawLogin(t, s, jid.MustParse("alice@localhost"), ftPassword, "fuzz").Raw
}

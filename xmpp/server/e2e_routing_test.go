package server_test

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// End-to-end routing over real sockets: RFC 6120 §8 and §10, RFC 6121 §4
// and §8.5, and the server's own IQ services.

// TestRoutingChat covers 1:1 messages between accounts and between two
// resources of one account: the server stamps the sender's full JID
// (RFC 6120 §8.1.2.1), keeps 'to' as sent and the payload intact.
func TestRoutingChat(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	bob := s.AddUser(t, "bob", "pw")
	aPhone := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "phone"})
	aLaptop := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "laptop"})
	bPhone := s.MustLogin(t, bob, "pw", servertest.ClientOptions{Resource: "phone"})
	// A message to a bare JID needs an available resource
	// (RFC 6121 §8.5.2.1.1).
	rtOnline(t, bPhone, 0)

	const body = `hi & <3 "ünïcode" ✓`
	const escaped = `hi &amp; &lt;3 &quot;ünïcode&quot; ✓`
	cases := []struct {
		name     string
		from, to *servertest.Client
		addr     string
	}{
		{"to full JID", aPhone, bPhone, "bob@localhost/phone"},
		{"to bare JID", aPhone, bPhone, "bob@localhost"},
		{"reply to full JID", bPhone, aPhone, "alice@localhost/phone"},
		{"between own resources", aPhone, aLaptop, "alice@localhost/laptop"},
		{"between own resources, other way", aLaptop, aPhone, "alice@localhost/phone"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("chat%d", i)
			rtSend(t, tc.from, "<message id='%s' to='%s' type='chat'><body>%s</body></message>", id, tc.addr, escaped)
			el := tc.to.Next(t, wait, rtMatch("message", "", id))
			rtCheck(t, el, rtWant{name: "message", typ: "chat", id: id,
				from: tc.from.JID.String(), to: tc.addr, body: body})
		})
	}
}

// TestRoutingSpoofedFrom covers RFC 6120 §8.1.2.1 and §4.9.3.9: a client
// may only claim its own full or bare JID as 'from'; anything else ends the
// stream with <invalid-from/> and the stanza is not routed.
func TestRoutingSpoofedFrom(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	bob := s.AddUser(t, "bob", "pw")
	bPhone := s.MustLogin(t, bob, "pw", servertest.ClientOptions{Resource: "phone"})

	t.Run("rejected", func(t *testing.T) {
		for _, from := range []string{
			"someone-else@localhost",
			"bob@localhost/phone",
			"alice@localhost/other-resource",
			"alice@example.org",
			"localhost",
		} {
			t.Run(from, func(t *testing.T) {
				r := rtRawLogin(t, s, alice, "pw", "raw")
				r.Write(t, fmt.Sprintf("<message from='%s' to='bob@localhost/phone' type='chat' id='spoof'><body>x</body></message>", from))
				if got := r.StreamError(t); got != "invalid-from" {
					t.Fatalf("stream error %q, want invalid-from", got)
				}
				// The session is unbound before the error is written.
				for _, j := range s.Router().Resources(alice) {
					if j.Equal(r.JID) {
						t.Fatalf("%s still bound after invalid-from", r.JID)
					}
				}
			})
		}
		bPhone.NoMore(t, rtQuiet, rtMatch("message", "", "spoof"))
	})

	aPhone := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "phone"})
	for i, from := range []string{"alice@localhost", "alice@localhost/phone"} {
		t.Run("accepted "+from, func(t *testing.T) {
			id := fmt.Sprintf("own%d", i)
			rtSend(t, aPhone, "<message from='%s' to='bob@localhost/phone' type='chat' id='%s'><body>mine</body></message>", from, id)
			el := bPhone.Next(t, wait, rtMatch("message", "", id))
			rtCheck(t, el, rtWant{name: "message", typ: "chat", id: id, body: "mine",
				from: "alice@localhost/phone", to: "bob@localhost/phone"})
		})
	}
}

// TestRoutingLocalUser is the routing table of RFC 6121 §8.5 (and RFC 6120
// §10.4 for a remote domain), with offline storage (XEP-0160) taking the
// messages §8.5.2.2.1 lets the server store. Each case has its own sender
// and recipient accounts on one server, so the cases run in parallel.
func TestRoutingLocalUser(t *testing.T) {
	// Parallel cases hold many connections from 127.0.0.1 at once.
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Limits.MaxConnectionsPerIP = 1000 }))

	// res is one session of the recipient: available with a priority, or
	// only connected (no initial presence).
	type res struct {
		name      string
		available bool
		prio      int
	}
	avail := func(name string, prio int) res { return res{name, true, prio} }
	connected := func(name string) res { return res{name: name} }

	const (
		chat      = "<message to='%[1]s' id='%[2]s' type='chat'><body>b</body></message>"
		normal    = "<message to='%[1]s' id='%[2]s' type='normal'><body>b</body></message>"
		untyped   = "<message to='%[1]s' id='%[2]s'><body>b</body></message>"
		groupchat = "<message to='%[1]s' id='%[2]s' type='groupchat'><body>b</body></message>"
		headline  = "<message to='%[1]s' id='%[2]s' type='headline'><body>b</body></message>"
		errMsg    = "<message to='%[1]s' id='%[2]s' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
		iqGet     = "<iq to='%[1]s' id='%[2]s' type='get'><query xmlns='urn:example:x'/></iq>"
		presence  = "<presence to='%[1]s' id='%[2]s'/>"
		chatState = "<message to='%[1]s' id='%[2]s' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"

		stored  = "stored"
		dropped = "dropped"
	)
	cases := []struct {
		name string
		// rcpt are the recipient's sessions; noAccount means the
		// recipient account does not exist.
		rcpt      []res
		noAccount bool
		// to is appended to the recipient's bare JID when empty or a
		// "/resource", else it is the whole address.
		to     string
		stanza string // format: %[1]s the address, %[2]s the id
		// deliver names the resources that receive the stanza as sent;
		// errCond/errType the error bounced to the sender.
		deliver          []string
		errCond, errType string
		// later is what a resource of the recipient that logs in and
		// sends initial presence afterwards gets: the message from
		// offline storage ("stored", XEP-0160) or nothing ("dropped").
		later string
	}{
		{name: "chat to bare: highest priority only", rcpt: []res{avail("hi", 5), avail("lo", 1)},
			stanza: chat, deliver: []string{"hi"}},
		{name: "normal to bare: highest priority only", rcpt: []res{avail("lo", 1), avail("hi", 5)},
			stanza: normal, deliver: []string{"hi"}},
		{name: "untyped to bare: highest priority only", rcpt: []res{avail("hi", 5), avail("lo", 1)},
			stanza: untyped, deliver: []string{"hi"}},
		{name: "chat to bare: equal priorities all receive", rcpt: []res{avail("a", 3), avail("b", 3), avail("c", 1)},
			stanza: chat, deliver: []string{"a", "b"}},
		{name: "chat to bare: negative priority never receives", rcpt: []res{avail("neg", -1), avail("zero", 0)},
			stanza: chat, deliver: []string{"zero"}},
		{name: "chat to bare: only negative priority", rcpt: []res{avail("neg", -1)},
			stanza: chat, later: stored},
		{name: "normal to bare: only negative priority", rcpt: []res{avail("neg", -5)},
			stanza: normal, later: stored},
		{name: "chat to bare: connected without initial presence", rcpt: []res{connected("quiet")},
			stanza: chat, later: stored},
		{name: "chat to bare: offline user", stanza: chat, later: stored},
		{name: "untyped to bare: offline user", stanza: untyped, later: stored},
		{name: "chat state only to bare: offline user", stanza: chatState, later: dropped},
		{name: "chat to unknown user", noAccount: true, stanza: chat, errCond: "service-unavailable", errType: "cancel"},
		{name: "groupchat to bare", rcpt: []res{avail("a", 0)},
			stanza: groupchat, errCond: "service-unavailable", errType: "cancel"},
		{name: "groupchat to full JID of an unknown resource", rcpt: []res{avail("a", 0)}, to: "/nope",
			stanza: groupchat, errCond: "service-unavailable", errType: "cancel"},
		{name: "headline to bare: all non-negative available", rcpt: []res{avail("hi", 5), avail("lo", 1), avail("neg", -1), connected("quiet")},
			stanza: headline, deliver: []string{"hi", "lo"}},
		{name: "headline to bare: no available resource", rcpt: []res{connected("quiet")},
			stanza: headline, later: dropped},
		{name: "headline to bare: offline user", stanza: headline, later: dropped},
		{name: "error message to bare: offline user", stanza: errMsg, later: dropped},
		{name: "groupchat to bare: offline user", stanza: groupchat,
			errCond: "service-unavailable", errType: "cancel", later: dropped},
		{name: "error message to bare: available resource", rcpt: []res{avail("a", 0)}, stanza: errMsg},
		{name: "error message to unknown user", noAccount: true, stanza: errMsg},
		{name: "chat to full JID of a connected resource without presence", rcpt: []res{connected("quiet"), avail("a", 0)}, to: "/quiet",
			stanza: chat, deliver: []string{"quiet"}},
		{name: "chat to full JID of a negative-priority resource", rcpt: []res{avail("neg", -1), avail("a", 0)}, to: "/neg",
			stanza: chat, deliver: []string{"neg"}},
		{name: "chat to full JID of an unknown resource: as bare", rcpt: []res{avail("a", 0), avail("b", 2)}, to: "/nope",
			stanza: chat, deliver: []string{"b"}},
		{name: "chat to full JID of an unknown resource: nobody available", rcpt: []res{connected("quiet")}, to: "/nope",
			stanza: chat, later: stored},
		{name: "headline to full JID of an unknown resource: as bare", rcpt: []res{avail("a", 0), avail("b", 2)}, to: "/nope",
			stanza: headline, deliver: []string{"a", "b"}},
		{name: "error message to full JID of an unknown resource", rcpt: []res{avail("a", 0)}, to: "/nope", stanza: errMsg},
		{name: "iq get to full JID", rcpt: []res{connected("quiet")}, to: "/quiet",
			stanza: iqGet, deliver: []string{"quiet"}},
		{name: "iq get to full JID of an unknown resource", rcpt: []res{avail("a", 0)}, to: "/nope",
			stanza: iqGet, errCond: "service-unavailable", errType: "cancel"},
		{name: "iq get to full JID of an offline user", to: "/nope",
			stanza: iqGet, errCond: "service-unavailable", errType: "cancel"},
		{name: "directed presence to bare: all available", rcpt: []res{avail("hi", 5), avail("neg", -1), connected("quiet")},
			stanza: presence, deliver: []string{"hi", "neg"}},
		{name: "directed presence to full JID of an unknown resource", rcpt: []res{avail("a", 0)}, to: "/nope",
			stanza: presence},
		{name: "chat to another domain", to: "someone@example.org",
			stanza: chat, errCond: "remote-server-not-found", errType: "cancel"},
		{name: "iq get to another domain", to: "example.org",
			stanza: iqGet, errCond: "remote-server-not-found", errType: "cancel"},
		{name: "error message to another domain", to: "someone@example.org", stanza: errMsg},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sender := s.MustLogin(t, s.AddUser(t, fmt.Sprintf("sender%d", i), "pw"), "pw", servertest.ClientOptions{Resource: "s"})
			rcptBare := jid.MustParse(fmt.Sprintf("rcpt%d@localhost", i))
			if !tc.noAccount {
				s.AddUser(t, rcptBare.Localpart(), "pw")
			}
			clients := map[string]*servertest.Client{}
			for _, r := range tc.rcpt {
				c := s.MustLogin(t, rcptBare, "pw", servertest.ClientOptions{Resource: r.name})
				if r.available {
					rtOnline(t, c, r.prio)
				}
				clients[r.name] = c
			}
			to := tc.to
			if to == "" || strings.HasPrefix(to, "/") {
				to = rcptBare.String() + to
			}
			id := fmt.Sprintf("route%d", i)
			stanza := fmt.Sprintf(tc.stanza, to, id)
			name := stanza[1:strings.IndexAny(stanza, " >")]
			typ := ""
			if el, err := wire.Parse([]byte(stanza), wire.NewScope("jabber:client")); err == nil {
				typ = el.AttrValue("type")
			} else {
				t.Fatalf("test stanza %s: %v", stanza, err)
			}
			rtSend(t, sender, stanza)

			for _, r := range tc.deliver {
				el := clients[r].Next(t, wait, rtMatch(name, sender.JID.String(), id))
				rtCheck(t, el, rtWant{name: name, typ: typ, id: id, from: sender.JID.String(), to: to})
			}
			if tc.errCond != "" {
				el := sender.Next(t, wait, rtMatch(name, "", id))
				rtCheck(t, el, rtWant{name: name, typ: "error", id: id, from: to, to: sender.JID.String(),
					errType: tc.errType, errCond: tc.errCond})
			}
			// Nothing else: no bounce, no delivery to other resources,
			// no second copy. One quiet window covers every client.
			sender.NoMore(t, rtQuiet, nil)
			for _, r := range tc.rcpt {
				clients[r.name].NoMore(t, 10*time.Millisecond, rtMatch(name, sender.JID.String(), ""))
			}
			if tc.later == "" {
				return
			}
			// A resource that comes online afterwards: no rtOnline,
			// whose wait for the presence echo would skip a stored
			// message arriving first.
			late := s.MustLogin(t, rcptBare, "pw", servertest.ClientOptions{Resource: "late"})
			rtSend(t, late, "<presence/>")
			if tc.later == dropped {
				late.Next(t, wait, rtMatch("presence", late.JID.String(), ""))
				late.NoMore(t, rtQuiet, rtMatch(name, sender.JID.String(), ""))
				return
			}
			el := late.Next(t, wait, rtMatch(name, sender.JID.String(), id))
			rtCheck(t, el, rtWant{name: name, typ: typ, id: id, from: sender.JID.String(), to: to, body: "b"})
			if d := el.Child("delay", "urn:xmpp:delay"); d == nil || d.AttrValue("from") != "localhost" || d.AttrValue("stamp") == "" {
				t.Fatalf("stored message without an XEP-0203 delay from localhost: %s", el)
			}
			late.NoMore(t, rtQuiet, rtMatch(name, sender.JID.String(), ""))
			for _, r := range tc.rcpt {
				clients[r.name].NoMore(t, 10*time.Millisecond, rtMatch(name, sender.JID.String(), ""))
			}
		})
	}
}

// TestRoutingIQBetweenUsers: an IQ to a full JID is delivered to that
// client and never answered by the server (RFC 6121 §8.5.3.1); the
// response, whatever its type, travels back with the request's id.
func TestRoutingIQBetweenUsers(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	bob := s.AddUser(t, "bob", "pw")
	a := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "phone"})
	b := s.MustLogin(t, bob, "pw", servertest.ClientOptions{Resource: "res"})

	cases := []struct {
		name, typ string
		answer    string // bob's answer: %[1]s id, %[2]s alice's full JID
		want      rtWant // what alice receives (id, from, to filled in)
	}{
		{"get answered with a result", "get",
			"<iq type='result' id='%[1]s' to='%[2]s'><query xmlns='urn:example:x'><answer>42</answer></query></iq>",
			rtWant{name: "iq", typ: "result"}},
		{"set answered with a result", "set",
			"<iq type='result' id='%[1]s' to='%[2]s'/>",
			rtWant{name: "iq", typ: "result"}},
		{"get answered with an error", "get",
			"<iq type='error' id='%[1]s' to='%[2]s'><query xmlns='urn:example:x'/><error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
			rtWant{name: "iq", typ: "error", errType: "cancel", errCond: "feature-not-implemented"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("u2u%d", i)
			rtSend(t, a, "<iq type='%s' to='bob@localhost/res' id='%s'><query xmlns='urn:example:x'/></iq>", tc.typ, id)
			req := b.Next(t, wait, rtMatch("iq", "", id))
			rtCheck(t, req, rtWant{name: "iq", typ: tc.typ, id: id, from: a.JID.String(), to: "bob@localhost/res"})
			if q := req.Child("query", "urn:example:x"); q == nil || len(req.Children) != 1 {
				t.Fatalf("payload not intact: %s", req)
			}
			// The server does not answer on bob's behalf.
			a.NoMore(t, rtQuiet, rtMatch("iq", "", id))

			rtSend(t, b, tc.answer, id, a.JID.String())
			w := tc.want
			w.id, w.from, w.to = id, "bob@localhost/res", a.JID.String()
			resp := a.Next(t, wait, rtMatch("iq", "", id))
			rtCheck(t, resp, w)
			if q := resp.Child("query", "urn:example:x"); q == nil && tc.typ == "get" {
				t.Fatalf("response payload lost: %s", resp)
			} else if q != nil && strings.Contains(tc.answer, "<answer>") && q.ChildText("answer", "urn:example:x") != "42" {
				t.Fatalf("response payload not intact: %s", resp)
			}
		})
	}
}

// TestRoutingIQServerAnswers covers IQs the server answers itself: on a
// user's behalf when sent to a bare JID (RFC 6121 §8.5.2.1.3) or with no
// 'to' (RFC 6120 §10.3.3), and for the domain (§10.5.3). Bob is online
// and available to show that none of these reach his client.
func TestRoutingIQServerAnswers(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	bob := s.AddUser(t, "bob", "pw")
	a := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "phone"})
	b := s.MustLogin(t, bob, "pw", servertest.ClientOptions{Resource: "res"})
	rtOnline(t, b, 1)

	const (
		discoInfo  = "<query xmlns='http://jabber.org/protocol/disco#info'/>"
		discoItems = "<query xmlns='http://jabber.org/protocol/disco#items'/>"
		ping       = "<ping xmlns='urn:xmpp:ping'/>"
		unknown    = "<query xmlns='urn:example:unknown'/>"
	)
	hasIdentity := func(category, typ string) func(*testing.T, *wire.Element) {
		return func(t *testing.T, el *wire.Element) {
			t.Helper()
			q := el.Child("query", "http://jabber.org/protocol/disco#info")
			if q == nil {
				t.Fatalf("no disco#info query in %s", el)
			}
			for _, c := range q.Children {
				if c.Name == "identity" && c.AttrValue("category") == category && c.AttrValue("type") == typ {
					return
				}
			}
			t.Fatalf("no identity %s/%s in %s", category, typ, el)
		}
	}
	cases := []struct {
		name    string
		to      string // "" = no 'to'
		typ     string
		payload string
		// from is the expected 'from' of the answer; an answer to a
		// stanza without 'to' may also omit it (RFC 6120 §8.1.2.1).
		from             string
		result           func(*testing.T, *wire.Element)
		errCond, errType string
	}{
		{name: "disco#info to bare JID", to: "bob@localhost", typ: "get", payload: discoInfo,
			from: "bob@localhost", result: hasIdentity("account", "registered")},
		{name: "disco#info to own bare JID", to: "alice@localhost", typ: "get", payload: discoInfo,
			from: "alice@localhost", result: hasIdentity("account", "registered")},
		{name: "disco#info without to", typ: "get", payload: discoInfo,
			result: hasIdentity("account", "registered")},
		{name: "disco#items to bare JID", to: "bob@localhost", typ: "get", payload: discoItems, from: "bob@localhost",
			result: func(t *testing.T, el *wire.Element) {
				if el.Child("query", "http://jabber.org/protocol/disco#items") == nil {
					t.Fatalf("no disco#items query in %s", el)
				}
			}},
		{name: "ping to bare JID", to: "bob@localhost", typ: "get", payload: ping, from: "bob@localhost",
			result: func(t *testing.T, el *wire.Element) {
				if len(el.Children) != 0 {
					t.Fatalf("ping result with payload: %s", el)
				}
			}},
		{name: "ping without to", typ: "get", payload: ping},
		{name: "ping to the domain", to: "localhost", typ: "get", payload: ping, from: "localhost"},
		{name: "unknown get to bare JID", to: "bob@localhost", typ: "get", payload: unknown,
			from: "bob@localhost", errCond: "service-unavailable", errType: "cancel"},
		{name: "unknown set to bare JID", to: "bob@localhost", typ: "set", payload: unknown,
			from: "bob@localhost", errCond: "service-unavailable", errType: "cancel"},
		{name: "unknown get to the domain", to: "localhost", typ: "get", payload: unknown,
			from: "localhost", errCond: "service-unavailable", errType: "cancel"},
		{name: "unknown get without to", typ: "get", payload: unknown,
			errCond: "service-unavailable", errType: "cancel"},
		{name: "known namespace, wrong type", to: "localhost", typ: "set", payload: ping,
			from: "localhost", errCond: "service-unavailable", errType: "cancel"},
		{name: "get to bare JID of an unknown user", to: "nobody@localhost", typ: "get", payload: discoInfo,
			from: "nobody@localhost", errCond: "service-unavailable", errType: "cancel"},
		{name: "two children to bare JID", to: "bob@localhost", typ: "get", payload: ping + discoInfo,
			from: "bob@localhost", errCond: "bad-request", errType: "modify"},
		{name: "two children to the domain", to: "localhost", typ: "get", payload: ping + ping,
			from: "localhost", errCond: "bad-request", errType: "modify"},
		{name: "two children without to", typ: "set", payload: ping + unknown,
			errCond: "bad-request", errType: "modify"},
		{name: "no child to the domain", to: "localhost", typ: "get",
			from: "localhost", errCond: "bad-request", errType: "modify"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("srv%d", i)
			toAttr := ""
			if tc.to != "" {
				toAttr = " to='" + tc.to + "'"
			}
			rtSend(t, a, "<iq type='%s' id='%s'%s>%s</iq>", tc.typ, id, toAttr, tc.payload)
			el := a.Next(t, wait, rtMatch("iq", "", id))
			w := rtWant{name: "iq", typ: "result", id: id, from: tc.from, to: a.JID.String(),
				errCond: tc.errCond, errType: tc.errType}
			if tc.errCond != "" {
				w.typ = "error"
			}
			if tc.to == "" && el.AttrValue("from") == "alice@localhost" {
				w.from = "alice@localhost" // the other form §8.1.2.1 allows
			}
			rtCheck(t, el, w)
			if tc.result != nil {
				tc.result(t, el)
			}
		})
	}
	b.NoMore(t, rtQuiet, rtFromAccount(alice))
}

// TestRoutingIQInvalid: IQs RFC 6120 §8.2.3 forbids are refused with a
// stanza error by the ingress, and the stream survives.
func TestRoutingIQInvalid(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	a := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "phone"})

	cases := []struct {
		name, raw  string
		to, wantID string
	}{
		// mellium adds an id to everything it sends; write past it.
		{name: "without id", raw: "<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", to: "localhost"},
		{name: "empty id", raw: "<iq type='get' id='' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", to: "localhost"},
		{name: "without type", raw: "<iq id='notype' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", to: "localhost", wantID: "notype"},
		{name: "unknown type", raw: "<iq type='query' id='badtype' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", to: "localhost", wantID: "badtype"},
		{name: "without id or to", raw: "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := io.WriteString(a.Conn(), tc.raw); err != nil {
				t.Fatalf("write: %v", err)
			}
			el := a.Next(t, wait, servertest.Named("iq", "type", "error"))
			rtCheck(t, el, rtWant{name: "iq", typ: "error", from: tc.to, to: a.JID.String(),
				errType: "modify", errCond: "bad-request"})
			if got := el.AttrValue("id"); got != tc.wantID {
				t.Fatalf("id = %q, want %q", got, tc.wantID)
			}
			// The stream survives: a ping is answered.
			id := fmt.Sprintf("after%d", i)
			rtSend(t, a, "<iq type='get' id='%s' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", id)
			rtCheck(t, a.Next(t, wait, rtMatch("iq", "", id)),
				rtWant{name: "iq", typ: "result", id: id, from: "localhost", to: a.JID.String()})
		})
	}
}

// TestRoutingServerServices covers the IQ services of the domain itself:
// XEP-0030 disco, XEP-0092 version, XEP-0202 time.
func TestRoutingServerServices(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	a := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "phone"})
	query := func(t *testing.T, payload string) *wire.Element {
		t.Helper()
		id := fmt.Sprintf("svc-%s", strings.ReplaceAll(t.Name(), "/", "-"))
		rtSend(t, a, "<iq type='get' id='%s' to='localhost'>%s</iq>", id, payload)
		el := a.Next(t, wait, rtMatch("iq", "", id))
		rtCheck(t, el, rtWant{name: "iq", typ: "result", id: id, from: "localhost", to: a.JID.String()})
		if len(el.Children) != 1 {
			t.Fatalf("result without exactly one payload: %s", el)
		}
		return el.Children[0]
	}

	t.Run("disco#info", func(t *testing.T) {
		const ns = "http://jabber.org/protocol/disco#info"
		q := query(t, "<query xmlns='"+ns+"'/>")
		if q.Name != "query" || q.Space != ns {
			t.Fatalf("payload %s", q)
		}
		identities := map[string]bool{}
		features := map[string]bool{}
		for _, c := range q.Children {
			switch c.Name {
			case "identity":
				identities[c.AttrValue("category")+"/"+c.AttrValue("type")] = true
			case "feature":
				features[c.AttrValue("var")] = true
			}
		}
		if !identities["server/im"] {
			t.Errorf("identities %v, want server/im", identities)
		}
		for _, f := range []string{
			"urn:xmpp:ping", "jabber:iq:version", "urn:xmpp:time",
			ns, "http://jabber.org/protocol/disco#items", "jabber:iq:register",
		} {
			if !features[f] {
				t.Errorf("feature %s not advertised (have %v)", f, features)
			}
		}
	})
	t.Run("disco#items", func(t *testing.T) {
		const ns = "http://jabber.org/protocol/disco#items"
		if q := query(t, "<query xmlns='"+ns+"'/>"); q.Name != "query" || q.Space != ns {
			t.Fatalf("payload %s", q)
		}
	})
	t.Run("version", func(t *testing.T) {
		const ns = "jabber:iq:version"
		q := query(t, "<query xmlns='"+ns+"'/>")
		if q.Name != "query" || q.Space != ns {
			t.Fatalf("payload %s", q)
		}
		if got := q.ChildText("name", ns); got != "Switchboard" {
			t.Errorf("name %q, want Switchboard", got)
		}
		if got := q.ChildText("version", ns); got != server.Version {
			t.Errorf("version %q, want %q", got, server.Version)
		}
	})
	t.Run("time", func(t *testing.T) {
		const ns = "urn:xmpp:time"
		before := time.Now()
		q := query(t, "<time xmlns='"+ns+"'/>")
		if q.Name != "time" || q.Space != ns {
			t.Fatalf("payload %s", q)
		}
		utc, err := time.Parse(time.RFC3339, q.ChildText("utc", ns))
		if err != nil || !strings.HasSuffix(q.ChildText("utc", ns), "Z") {
			t.Fatalf("utc %q: %v", q.ChildText("utc", ns), err)
		}
		if utc.Before(before.Add(-time.Second)) || utc.After(time.Now().Add(time.Second)) {
			t.Errorf("utc %s, not now (%s)", utc, before)
		}
		tzo := q.ChildText("tzo", ns)
		if !regexp.MustCompile(`^(?:[+-](?:[01]\d|2[0-3]):[0-5]\d|Z)$`).MatchString(tzo) {
			t.Fatalf("tzo %q is not a XEP-0082 offset", tzo)
		}
		if tzo != "Z" {
			if _, err := time.Parse("-07:00", tzo); err != nil {
				t.Fatalf("tzo %q: %v", tzo, err)
			}
		}
	})
}

// TestRoutingPresenceOwnResources covers RFC 6121 §4.2.2: initial presence
// goes to every available resource of the account, the sender included, and
// to no one else (there are no rosters yet).
func TestRoutingPresenceOwnResources(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	bob := s.AddUser(t, "bob", "pw")
	laptop := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "laptop"})
	phone := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "phone"})
	tablet := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "tablet"}) // no presence
	b := s.MustLogin(t, bob, "pw", servertest.ClientOptions{Resource: "res"})
	rtOnline(t, laptop, 0)
	rtOnline(t, b, 0)

	rtSend(t, phone, "<presence id='p1'><show>away</show><priority>3</priority></presence>")
	for _, c := range []*servertest.Client{phone, laptop} {
		el := c.Next(t, wait, rtMatch("presence", phone.JID.String(), ""))
		rtCheck(t, el, rtWant{name: "presence", id: "p1", from: phone.JID.String(), to: c.JID.String()})
		if el.ChildText("show", "jabber:client") != "away" || el.ChildText("priority", "jabber:client") != "3" {
			t.Fatalf("%s: presence payload not intact: %s", c.JID, el)
		}
	}
	phone.NoMore(t, rtQuiet, rtMatch("presence", phone.JID.String(), ""))
	tablet.NoMore(t, 10*time.Millisecond, rtFromAccount(alice))
	b.NoMore(t, 10*time.Millisecond, rtFromAccount(alice))
	laptop.NoMore(t, 10*time.Millisecond, rtMatch("presence", phone.JID.String(), ""))
}

// TestRoutingPresenceSessionEnd covers RFC 6121 §4.5: when an available
// resource goes away, by unavailable presence, a closed stream or a
// dropped connection, the account's other available resources receive
// exactly one unavailable presence from it; a resource that never sent
// presence leaves silently.
func TestRoutingPresenceSessionEnd(t *testing.T) {
	s := servertest.Start(t)
	cases := []struct {
		name      string
		available bool
		end       func(t *testing.T, c *servertest.Client)
		echo      bool // the leaving client sees its own unavailable
	}{
		{"unavailable presence", true, func(t *testing.T, c *servertest.Client) {
			rtSend(t, c, "<presence type='unavailable'/>")
		}, true},
		{"stream closed", true, func(t *testing.T, c *servertest.Client) {
			if err := c.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
		}, false},
		{"connection dropped", true, func(t *testing.T, c *servertest.Client) {
			if err := c.Conn().Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
		}, false},
		{"stream closed without presence", false, func(t *testing.T, c *servertest.Client) {
			if err := c.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
		}, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user := s.AddUser(t, fmt.Sprintf("leaver%d", i), "pw")
			stay := s.MustLogin(t, user, "pw", servertest.ClientOptions{Resource: "stay"})
			leave := s.MustLogin(t, user, "pw", servertest.ClientOptions{Resource: "leave"})
			rtOnline(t, stay, 0)
			if tc.available {
				rtOnline(t, leave, 0)
				stay.Next(t, wait, rtMatch("presence", leave.JID.String(), ""))
			}
			tc.end(t, leave)
			if tc.available {
				el := stay.Next(t, wait, rtMatch("presence", leave.JID.String(), ""))
				rtCheck(t, el, rtWant{name: "presence", typ: "unavailable", from: leave.JID.String(), to: stay.JID.String()})
			}
			if tc.echo {
				el := leave.Next(t, wait, rtMatch("presence", leave.JID.String(), ""))
				rtCheck(t, el, rtWant{name: "presence", typ: "unavailable", from: leave.JID.String(), to: leave.JID.String()})
				// Closing after going unavailable announces nothing more.
				if err := leave.Close(); err != nil {
					t.Fatalf("close: %v", err)
				}
			}
			stay.NoMore(t, rtQuiet, rtMatch("presence", leave.JID.String(), ""))
		})
	}
}

// TestRoutingBrokenClientIsolated: a client that breaks the stream gets a
// stream error and loses its session (RFC 6120 §4.9), while other clients
// keep exchanging messages over the same server.
func TestRoutingBrokenClientIsolated(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	bob := s.AddUser(t, "bob", "pw")
	mallory := s.AddUser(t, "mallory", "pw")
	a := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "a"})
	b := s.MustLogin(t, bob, "pw", servertest.ClientOptions{Resource: "b"})

	cases := []struct{ name, garbage, cond string }{
		{"mismatched end tag", "<message to='bob@localhost/b'><body>x</bdy></message>", "not-well-formed"},
		{"bad attribute syntax", "<message to=bob@localhost/b><body>x</body></message>", "not-well-formed"},
		{"stray end tag", "</message>", "not-well-formed"},
		{"text at the top level", "hello", "not-well-formed"},
		{"comment", "<!-- hi -->", "restricted-xml"},
		{"processing instruction", "<?foo bar?>", "restricted-xml"},
		{"doctype", "<!DOCTYPE x [<!ENTITY e 'boom'>]>", "restricted-xml"},
		{"undeclared entity", "<message to='bob@localhost/b'><body>&e;</body></message>", "restricted-xml"},
		{"invalid UTF-8", "<message to='bob@localhost/b'><body>\xff\xfe</body></message>", "not-well-formed"},
		{"undeclared prefix", "<message to='bob@localhost/b'><x:body>hi</x:body></message>", "not-well-formed"},
		{"unknown top-level element", "<foo xmlns='urn:example:foo'/>", "unsupported-stanza-type"},
		{"oversized stanza", "<message to='bob@localhost/b'><body>" + strings.Repeat("a", 300<<10) + "</body></message>", "policy-violation"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := rtRawLogin(t, s, mallory, "pw", "m")
			m.Write(t, tc.garbage)
			if got := m.StreamError(t); got != tc.cond {
				t.Errorf("stream error %q, want %q", got, tc.cond)
			}
			if got := s.Router().Resources(mallory); len(got) != 0 {
				t.Errorf("mallory still bound as %v", got)
			}
			// Alice and Bob are unaffected, both ways.
			for j, p := range [][2]*servertest.Client{{a, b}, {b, a}} {
				id := fmt.Sprintf("iso%d-%d", i, j)
				rtSend(t, p[0], "<message to='%s' type='chat' id='%s'><body>still here</body></message>", p[1].JID, id)
				rtCheck(t, p[1].Next(t, wait, rtMatch("message", "", id)), rtWant{name: "message", typ: "chat",
					id: id, from: p[0].JID.String(), to: p[1].JID.String(), body: "still here"})
			}
		})
	}
	b.NoMore(t, rtQuiet, rtFromAccount(mallory))
}

// TestRoutingResponseHeaderTo covers RFC 6120 §4.7.2: the response stream
// header's 'to' is the 'from' of the client's header, and absent when the
// client sent none (mellium takes its address from it).
func TestRoutingResponseHeaderTo(t *testing.T) {
	s := servertest.Start(t)
	for _, from := range []string{"", "alice@localhost", "alice@localhost/phone"} {
		t.Run("from="+from, func(t *testing.T) {
			r := s.DialRaw(t)
			attr := ""
			if from != "" {
				attr = " from='" + from + "'"
			}
			r.Write(t, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'"+attr+">")
			h, err := r.Dec.ReadHeader()
			if err != nil {
				t.Fatalf("read header: %v", err)
			}
			if h.To != from || h.From != "localhost" {
				t.Fatalf("response header to=%q from=%q, want to=%q from=localhost", h.To, h.From, from)
			}
			for _, a := range h.Attrs {
				if a.Name == "to" && from == "" {
					t.Fatalf("response header has to=%q, the client sent no 'from'", a.Value)
				}
			}
		})
	}
}

// BenchmarkRouteMessage measures a chat message from one client to another
// over real sockets: client encoding, ingress, routing, egress and client
// decoding. Allocations include both mellium clients.
func BenchmarkRouteMessage(b *testing.B) {
	s := servertest.Start(b)
	alice := s.AddUser(b, "alice", "pw")
	bob := s.AddUser(b, "bob", "pw")
	from := s.MustLogin(b, alice, "pw", servertest.ClientOptions{Resource: "a"})
	to := s.MustLogin(b, bob, "pw", servertest.ClientOptions{Resource: "b"})
	msg := fmt.Sprintf("<message to='%s' type='chat'><body>benchmark</body></message>", to.JID)
	isMsg := servertest.Named("message", "type", "chat")

	b.ReportAllocs()
	b.ResetTimer()
	// The sender runs ahead by at most a window of messages; the receiver
	// drains concurrently. Unbounded, the sender could fill the
	// receiver's outbox, and the server rightly closes a slow consumer.
	window := make(chan struct{}, 256)
	sent := make(chan error, 1) // capacity 1: the sender's only result
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for range b.N {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				sent <- ctx.Err()
				return
			}
			if err := from.SendRaw(ctx, msg); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	defer func() {
		if sent != nil { // the receiver failed: stop the sender, wait for it
			from.Conn().Close()
			<-sent
		}
	}()
	for range b.N {
		to.Next(b, wait, isMsg)
		<-window
	}
	b.StopTimer()
	err := <-sent
	sent = nil
	if err != nil {
		b.Fatalf("send: %v", err)
	}
}

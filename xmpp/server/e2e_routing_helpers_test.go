package server_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// Helpers of the routing end-to-end tests, prefixed rt to stay clear of the
// other end-to-end files of this package.

const (
	rtNSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
	rtNSBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	rtNSSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"

	// rtQuiet bounds the negative checks ("nothing arrives").
	rtQuiet = 300 * time.Millisecond
)

// rtWant describes an expected stanza exactly: every address and the type
// must match ("" means the attribute is absent); id and body are checked
// when set; errType and errCond describe the stanza error, required when
// typ is "error".
type rtWant struct {
	name, typ, from, to string
	id, body            string
	errType, errCond    string
}

// rtCheck compares el with w and reports every difference.
func rtCheck(t testing.TB, el *wire.Element, w rtWant) {
	t.Helper()
	var diffs []string
	cmp := func(what, got, want string) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", what, got, want))
		}
	}
	cmp("name", el.Name, w.name)
	cmp("namespace", el.Space, "jabber:client")
	cmp("type", el.AttrValue("type"), w.typ)
	cmp("from", el.AttrValue("from"), w.from)
	cmp("to", el.AttrValue("to"), w.to)
	if w.id != "" {
		cmp("id", el.AttrValue("id"), w.id)
	}
	if w.body != "" {
		cmp("body", el.ChildText("body", "jabber:client"), w.body)
	}
	if w.typ == "error" || w.errCond != "" {
		typ, cond := rtStanzaError(el)
		cmp("error type", typ, w.errType)
		cmp("error condition", cond, w.errCond)
	}
	if len(diffs) > 0 {
		t.Fatalf("unexpected stanza %s:\n\t%s", el, strings.Join(diffs, "\n\t"))
	}
}

// rtErrorType is the type of el's stanza error (rtStanzaError).
func rtErrorType(el *wire.Element) string {
	typ, _ := rtStanzaError(el)
	return typ
}

// rtStanzaError returns the type and defined condition of el's
// <error/> child (RFC 6120 §8.3.2).
func rtStanzaError(el *wire.Element) (typ, cond string) {
	e := el.Child("error", "jabber:client")
	if e == nil {
		return "", ""
	}
	for _, c := range e.Children {
		if c.Space == rtNSStanzas && c.Name != "text" {
			cond = c.Name
			break
		}
	}
	return e.AttrValue("type"), cond
}

// rtMatch returns a matcher for stanzas named name from the address from
// ("" matches any) with the given id ("" matches any).
func rtMatch(name, from, id string) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		return e.Name == name && (from == "" || e.AttrValue("from") == from) &&
			(id == "" || e.AttrValue("id") == id)
	}
}

// rtFromAccount matches any stanza sent by a resource of the account bare,
// or by the bare JID itself.
func rtFromAccount(bare jid.JID) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		f, err := jid.Parse(e.AttrValue("from"))
		return err == nil && f.Bare().Equal(bare)
	}
}

// rtSend writes one stanza and fails the test on error.
func rtSend(t testing.TB, c *servertest.Client, xml string, args ...any) {
	t.Helper()
	if len(args) > 0 {
		xml = fmt.Sprintf(xml, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.SendRaw(ctx, xml); err != nil {
		t.Fatalf("%s: send %s: %v", c.JID, xml, err)
	}
}

// rtOnline sends initial presence with the priority and waits for the
// server's echo to the sender (RFC 6121 §4.2.2), after which the router
// treats the resource as available.
func rtOnline(t testing.TB, c *servertest.Client, priority int) {
	t.Helper()
	rtSend(t, c, "<presence><priority>%d</priority></presence>", priority)
	el := c.Next(t, wait, rtMatch("presence", c.JID.String(), ""))
	rtCheck(t, el, rtWant{name: "presence", from: c.JID.String(), to: c.JID.String()})
}

// rtRawSession is a raw stream client with a bound resource, for what the
// mellium client cannot observe (stream errors) or cannot send.
type rtRawSession struct {
	*servertest.Raw
	JID jid.JID
}

// rtRawLogin negotiates STARTTLS, SASL PLAIN and resource binding by hand.
func rtRawLogin(t testing.TB, s *servertest.Server, user jid.JID, password, resource string) *rtRawSession {
	t.Helper()
	r := s.DialRaw(t)
	r.Open(t, s.Domain)
	r.StartTLS(t, s.TLSConfig())
	r.Open(t, s.Domain)
	creds := base64.StdEncoding.EncodeToString([]byte("\x00" + user.Localpart() + "\x00" + password))
	r.Write(t, "<auth xmlns='"+rtNSSASL+"' mechanism='PLAIN'>"+creds+"</auth>")
	if el, err := r.Read(); err != nil || el.Name != "success" {
		t.Fatalf("raw login %s: SASL: %v %v", user, el, err)
	}
	r.Dec.Restart()
	r.Open(t, s.Domain)
	r.Write(t, "<iq type='set' id='bind1'><bind xmlns='"+rtNSBind+"'><resource>"+resource+"</resource></bind></iq>")
	el, err := r.Read()
	if err != nil || el.AttrValue("type") != "result" || el.Child("bind", rtNSBind) == nil {
		t.Fatalf("raw login %s: bind: %v %v", user, el, err)
	}
	full, err := jid.Parse(el.Child("bind", rtNSBind).ChildText("jid", rtNSBind))
	if err != nil {
		t.Fatalf("raw login %s: bound JID: %v", user, err)
	}
	// A missing stream error fails within the test's patience, not the
	// dial's 20 s deadline.
	_ = r.Conn.SetDeadline(time.Now().Add(2 * wait))
	return &rtRawSession{Raw: r, JID: full}
}

package server_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// BenchmarkLoginWith100Contacts measures a login of a user with 100 mutual
// contacts, 20 of them online: the mellium client connects, negotiates
// STARTTLS, SCRAM-SHA-256 and a resource, and sends initial presence; the
// iteration ends when it has received its own presence back and the answer
// to each of its 100 probes (RFC 6121 §4.2.2, §4.3.2): the current presence
// of the 20 online contacts and the last unavailable presence of the 80
// others. Leaving again (and the unavailable presence it sends to the 20)
// is not measured.
func BenchmarkLoginWith100Contacts(b *testing.B) {
	const contacts, online = 100, 20
	s := servertest.Start(b)
	user := s.AddUser(b, "hub", prPassword)

	// Subscriptions both ways with every contact, over the wire.
	hub := rtRawLogin(b, s, user, prPassword, "setup")
	prRawOnline(b, hub)
	var (
		stay  []*rtRawSession
		names = map[string]bool{} // online contacts' full JIDs
	)
	for i := range contacts {
		contact := s.AddUser(b, fmt.Sprintf("contact%03d", i), prPassword)
		c := rtRawLogin(b, s, contact, prPassword, "c")
		prRawOnline(b, c)
		prRawHandshake(b, hub, c)
		prRawHandshake(b, c, hub)
		if i < online {
			stay = append(stay, c)
			names[c.JID.String()] = true
		} else {
			prRawLogout(b, c)
		}
	}
	prRawLogout(b, hub)

	// The online contacts read and drop what they get (the user's
	// presence, twice an iteration), so that the server never cuts them
	// off as slow consumers.
	var wg sync.WaitGroup
	for _, c := range stay {
		_ = c.Conn.SetDeadline(time.Time{})
		wg.Go(func() {
			for {
				if _, err := c.Read(); err != nil {
					return
				}
			}
		})
	}
	b.Cleanup(func() {
		for _, c := range stay {
			c.Conn.Close()
		}
		wg.Wait()
	})

	opts := servertest.ClientOptions{Resource: "bench"}
	b.ReportAllocs()
	for b.Loop() {
		c, err := s.Login(b.Context(), user, prPassword, opts)
		if err != nil {
			b.Fatalf("login: %v", err)
		}
		rtSend(b, c, "<presence/>")
		self := c.JID.String()
		echo, available, unavailable := false, 0, 0
		c.Next(b, wait, func(e *wire.Element) bool {
			if e.Name != "presence" {
				return false
			}
			from, typ := e.AttrValue("from"), e.AttrValue("type")
			switch {
			case from == self && typ == "":
				echo = true
			case typ == "" && names[from]:
				available++
			case typ == "unavailable":
				unavailable++
			}
			return echo && available == online && unavailable == contacts-online
		})
		b.StopTimer()
		if err := c.Close(); err != nil {
			b.Fatalf("close: %v", err)
		}
		c.Closed(b, wait)
		c.Conn().Close()
		b.StartTimer()
	}
}

// prRawOnline sends initial presence and reads up to its echo.
func prRawOnline(t testing.TB, r *rtRawSession) {
	t.Helper()
	r.Write(t, "<presence/>")
	prRawNext(t, r, func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("from") == r.JID.String() && e.AttrValue("type") == ""
	})
}

// prRawHandshake makes a subscribe to b and b approve it.
func prRawHandshake(t testing.TB, a, b *rtRawSession) {
	t.Helper()
	ab, bb := a.JID.Bare().String(), b.JID.Bare().String()
	a.Write(t, "<presence to='"+bb+"' type='subscribe'/>")
	prRawNext(t, b, prMatch("presence", "subscribe", ab))
	b.Write(t, "<presence to='"+ab+"' type='subscribed'/>")
	prRawNext(t, a, prMatch("presence", "subscribed", bb))
}

// prRawNext reads up to the first element matching match.
func prRawNext(t testing.TB, r *rtRawSession, match func(*wire.Element) bool) *wire.Element {
	t.Helper()
	for {
		el, err := r.Read()
		if err != nil {
			t.Fatalf("%s: read: %v", r.JID, err)
		}
		if match(el) {
			return el
		}
	}
}

// prRawLogout closes the stream and reads up to the server's closing tag,
// written after the session was unbound.
func prRawLogout(t testing.TB, r *rtRawSession) {
	t.Helper()
	r.Write(t, "</stream:stream>")
	for {
		_, err := r.Read()
		if errors.Is(err, wire.ErrStreamEnd) {
			break
		}
		if err != nil {
			t.Fatalf("%s: closing: %v", r.JID, err)
		}
	}
	r.Conn.Close()
}

package server_test

import (
	"context"
	"testing"
	"time"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// TestIdleKeepalivePing: a session silent for the idle timeout gets a
// XEP-0199 ping from the server; answering keeps it, silence ends it with
// connection-timeout.
func TestIdleKeepalivePing(t *testing.T) {
	const idle = 400 * time.Millisecond
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.Limits.IdleTimeout = config.Duration(idle)
	}))
	alice := s.AddUser(t, "alice", "pw")
	bob := s.AddUser(t, "bob", "pw")
	isPing := func(e *wire.Element) bool {
		return e.Name == "iq" && e.AttrValue("type") == "get" && e.Child("ping", "urn:xmpp:ping") != nil
	}

	t.Run("answered", func(t *testing.T) {
		c := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "r"})
		ping := c.Next(t, 10*idle, isPing)
		if ping.AttrValue("from") != "localhost" || ping.AttrValue("to") != c.JID.String() {
			t.Fatalf("ping addressed from %q to %q", ping.AttrValue("from"), ping.AttrValue("to"))
		}
		if err := c.SendRaw(context.Background(), "<iq type='result' to='localhost' id='"+ping.AttrValue("id")+"'/>"); err != nil {
			t.Fatal(err)
		}
		// Still connected well past idle + ping timeout: a ping of our
		// own is answered (each silence gets its own server ping).
		deadline := time.Now().Add(3 * idle)
		for time.Now().Before(deadline) {
			p := c.Next(t, 10*idle, isPing)
			if err := c.SendRaw(context.Background(), "<iq type='result' to='localhost' id='"+p.AttrValue("id")+"'/>"); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.SendRaw(context.Background(), "<iq type='get' to='localhost' id='mine'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
			t.Fatal(err)
		}
		c.Next(t, 10*idle, servertest.Named("iq", "id", "mine", "type", "result"))
	})

	t.Run("unanswered", func(t *testing.T) {
		c := s.MustLogin(t, bob, "pw", servertest.ClientOptions{Resource: "r"})
		c.Next(t, 10*idle, isPing)
		// mellium surfaces the stream error as the end of the stream;
		// the condition (connection-timeout) is checked with a raw
		// client in the stream tests.
		c.Closed(t, 10*idle)
		if n := len(s.Router().Resources(bob)); n != 0 {
			t.Fatalf("%d sessions of bob still bound", n)
		}
	})
}

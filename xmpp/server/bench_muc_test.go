package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
)

// BenchmarkMUCFanout measures one groupchat message reaching every
// occupant of a room: one occupant sends, and the iteration ends when each
// of the n occupants (the sender's echo included) has read the message
// from its socket. Every occupant is a real client (STARTTLS, SASL PLAIN,
// bound resource) whose reader drains its input all along, so that the
// server never cuts it off as a slow consumer. Logging in and joining are
// setup, not measured.
func BenchmarkMUCFanout(b *testing.B) {
	for _, n := range []int{50, 200} {
		b.Run(fmt.Sprintf("occupants=%d", n), func(b *testing.B) { mcBenchFanout(b, n) })
	}
}

func mcBenchFanout(b *testing.B, n int) {
	s := servertest.Start(b, servertest.WithConfig(func(c *config.Config) {
		c.Limits.MaxConnectionsPerIP = n + 10
	}))
	const room = "bench@" + mcService
	// got receives one value per groupchat message with a body read by
	// an occupant; capacity n, so that readers never wait for the
	// benchmark loop within an iteration.
	got := make(chan struct{}, n)
	var (
		wg       sync.WaitGroup
		sessions []*rtRawSession
	)
	b.Cleanup(func() {
		for _, c := range sessions {
			c.Conn.Close()
		}
		wg.Wait()
	})
	for i := range n {
		user := s.AddUser(b, fmt.Sprintf("occupant%03d", i), mcPassword)
		c := rtRawLogin(b, s, user, mcPassword, "bench")
		sessions = append(sessions, c)
		c.Write(b, fmt.Sprintf("<presence to='%s/n%03d'><x xmlns='%s'><history maxstanzas='0'/></x></presence>", room, i, mcNS))
		// The join ends with the subject; earlier occupants' readers
		// meanwhile drain the newcomer's presence.
		for {
			el, err := c.Read()
			if err != nil {
				b.Fatalf("%s: join: %v", c.JID, err)
			}
			if el.Name == "presence" && el.AttrValue("type") == "error" {
				b.Fatalf("%s: join refused: %s", c.JID, el)
			}
			if el.Name == "message" && el.Child("subject", "") != nil {
				break
			}
		}
		if i == 0 {
			// The creator accepts the default configuration, which
			// unlocks the room for the others (XEP-0045 §10.1.2).
			c.Write(b, "<iq type='set' id='instant' to='"+room+"'>"+mcInstant+"</iq>")
			for {
				el, err := c.Read()
				if err != nil {
					b.Fatalf("%s: configure: %v", c.JID, err)
				}
				if el.Name == "iq" && el.AttrValue("id") == "instant" {
					if el.AttrValue("type") != "result" {
						b.Fatalf("%s: instant room: %s", c.JID, el)
					}
					break
				}
			}
		}
		_ = c.Conn.SetDeadline(time.Time{})
		wg.Go(func() {
			for {
				el, err := c.Read()
				if err != nil {
					return
				}
				if el.Name == "message" && el.AttrValue("type") == "groupchat" && el.Child("body", "") != nil {
					got <- struct{}{}
				}
			}
		})
	}
	sender := sessions[0]
	msg := "<message to='" + room + "' type='groupchat'><body>fan-out benchmark message</body></message>"
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()

	b.ReportAllocs()
	for b.Loop() {
		sender.Write(b, msg)
		timeout.Reset(time.Minute)
		for i := range n {
			select {
			case <-got:
			case <-timeout.C:
				b.Fatalf("%d of %d occupants got the message within a minute", i, n)
			}
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

package c2s

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

func TestCSIUrgent(t *testing.T) {
	t.Parallel()
	const from = "from='b@localhost/r' to='a@localhost/r'"
	for _, tc := range []struct {
		name, xml string
		want      bool
	}{
		{"iq request", "<iq type='get' id='1' " + from + "><ping xmlns='urn:xmpp:ping'/></iq>", true},
		{"iq result", "<iq type='result' id='1' " + from + "/>", true},
		{"available", "<presence " + from + "><show>away</show></presence>", false},
		{"unavailable", "<presence type='unavailable' " + from + "/>", false},
		{"subscribe", "<presence type='subscribe' " + from + "/>", true},
		{"unsubscribed", "<presence type='unsubscribed' " + from + "/>", true},
		{"presence error", "<presence type='error' " + from + "/>", true},
		{"body", "<message type='chat' " + from + "><body>hi</body></message>", true},
		{"groupchat body", "<message type='groupchat' " + from + "><body>hi</body></message>", true},
		{"subject", "<message type='groupchat' " + from + "><subject>topic</subject></message>", true},
		{"chat state", "<message type='chat' " + from + "><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", false},
		{"receipt", "<message " + from + "><received xmlns='urn:xmpp:receipts' id='x'/></message>", false},
		{"marker", "<message " + from + "><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>", false},
		{"pep event", "<message type='headline' " + from + "><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>", false},
		{"message error", "<message type='error' " + from + "><error type='cancel'/></message>", true},
		{"omemo", "<message " + from + "><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>", true},
		{"omemo 2", "<message " + from + "><encrypted xmlns='urn:xmpp:omemo:2'/></message>", true},
		{"openpgp", "<message " + from + "><openpgp xmlns='urn:xmpp:openpgp:0'>x</openpgp></message>", true},
		{"legacy pgp", "<message " + from + "><x xmlns='jabber:x:encrypted'>x</x></message>", true},
		{"direct invitation", "<message " + from + "><x xmlns='jabber:x:conference' jid='r@c'/></message>", true},
		{"mediated invitation", "<message " + from + "><x xmlns='http://jabber.org/protocol/muc#user'><invite from='c@d'/></x></message>", true},
		{"muc status only", "<message " + from + "><x xmlns='http://jabber.org/protocol/muc#user'><status code='104'/></x></message>", false},
		{"call", "<message " + from + "><propose xmlns='urn:xmpp:jingle-message:0' id='c'/></message>", true},
		{"call, version 1", "<message " + from + "><propose xmlns='urn:xmpp:jingle-message:1' id='c'/></message>", true},
		{"call in a room", "<message type='groupchat' " + from + "><invite xmlns='urn:xmpp:call-invites:0'/></message>", true},
		{"body of a federated stanza", "<message " + from + "><body xmlns='jabber:server'>hi</body></message>", true},
		{"displayed elsewhere (XEP-0490)", "<message type='headline' " + from + "><event xmlns='http://jabber.org/protocol/pubsub#event'>" +
			"<items node='urn:xmpp:mds:displayed:0'><item id='c@d'/></items></event></message>", true},
		{"another pep node", "<message type='headline' " + from + "><event xmlns='http://jabber.org/protocol/pubsub#event'>" +
			"<items node='urn:xmpp:avatar:metadata'><item id='x'/></items></event></message>", false},
		{"own device's marker", "<message " + from + "><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client' type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='m'/></message></forwarded></sent></message>", true},
		{"contact's marker copied", "<message " + from + "><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client' type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='m'/></message></forwarded></received></message>", false},
		{"body in another namespace", "<message " + from + "><body xmlns='urn:example'>hi</body></message>", false},
		{"carbon of a body", "<message " + from + "><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client' type='chat'><body>hi</body></message></forwarded></received></message>", true},
		{"carbon of a chat state", "<message " + from + "><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></sent></message>", false},
		{"carbon of a carbon", "<message " + from + "><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client'><body>deep</body></message></forwarded></sent></message></forwarded></sent></message>", false},
		{"archive result", "<message " + from + "><result xmlns='urn:xmpp:mam:2' id='1'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client'><body>old</body></message></forwarded></result></message>", false},
	} {
		if got := urgent(xmpptest.Stanza(t, tc.xml)); got != tc.want {
			t.Errorf("%s: urgent %v, want %v", tc.name, got, tc.want)
		}
	}
	if !urgent(xmpp.Control([]byte("<a xmlns='urn:xmpp:sm:3' h='1'/>"))) {
		t.Error("a stream management answer waits")
	}
}

// csiConn is a bound session on a pipe whose writer may run (writerOn):
// nothing is read from the client's end until the test reads it.
func csiConn(t *testing.T, lim Limits, queue int) (*conn, net.Conn) {
	t.Helper()
	srv := &Server{opts: Options{Limits: lim, CSIQueue: queue}, log: slog.New(slog.DiscardHandler), deps: Deps{Router: &echoRouter{}}}
	server, client := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	c := &conn{srv: srv, raw: server, nc: server, bound: true, full: jid.MustParse("a@localhost/r")}
	c.startWriter()
	return c, client
}

func (c *conn) writerRunning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writing
}

// TestCSIHoldLimits: an inactive session sends what it holds once it holds
// CSIQueue stanzas, or more than half the outbox's bytes.
func TestCSIHoldLimits(t *testing.T) {
	t.Parallel()
	presence := func(i int, status string) *xmpp.Stanza {
		return xmpptest.Stanza(t, fmt.Sprintf("<presence from='u%d@localhost/r' to='a@localhost/r'><status>%s</status></presence>", i, status))
	}
	for _, tc := range []struct {
		name  string
		queue int
		bytes int
		// held stanzas before the writer starts; status pads each
		status string
		held   int
	}{
		{"count", 4, 1 << 20, "x", 3},
		{"bytes", 100, 2000, strings.Repeat("x", 300), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, client := csiConn(t, Limits{OutboxStanzas: 200, OutboxBytes: tc.bytes, WriteTimeout: time.Minute}, tc.queue)
			c.mu.Lock()
			c.inactive = true
			c.mu.Unlock()
			i := 0
			for ; i < tc.held; i++ {
				if !c.Deliver(presence(i, tc.status)) {
					t.Fatalf("presence %d refused", i)
				}
				if c.writerRunning() {
					t.Fatalf("writing after %d held", i+1)
				}
			}
			if !c.Deliver(presence(i, tc.status)) {
				t.Fatal("last presence refused")
			}
			if !c.writerRunning() {
				t.Fatalf("%d held, nothing written", i+1)
			}
			// All of them, in order.
			want := ""
			for j := 0; j <= i; j++ {
				want += string(presence(j, tc.status).Bytes())
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(client, got); err != nil {
				t.Fatalf("read: %v", err)
			}
			if string(got) != want {
				t.Fatalf("written %s, want %s", got, want)
			}
		})
	}
}

// TestCSISuperseded: which held stanza a new one replaces.
func TestCSISuperseded(t *testing.T) {
	t.Parallel()
	const to = " to='a@localhost/r'"
	st := func(xml string) *xmpp.Stanza { return xmpptest.Stanza(t, xml) }
	for _, tc := range []struct {
		name string
		held []string
		next string
		want int
	}{
		{"presence from the same resource", []string{"<presence from='b@l/1'" + to + "/>", "<presence from='c@l/1'" + to + "/>"},
			"<presence from='b@l/1' type='unavailable'" + to + "/>", 0},
		{"presence from another resource", []string{"<presence from='b@l/1'" + to + "/>"}, "<presence from='b@l/2'" + to + "/>", -1},
		{"presence after the sender's presence of another type", []string{"<presence from='b@l' type='subscribe'" + to + "/>"}, "<presence from='b@l'" + to + "/>", -1},
		{"chat state", []string{"<message from='b@l/1'" + to + "><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"},
			"<message from='b@l/1'" + to + "><paused xmlns='http://jabber.org/protocol/chatstates'/></message>", 0},
		{"chat state with a receipt request", []string{"<message from='b@l/1'" + to + "><composing xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>"},
			"<message from='b@l/1'" + to + "><paused xmlns='http://jabber.org/protocol/chatstates'/></message>", -1},
		{"chat state past presence", []string{
			"<message from='b@l/1'" + to + "><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
			"<presence from='b@l/1'" + to + "/>"},
			"<message from='b@l/1'" + to + "><paused xmlns='http://jabber.org/protocol/chatstates'/><origin-id xmlns='urn:xmpp:sid:0' id='o'/></message>", 0},
		{"receipt", []string{"<message from='b@l/1'" + to + "><received xmlns='urn:xmpp:receipts' id='1'/></message>"},
			"<message from='b@l/1'" + to + "><received xmlns='urn:xmpp:receipts' id='2'/></message>", -1},
		{"room occupant", []string{"<presence from='r@c/nick'" + to + "><x xmlns='http://jabber.org/protocol/muc#user'><item role='participant'/></x></presence>"},
			"<presence from='r@c/nick'" + to + "><show>away</show></presence>", 0},
		{"kick from a room", []string{"<presence from='r@c/nick' type='unavailable'" + to + "><x xmlns='http://jabber.org/protocol/muc#user'><item role='none'/><status code='307'/></x></presence>"},
			"<presence from='r@c/nick'" + to + "/>", -1},
		{"room destroyed", []string{"<presence from='r@c/nick' type='unavailable'" + to + "><x xmlns='http://jabber.org/protocol/muc#user'><destroy/></x></presence>"},
			"<presence from='r@c/nick' type='unavailable'" + to + "/>", -1},
		{"carbon of a chat state", []string{"<message from='a@l'" + to + "><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client' from='a@l/desk' to='b@l/1' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></sent></message>"},
			"<message from='a@l'" + to + "><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
				"<message xmlns='jabber:client' from='a@l/laptop' to='b@l' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></sent></message>", 0},
		{"carbon of a chat state to another contact", []string{"<message from='a@l'" + to + "><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client' from='a@l/desk' to='b@l/1' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></sent></message>"},
			"<message from='a@l'" + to + "><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
				"<message xmlns='jabber:client' from='a@l/desk' to='c@l' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></sent></message>", -1},
		{"carbon received, then sent", []string{"<message from='a@l'" + to + "><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client' from='b@l/1' to='a@l/desk' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></received></message>"},
			"<message from='a@l'" + to + "><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
				"<message xmlns='jabber:client' from='b@l/1' to='a@l/desk' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></sent></message>", -1},
		{"error chat state", []string{"<message from='b@l/1' type='error'" + to + "><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"},
			"<message from='b@l/1' type='error'" + to + "><paused xmlns='http://jabber.org/protocol/chatstates'/></message>", -1},
	} {
		h := &csiHold{}
		for _, x := range tc.held {
			h.add(st(x))
		}
		if len(h.stanzas) != len(tc.held) {
			t.Fatalf("%s: %d held, want %d (the held stanzas must not supersede each other)", tc.name, len(h.stanzas), len(tc.held))
		}
		next := st(tc.next)
		if got := h.superseded(next); got != tc.want {
			t.Errorf("%s: superseded %d, want %d", tc.name, got, tc.want)
		}
		// Held, it takes the place of what it supersedes, at the end.
		h.add(next)
		want := len(tc.held) + 1
		if tc.want >= 0 {
			want--
		}
		if len(h.stanzas) != want || h.stanzas[len(h.stanzas)-1] != next {
			t.Errorf("%s: after add, %d held ending with %v, want %d ending with the new stanza", tc.name, len(h.stanzas), h.stanzas[len(h.stanzas)-1], want)
		}
	}
}

// TestCSIConcurrent: senders deliver while the client's state flips. Each
// sender's messages arrive, in order; its presence arrives in order, its
// latest last; nothing is written twice.
func TestCSIConcurrent(t *testing.T) {
	t.Parallel()
	const senders, rounds = 4, 50
	c, client := csiConn(t, Limits{OutboxStanzas: 4096, OutboxBytes: 4 << 20, WriteTimeout: time.Minute}, 16)
	dec := wire.NewDecoder(io.MultiReader(strings.NewReader(fuzzHeader), client), wire.Limits{MaxStanza: 1 << 16})
	if _, err := dec.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	type seen struct{ msgs, presence []int }
	got := make([]seen, senders)
	done := make(chan error, 1)
	go func() {
		for {
			el, err := dec.ReadElement()
			if err != nil {
				done <- err
				return
			}
			if el.AttrValue("id") == "end" {
				done <- nil
				return
			}
			var i, n int
			if _, err := fmt.Sscanf(el.AttrValue("id"), "%d-%d", &i, &n); err != nil {
				done <- fmt.Errorf("id of %s: %v", el, err)
				return
			}
			if el.Name == "message" {
				got[i].msgs = append(got[i].msgs, n)
			} else {
				got[i].presence = append(got[i].presence, n)
			}
		}
	}()

	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			from := fmt.Sprintf("u%d@localhost/r", i)
			for n := range rounds {
				c.Deliver(xmpptest.Stanza(t, fmt.Sprintf("<presence id='%d-%d' from='%s' to='a@localhost/r'/>", i, n, from)))
				if n%5 == 0 {
					c.Deliver(xmpptest.Stanza(t, fmt.Sprintf("<message id='%d-%d' from='%s' to='a@localhost/r'><body>b</body></message>", i, n, from)))
				}
			}
		})
	}
	wg.Go(func() {
		for n := range 2 * rounds {
			state := "inactive"
			if n%2 == 1 {
				state = "active"
			}
			if err := c.csiElement(wire.New(state, nsCSI)); err != nil {
				t.Errorf("<%s/>: %v", state, err)
			}
		}
	})
	wg.Wait()
	if err := c.csiElement(wire.New("active", nsCSI)); err != nil {
		t.Fatal(err)
	}
	c.Deliver(xmpptest.Stanza(t, "<message id='end' from='b@localhost/r' to='a@localhost/r'><body>end</body></message>"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the last message not written in 20 s")
	}
	for i, s := range got {
		if len(s.msgs) != rounds/5 {
			t.Errorf("sender %d: messages %v, want %d", i, s.msgs, rounds/5)
		}
		if !slices.IsSorted(s.msgs) || !slices.IsSorted(s.presence) {
			t.Errorf("sender %d: out of order: messages %v, presence %v", i, s.msgs, s.presence)
		}
		if len(s.presence) == 0 || s.presence[len(s.presence)-1] != rounds-1 {
			t.Errorf("sender %d: presence %v, want the last %d last", i, s.presence, rounds-1)
		}
		if len(slices.Compact(slices.Clone(s.presence))) != len(s.presence) {
			t.Errorf("sender %d: presence written twice: %v", i, s.presence)
		}
	}
}

// BenchmarkCSIHold: what an inactive client's session does per stanza it
// holds, released every 256 stanzas as the default csi_queue does, for a
// user with 500 contacts whose presence and chat states arrive: "in turn"
// (each contact once per round: every stanza held is compared with all
// held before it, and supersedes none), and "in bursts" (a contact's four
// in a row: the last two supersede the first two, each the one of its
// kind held two before).
func BenchmarkCSIHold(b *testing.B) {
	const to = " to='a@localhost/r'"
	const contacts = 500
	kinds := []string{
		"<presence%s" + to + "><show>away</show></presence>",
		"<message%s" + to + " type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
		"<presence%s" + to + "/>",
		"<message%s" + to + " type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>",
	}
	from := func(i int) string { return fmt.Sprintf(" from='c%d@localhost/r'", i) }
	var inTurn, inBursts []*xmpp.Stanza
	for _, k := range kinds {
		for i := range contacts {
			inTurn = append(inTurn, xmpptest.Stanza(b, fmt.Sprintf(k, from(i))))
		}
	}
	for i := range contacts {
		for _, k := range kinds {
			inBursts = append(inBursts, xmpptest.Stanza(b, fmt.Sprintf(k, from(i))))
		}
	}
	for _, bc := range []struct {
		name string
		sts  []*xmpp.Stanza
	}{{"in turn", inTurn}, {"in bursts", inBursts}} {
		b.Run(bc.name, func(b *testing.B) {
			h := &csiHold{}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h.add(bc.sts[i%len(bc.sts)])
				if len(h.stanzas) >= 256 {
					clear(h.stanzas)
					h.stanzas, h.bytes = h.stanzas[:0], 0
				}
			}
		})
	}
}

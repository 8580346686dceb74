package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"switchboard/xmpp/wire"
)

const benchHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>`

// benchMessage is a typical modern chat message: body, chat state,
// XEP-0359 origin id, a receipt request and a message-correction marker.
const benchMessage = `<message to='juliet@example.com/balcony' from='romeo@example.net/orchard' type='chat' id='8f2a1c6e-3b7d-4e0a-9c55-1d2e3f4a5b6c' xml:lang='en'>` +
	`<body>Art thou not Romeo, and a Montague? &lt;3 — “Neither, fair saint, if either thee dislike.”</body>` +
	`<active xmlns='http://jabber.org/protocol/chatstates'/>` +
	`<origin-id xmlns='urn:xmpp:sid:0' id='de305d54-75b4-431b-adb2-eb6b9e546014'/>` +
	`<request xmlns='urn:xmpp:receipts'/>` +
	`<markable xmlns='urn:xmpp:chat-markers:0'/>` +
	`</message>`

func BenchmarkParseMessage(b *testing.B) {
	data := []byte(benchMessage)
	sc := wire.NewScope(wire.NSClient).Bind("stream", wire.NSStream)
	el, err := wire.Parse(data, sc)
	if err != nil || el.ChildText("body", wire.NSClient) == "" {
		b.Fatalf("parse: %v", err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Parse(data, sc); err != nil {
			b.Fatal(err)
		}
	}
}

// benchStream is a client stream of n stanzas: messages, presences and
// IQs in a 6:2:2 mix, separated by occasional white-space keepalives.
func benchStream(n int) ([]byte, int) {
	var s strings.Builder
	s.WriteString(benchHeader)
	for i := range n {
		switch i % 10 {
		case 0, 5:
			fmt.Fprintf(&s, `<presence id='p%d'><show>away</show><status>in a meeting</status><priority>5</priority>`+
				`<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>`, i)
		case 3, 8:
			fmt.Fprintf(&s, `<iq type='get' id='iq%d' to='example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, i)
		default:
			s.WriteString(benchMessage)
		}
		if i%50 == 49 {
			s.WriteString("\n")
		}
	}
	s.WriteString(`</stream:stream>`)
	return []byte(s.String()), n
}

func BenchmarkDecoderStream(b *testing.B) {
	data, n := benchStream(1000)
	cases := []struct {
		name  string
		chunk int // bytes per Read; 0 = as much as asked for
	}{
		{"whole", 0},
		{"tcp-segments", 1448},
		{"small-reads", 64},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var r io.Reader = bytes.NewReader(data)
				if tc.chunk > 0 {
					r = &chunked{r: r, n: tc.chunk}
				}
				d := wire.NewDecoder(r, wire.Limits{})
				if _, err := d.ReadHeader(); err != nil {
					b.Fatal(err)
				}
				got := 0
				for {
					_, err := d.ReadElement()
					if errors.Is(err, wire.ErrStreamEnd) {
						break
					}
					if err != nil {
						b.Fatalf("element %d: %v", got, err)
					}
					got++
				}
				if got != n {
					b.Fatalf("decoded %d elements, want %d", got, n)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "stanzas/s")
		})
	}
}

// chunked returns at most n bytes per Read, like a socket does.
type chunked struct {
	r io.Reader
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

package wire

import (
	"bytes"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStreamWriterLast: nothing is written after the stream's last bytes,
// so that an answer finishing late cannot follow the closing tag.
func TestStreamWriterLast(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	w := NewStreamWriter(server, time.Second)
	if err := w.Write([]byte("<a/>")); err != nil {
		t.Fatal(err)
	}
	if !w.Last([]byte("</stream:stream>")) {
		t.Fatal("Last refused the first end")
	}
	if err := w.Write([]byte("<late/>")); err == nil {
		t.Error("Write after Last succeeded")
	}
	if w.Last([]byte("<stream:error/>")) {
		t.Error("a second Last succeeded")
	}
	server.Close()
	if b := <-got; string(b) != "<a/></stream:stream>" {
		t.Errorf("wrote %q", b)
	}
}

// recorder is a net.Conn that records each write.
type recorder struct {
	net.Conn
	writes [][]byte
}

func (r *recorder) Write(b []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(b))
	return len(b), nil
}

func (r *recorder) SetWriteDeadline(time.Time) error { return nil }

// TestWriteEach: items are gathered into writes of about writeChunk, in
// order; one as large as a chunk goes out by itself.
func TestWriteEach(t *testing.T) {
	small := strings.Repeat("s", writeChunk/3)
	big := strings.Repeat("B", writeChunk)
	tests := []struct {
		name  string
		items []string
		want  []int // the length of each write
	}{
		{"one", []string{"<a/>"}, []int{4}},
		{"gathered", []string{"<a/>", "<b/>", "<c/>"}, []int{12}},
		{"chunks", []string{small, small, small, small}, []int{3 * len(small), len(small)}},
		{"large alone", []string{"<a/>", big, "<b/>"}, []int{4, writeChunk, 4}},
		{"none", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			w := NewStreamWriter(r, time.Second)
			if err := w.WriteEach(len(tc.items), func(i int) []byte { return []byte(tc.items[i]) }); err != nil {
				t.Fatal(err)
			}
			var lens []int
			var all []byte
			for _, b := range r.writes {
				lens = append(lens, len(b))
				all = append(all, b...)
			}
			if !slices.Equal(lens, tc.want) {
				t.Errorf("write lengths %v, want %v", lens, tc.want)
			}
			if string(all) != strings.Join(tc.items, "") {
				t.Error("the bytes written are not the items in order")
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestAppendEnd: the end of a stream for each way its reading stops.
func TestAppendEnd(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
		ok   bool
	}{
		{"stream error", &Error{Condition: "not-well-formed", Msg: "x"}, string(AppendStreamEnd(nil, "not-well-formed", "x")), true},
		{"closed by the peer", ErrStreamEnd, "</stream:stream>", true},
		{"read timeout", timeoutErr{}, string(AppendStreamEnd(nil, "connection-timeout", "")), true},
		{"lost", io.ErrUnexpectedEOF, "<h>", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, ok := AppendEnd([]byte("<h>"), tc.err)
			want := tc.want
			if tc.ok {
				want = "<h>" + want
			}
			if ok != tc.ok || string(b) != want {
				t.Errorf("AppendEnd = %q, %v; want %q, %v", b, ok, want, tc.ok)
			}
		})
	}
}

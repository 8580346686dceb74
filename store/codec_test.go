package store

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestVarintRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 1<<14 - 1, 1 << 14, 1<<63 - 1, 1 << 63, math.MaxUint64} {
		enc := appendUvarint(nil, v)
		got, n, err := readUvarint(enc)
		if err != nil || got != v || n != len(enc) {
			t.Errorf("uvarint %d: got %d, %d, %v", v, got, n, err)
		}
	}
	for _, v := range []int64{0, 1, -1, 63, -64, 64, -65, math.MaxInt64, math.MinInt64} {
		enc := appendVarint(nil, v)
		got, n, err := readVarint(enc)
		if err != nil || got != v || n != len(enc) {
			t.Errorf("varint %d: got %d, %d, %v", v, got, n, err)
		}
	}
}

func TestReadUvarintRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"truncated", []byte{0x80}},
		{"truncated long", []byte{0xff, 0xff, 0xff}},
		{"non-minimal zero", []byte{0x80, 0x00}},
		{"non-minimal one", []byte{0x81, 0x80, 0x00}},
		{"overflow", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}},
		{"eleven bytes", bytes.Repeat([]byte{0x80}, 11)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := readUvarint(tc.in); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("readUvarint(%x) = %v, want ErrCorrupt", tc.in, err)
			}
		})
	}
}

func TestBytesRoundTrip(t *testing.T) {
	for _, s := range []string{"", "a", strings.Repeat("x", 127), strings.Repeat("y", 128), strings.Repeat("z", 70000)} {
		enc := appendBytes([]byte("prefix"), []byte(s))
		enc = append(enc, "tail"...)
		b, rest, err := readBytes(enc[len("prefix"):])
		if err != nil || string(b) != s || string(rest) != "tail" {
			t.Errorf("len %d: got %d bytes, rest %q, %v", len(s), len(b), rest, err)
		}
		if !bytes.Equal(appendString(nil, s), lp(s)) || !bytes.Equal(lp(s), appendBytes(nil, []byte(s))) {
			t.Errorf("len %d: appendString, lp and appendBytes disagree", len(s))
		}
	}
	if _, _, err := readBytes([]byte{5, 'a', 'b'}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("readBytes truncated = %v, want ErrCorrupt", err)
	}
	if _, _, err := readBytes(appendUvarint(nil, math.MaxUint64)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("readBytes huge length = %v, want ErrCorrupt", err)
	}
}

func TestBE64(t *testing.T) {
	vals := []uint64{0, 1, 255, 256, 1 << 32, math.MaxUint64 - 1, math.MaxUint64}
	for i, v := range vals {
		got, rest, err := readBE64(append(be64(v), 9))
		if err != nil || got != v || !bytes.Equal(rest, []byte{9}) {
			t.Errorf("be64 %d: got %d, %x, %v", v, got, rest, err)
		}
		if i > 0 && bytes.Compare(be64(vals[i-1]), be64(v)) >= 0 {
			t.Errorf("be64(%d) does not sort before be64(%d)", vals[i-1], v)
		}
	}
	if _, _, err := readBE64(make([]byte, 7)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("readBE64 short = %v, want ErrCorrupt", err)
	}
}

func TestDecoder(t *testing.T) {
	var enc []byte
	enc = append(enc, 7)
	enc = appendUvarint(enc, 300)
	enc = appendVarint(enc, -5)
	enc = appendString(enc, "hello")
	enc = appendBytes(enc, nil)
	enc = appendBE64(enc, 42)

	d := decoder{buf: enc}
	if b, u, v, s, e, n := d.byte(), d.uvarint(), d.varint(), d.string(), d.bytes(), d.be64(); b != 7 || u != 300 || v != -5 || s != "hello" || e != nil || n != 42 {
		t.Fatalf("decoded %d %d %d %q %v %d", b, u, v, s, e, n)
	}
	if err := d.done(); err != nil {
		t.Fatal(err)
	}

	t.Run("trailing", func(t *testing.T) {
		d := decoder{buf: append(appendUvarint(nil, 1), 0)}
		d.uvarint()
		if err := d.done(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("done = %v, want ErrCorrupt", err)
		}
	})
	t.Run("sticky error", func(t *testing.T) {
		d := decoder{buf: []byte{0x80}}
		if d.uvarint() != 0 || d.string() != "" || d.bytes() != nil || d.be64() != 0 || d.byte() != 0 || d.int() != 0 {
			t.Fatal("reads after an error returned data")
		}
		if err := d.done(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("done = %v, want ErrCorrupt", err)
		}
	})
	t.Run("bytes are copies", func(t *testing.T) {
		buf := appendBytes(nil, []byte("abc"))
		d := decoder{buf: buf}
		b := d.bytes()
		buf[1] = 'X'
		if string(b) != "abc" {
			t.Fatalf("decoded bytes alias the input: %q", b)
		}
	})
}

func TestLPPrefixFree(t *testing.T) {
	// Every pair of distinct strings of lengths around the one- and
	// two-byte uvarint boundaries: lp(a) never prefixes lp(b) ‖ suffix.
	var strs []string
	for _, n := range []int{0, 1, 2, 127, 128, 129, 16383, 16384} {
		strs = append(strs, strings.Repeat("a", n), strings.Repeat("\x80", n))
	}
	for _, a := range strs {
		for _, b := range strs {
			key := append(lp(b), "suffix"...)
			if got := bytes.HasPrefix(key, lp(a)); got != (a == b) {
				t.Errorf("HasPrefix(lp(len %d)‖…, lp(len %d)) = %v", len(b), len(a), got)
			}
		}
	}
}

func TestUserKey(t *testing.T) {
	tests := []struct {
		name        string
		host, local string
	}{
		{"plain", "example.org", "juliet"},
		{"one byte each", "x", "a"},
		{"binary local", "example.org", "\x00\xff@/"},
		{"128-byte host", strings.Repeat("h", 128), "u"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := userKey(tc.host, tc.local)
			h, l, err := parseUserKey(k)
			if err != nil || h != tc.host || l != tc.local {
				t.Fatalf("parseUserKey(userKey(%q, %q)) = %q, %q, %v", tc.host, tc.local, h, l, err)
			}
		})
	}
	for _, bad := range [][]byte{nil, {}, {0x80}, {3, 'a', 'b'}, lp("host"), append(lp(""), 'x')} {
		if _, _, err := parseUserKey(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("parseUserKey(%x) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestUserCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		user User
	}{
		{"both credentials", testUser("h", "l")},
		{"only SHA-256", User{SHA256: cred(3, sha256.Size), Created: testCreated}},
		{"only SHA-1", User{SHA1: cred(4, sha1.Size), Created: time.Unix(0, 0).UTC()}},
		{"zero", User{Created: time.UnixMicro(0).UTC()}},
		{"pre-1970", User{SHA1: cred(5, sha1.Size), Created: time.Date(1901, 1, 1, 0, 0, 0, 1000, time.UTC)}},
		{"huge iterations", User{SHA1: ScramCredential{Salt: []byte{1}, Iterations: math.MaxInt32, StoredKey: []byte{2}, ServerKey: []byte{3}}, Created: testCreated}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.user.Host, tc.user.Local = "", ""
			enc, err := encodeUser(nil, tc.user)
			if err != nil {
				t.Fatal(err)
			}
			if enc[0] != userCodecV1 {
				t.Fatalf("codec byte = %d", enc[0])
			}
			got, err := decodeUser(enc)
			if err != nil {
				t.Fatal(err)
			}
			assertUser(t, got, tc.user)
			// Every strict prefix is rejected, never a panic or a short read.
			for i := range len(enc) {
				if _, err := decodeUser(enc[:i]); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("decodeUser(prefix %d of %d) = %v, want ErrCorrupt", i, len(enc), err)
				}
			}
			if _, err := decodeUser(append(enc, 0)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeUser with trailing byte = %v, want ErrCorrupt", err)
			}
		})
	}

	t.Run("created truncated to microseconds", func(t *testing.T) {
		in := User{SHA1: cred(1, sha1.Size), Created: time.Date(2030, 1, 2, 3, 4, 5, 999999999, time.FixedZone("X", 3600))}
		enc, err := encodeUser(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeUser(enc)
		if err != nil {
			t.Fatal(err)
		}
		if want := in.Created.Truncate(time.Microsecond); !got.Created.Equal(want) || got.Created.Location() != time.UTC {
			t.Fatalf("Created = %v, want %v in UTC", got.Created, want)
		}
	})
	t.Run("unknown codec version", func(t *testing.T) {
		enc, _ := encodeUser(nil, testUser("h", "l"))
		enc[0] = 2
		if _, err := decodeUser(enc); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decodeUser(version 2) = %v, want ErrCorrupt", err)
		}
	})
	t.Run("negative iterations", func(t *testing.T) {
		if _, err := encodeUser(nil, User{SHA1: ScramCredential{Iterations: -1}}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("encodeUser(-1 iterations) = %v, want ErrInvalid", err)
		}
	})
}

func FuzzUserCodec(f *testing.F) {
	for _, u := range []User{
		testUser("example.org", "juliet"),
		{SHA256: cred(9, sha256.Size), Created: testCreated},
		{},
	} {
		u.Host, u.Local = "", ""
		enc, err := encodeUser(nil, u)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{userCodecV1})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{userCodecV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})

	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := decodeUser(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		enc, err := encodeUser(nil, u)
		if err != nil {
			t.Fatalf("encode of decoded user: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("encode(decode(x)) != x\n x   %x\n got %x", data, enc)
		}
		again, err := decodeUser(enc)
		if err != nil {
			t.Fatalf("decode(encode(decode(x))): %v", err)
		}
		assertUser(t, again, u)
	})
}

func FuzzKeyCodec(f *testing.F) {
	f.Add(userKey("example.org", "juliet"), "x", "ab", "xa", "b")
	f.Add([]byte{0x80, 0x01}, strings.Repeat("h", 128), "u", strings.Repeat("h", 127), "hu")
	f.Add([]byte{}, "", "a", "a", "")
	f.Add([]byte{0x00, 'a'}, "example.org", "a", "example.org", "b")

	f.Fuzz(func(t *testing.T, key []byte, h1, l1, h2, l2 string) {
		// Arbitrary bytes: parse never panics, and re-encodes exactly.
		if h, l, err := parseUserKey(key); err == nil {
			if got := userKey(h, l); !bytes.Equal(got, key) {
				t.Fatalf("userKey(parseUserKey(%x)) = %x", key, got)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("parse error %v does not wrap ErrCorrupt", err)
		}

		// Round trip of non-empty parts.
		k1, k2 := userKey(h1, l1), userKey(h2, l2)
		if h1 != "" && l1 != "" {
			h, l, err := parseUserKey(k1)
			if err != nil || h != h1 || l != l1 {
				t.Fatalf("parseUserKey(userKey(%q, %q)) = %q, %q, %v", h1, l1, h, l, err)
			}
		}

		// The host prefix selects exactly that host's keys.
		if got := bytes.HasPrefix(k2, lp(h1)); got != (h1 == h2) {
			t.Fatalf("HasPrefix(userKey(%q, %q), lp(%q)) = %v", h2, l2, h1, got)
		}

		// Within one host, keys sort like localparts.
		if got, want := bytes.Compare(userKey(h1, l1), userKey(h1, l2)), strings.Compare(l1, l2); got != want {
			t.Fatalf("key order %d, localpart order %d for %q vs %q", got, want, l1, l2)
		}

		// Distinct (host, local) pairs never share a key.
		if (h1 != h2 || l1 != l2) && bytes.Equal(k1, k2) {
			t.Fatalf("(%q, %q) and (%q, %q) share key %x", h1, l1, h2, l2, k1)
		}
	})
}

package mam

import "testing"

func TestIDCodec(t *testing.T) {
	a, b := NewIDCodec([]byte("secret one")), NewIDCodec([]byte("secret two"))
	for _, id := range []uint64{1, 2, 1763712000000000, 1763712000000001, 1<<64 - 1} {
		s := a.Format(id)
		if got, ok := a.Parse(s); !ok || got != id {
			t.Fatalf("Parse(Format(%d)) = %d, %v", id, got, ok)
		}
		if s != a.Format(id) {
			t.Fatalf("Format(%d) is not stable", id)
		}
		if _, ok := b.Parse(s); ok {
			t.Fatalf("another server's id %q parsed", s)
		}
	}
	// Consecutive ids share no visible prefix (nothing to infer).
	if a.Format(1763712000000000)[:8] == a.Format(1763712000000001)[:8] {
		t.Fatal("consecutive ids look alike")
	}
	for _, bad := range []string{"", "123", "!!!!!!!!!!!!!!!!!!!!!!", "AAAAAAAAAAAAAAAAAAAAAA"} {
		if _, ok := a.Parse(bad); ok {
			t.Fatalf("Parse(%q) accepted", bad)
		}
	}
}

func FuzzIDCodec(f *testing.F) {
	c := NewIDCodec([]byte("fuzz"))
	f.Add(c.Format(42))
	f.Add("AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		if id, ok := c.Parse(s); ok && c.Format(id) != s {
			t.Fatalf("Parse(%q) = %d but Format gives %q", s, id, c.Format(id))
		}
	})
}

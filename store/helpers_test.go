package store

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// openTest opens a fresh database in t.TempDir and closes it at cleanup.
func openTest(t testing.TB) *DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "switchboard.db"), Options{})
}

// openAt opens path and closes it at cleanup (a second Close is harmless).
func openAt(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(t.Context(), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// cred returns a valid credential whose bytes are derived from seed.
func cred(seed byte, keyLen int) ScramCredential {
	return ScramCredential{
		Salt:       bytes.Repeat([]byte{seed}, 16),
		Iterations: 4096 + int(seed),
		StoredKey:  bytes.Repeat([]byte{seed + 1}, keyLen),
		ServerKey:  bytes.Repeat([]byte{seed + 2}, keyLen),
	}
}

var testCreated = time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)

// testUser returns a user with both credentials set.
func testUser(host, local string) User {
	seed := byte(len(host)*7 + len(local))
	return User{
		Host:    host,
		Local:   local,
		SHA1:    cred(seed, sha1.Size),
		SHA256:  cred(seed+10, sha256.Size),
		Created: testCreated,
	}
}

// createAccounts creates an account for each bare JID local@host.
func createAccounts(t testing.TB, db *DB, owners ...string) {
	t.Helper()
	for _, o := range owners {
		local, host, _ := strings.Cut(o, "@")
		if err := db.Users().Create(t.Context(), testUser(host, local)); err != nil {
			t.Fatalf("create %s: %v", o, err)
		}
	}
}

func assertUser(t testing.TB, got, want User) {
	t.Helper()
	if !got.Created.Equal(want.Created) {
		t.Errorf("Created = %v, want %v", got.Created, want.Created)
	}
	got.Created, want.Created = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("user = %+v\nwant   %+v", got, want)
	}
}

// openNoSync is openTest without fsync on commit, for tests that make
// thousands of transactions. Durability across a crash is not what they
// test; reopening in the same process still reads every commit.
func openNoSync(t testing.TB) *DB {
	t.Helper()
	db := openTest(t)
	db.bolt.NoSync = true
	return db
}

// checkStrictCodec checks that enc decodes, and that every strict prefix of
// enc and enc with a trailing byte are rejected with ErrCorrupt (never a
// panic or a short read).
func checkStrictCodec[T any](t *testing.T, enc []byte, decode func([]byte) (T, error)) T {
	t.Helper()
	got, err := decode(enc)
	if err != nil {
		t.Fatalf("decode(%x): %v", enc, err)
	}
	for i := range len(enc) {
		if _, err := decode(enc[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decode(prefix %d of %d) = %v, want ErrCorrupt", i, len(enc), err)
		}
	}
	if _, err := decode(append(bytes.Clone(enc), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("decode with trailing byte = %v, want ErrCorrupt", err)
	}
	return got
}

// fuzzCodec is the body of a codec fuzz test: decoding arbitrary bytes
// never panics and fails only with ErrCorrupt, and whatever decodes
// re-encodes to the same bytes and decodes to the same value.
func fuzzCodec[T any](t *testing.T, data []byte, decode func([]byte) (T, error), encode func([]byte, T) []byte) {
	v, err := decode(data)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decode error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	enc := encode(nil, v)
	if !bytes.Equal(enc, data) {
		t.Fatalf("encode(decode(x)) != x\n x   %x\n got %x", data, enc)
	}
	again, err := decode(enc)
	if err != nil {
		t.Fatalf("decode(encode(decode(x))): %v", err)
	}
	if !reflect.DeepEqual(again, v) {
		t.Fatalf("decode(encode(v)) = %+v, want %+v", again, v)
	}
}

// codecTime is a time with microsecond precision in UTC, as codecs return.
var codecTime = time.Date(2025, 3, 4, 5, 6, 7, 891011000, time.UTC)

// lockedBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lastTxID is the id of the database's last committed write transaction.
func lastTxID(t *testing.T, db *DB) int {
	t.Helper()
	var id int
	if err := db.bolt.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

package store

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"path/filepath"
	"reflect"
	"testing"
	"time"
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

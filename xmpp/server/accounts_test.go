package server

import (
	"context"
	"errors"
	"testing"

	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
)

// TestSetPasswordInvalid: an unusable new password is a not-acceptable
// stanza error for XEP-0077 and ErrInvalidPassword for the admin tools.
func TestSetPasswordInvalid(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir()+"/db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := NewAccounts(db.Users(), []string{"localhost"})
	if err := a.Create(ctx, "localhost", "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	err = a.SetPassword(ctx, "localhost", "alice", "\xff")
	if !errors.Is(err, ErrInvalidPassword) {
		t.Fatalf("err = %v, want ErrInvalidPassword", err)
	}
	if se := xmpp.AsStanzaError(err); se.Condition != stanza.NotAcceptable {
		t.Fatalf("stanza error %v, want not-acceptable", se.Condition)
	}
}

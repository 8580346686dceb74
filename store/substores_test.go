package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// perAccountCalls returns one call of every method of the per-account
// sub-stores, and of Rooms (not per-account, but held to the same
// context, read-only and closed checks), split into reads and writes.
func perAccountCalls(ctx context.Context, db *DB) (reads, writes map[string]func() error) {
	const owner, other = "juliet@example.org", "romeo@example.net"
	const room = "lobby@conference.example.org"
	reads = map[string]func() error{
		"Rosters.Items": func() error { _, _, err := db.Rosters().Items(ctx, owner); return err },
		"Rosters.Item":  func() error { _, err := db.Rosters().Item(ctx, owner, other); return err },
		"Rosters.Since": func() error { _, _, _, _, err := db.Rosters().Since(ctx, owner, 0); return err },
		"Rosters.Count": func() error { _, err := db.Rosters().Count(ctx, owner); return err },
		"SubRequests.Get": func() error {
			_, err := db.SubRequests().Get(ctx, owner, other)
			return err
		},
		"SubRequests.List":      func() error { _, err := db.SubRequests().List(ctx, owner); return err },
		"Offline.List":          func() error { _, err := db.Offline().List(ctx, owner); return err },
		"Offline.Count":         func() error { _, err := db.Offline().Count(ctx, owner); return err },
		"Blocklists.List":       func() error { _, err := db.Blocklists().List(ctx, owner); return err },
		"Blocklists.Contains":   func() error { _, err := db.Blocklists().Contains(ctx, owner, other); return err },
		"Activity.Get":          func() error { _, err := db.Activity().Get(ctx, owner); return err },
		"PresenceOverrides.Get": func() error { _, err := db.PresenceOverrides().Get(ctx, owner); return err },
		"PresenceOverrides.All": func() error { _, err := db.PresenceOverrides().All(ctx); return err },
		"Archive.Query": func() error {
			_, err := db.Archive().Query(ctx, ArchiveQuery{Archive: owner, With: other, Max: 10, Last: true, WantCount: true})
			return err
		},
		"Archive.Get":           func() error { _, err := db.Archive().Get(ctx, owner, 1); return err },
		"Archive.Conversations": func() error { _, err := db.Archive().Conversations(ctx, owner, 0); return err },
		"Audit.List":            func() error { _, err := db.Audit().List(ctx, codecTime, 10, nil); return err },
		"Rooms.Get":             func() error { _, err := db.Rooms().Get(ctx, room); return err },
		"Rooms.List":            func() error { _, err := db.Rooms().List(ctx, "conference.example.org"); return err },
		"Rooms.Count":           func() error { _, err := db.Rooms().Count(ctx, ""); return err },
		"VCards.Get":            func() error { _, err := db.VCards().Get(ctx, owner); return err },
		"Private.Get":           func() error { _, err := db.Private().Get(ctx, owner, "storage:bookmarks"); return err },
		"Push.List":             func() error { _, err := db.Push().List(ctx, owner); return err },
		"Push.All": func() error {
			return db.Push().All(ctx, func(string, []PushService) bool { return true })
		},
		"VCards.Directory": func() error {
			return db.VCards().Directory(ctx, "example.org", func(string, Profile) bool { return true })
		},
	}
	writes = map[string]func() error{
		"Push.Put": func() error {
			_, err := db.Push().Put(ctx, owner, PushService{JID: "push.example.net", Node: "n"}, 5)
			return err
		},
		"Push.Remove": func() error {
			_, err := db.Push().Remove(ctx, owner, "push.example.net", "other", false)
			return err
		},
		"Private.Set": func() error {
			return db.Private().Set(ctx, owner, []PrivateItem{{NS: "storage:bookmarks", XML: []byte("<storage xmlns='storage:bookmarks'/>")}}, 1000)
		},
		"VCards.Set": func() error { return db.VCards().Set(ctx, owner, []byte("<vCard xmlns='vcard-temp'/>"), Profile{}) },
		"Rosters.Update": func() error {
			_, _, _, err := db.Rosters().Update(ctx, owner, other, putItem("Romeo", SubNone))
			return err
		},
		"SubRequests.Put":    func() error { return db.SubRequests().Put(ctx, owner, subReq(other, codecTime)) },
		"SubRequests.Delete": func() error { return db.SubRequests().Delete(ctx, owner, other) },
		"Offline.Put": func() error {
			_, err := db.Offline().Put(ctx, owner, []byte("<m/>"), codecTime, 0)
			return err
		},
		"Offline.Take": func() error { _, err := db.Offline().Take(ctx, owner); return err },
		"Offline.Restore": func() error {
			restore := func() error {
				return db.Offline().Restore(ctx, owner, []OfflineMessage{{ID: 1, Stored: codecTime, Stanza: []byte("<m/>")}})
			}
			err := restore()
			if errors.Is(err, ErrInvalid) {
				// Id 1 is not given until a Put has run, which in
				// this map's order may come later.
				if _, err = db.Offline().Put(ctx, owner, []byte("<m/>"), codecTime, 0); err == nil {
					err = restore()
				}
			}
			return err
		},
		"Blocklists.Add":          func() error { return db.Blocklists().Add(ctx, owner, other) },
		"Blocklists.Remove":       func() error { return db.Blocklists().Remove(ctx, owner, other) },
		"Blocklists.Remove all":   func() error { return db.Blocklists().Remove(ctx, owner) },
		"Activity.Set":            func() error { return db.Activity().Set(ctx, owner, Activity{LastLogout: codecTime}) },
		"PresenceOverrides.Set":   func() error { return db.PresenceOverrides().Set(ctx, owner, PresenceOverride{Show: "dnd"}) },
		"PresenceOverrides.Clear": func() error { return db.PresenceOverrides().Clear(ctx, owner) },
		"Archive.DeleteWith":      func() error { _, err := db.Archive().DeleteWith(ctx, owner, other); return err },
		"Archive.DeleteArchive":   func() error { _, err := db.Archive().DeleteArchive(ctx, owner); return err },
		"Archive.ExpireBefore":    func() error { _, err := db.Archive().ExpireBefore(ctx, codecTime, 100); return err },
		"Archive.MarkRead":        func() error { return db.Archive().MarkRead(ctx, owner, other, 1) },
		"Audit.Add": func() error {
			_, err := db.Audit().Add(ctx, AuditEntry{Actor: "cli", Action: "test", Target: owner})
			return err
		},
		"Rooms.Put": func() error { return db.Rooms().Put(ctx, fullRoom(room)) },
		"Rooms.Delete": func() error {
			// Put first: writes run in map order, and Delete of an absent
			// room is ErrNotFound.
			const gone = "gone@conference.example.org"
			if err := db.Rooms().Put(ctx, minimalRoom(gone)); err != nil {
				return err
			}
			return db.Rooms().Delete(ctx, gone)
		},
	}
	return reads, writes
}

func TestSubStoresCancelledContext(t *testing.T) {
	db := openTest(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	reads, writes := perAccountCalls(ctx, db)
	for _, calls := range []map[string]func() error{reads, writes} {
		for name, call := range calls {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with cancelled ctx = %v, want context.Canceled", name, err)
			}
		}
	}
}

func TestSubStoresReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	createAccounts(t, db, "juliet@example.org")
	_, writes := perAccountCalls(t.Context(), db)
	for name, write := range writes {
		if err := write(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	ro := openAt(t, path, Options{ReadOnly: true})
	reads, writes := perAccountCalls(t.Context(), ro)
	for name, read := range reads {
		if err := read(); err != nil && !errors.Is(err, ErrNotFound) {
			t.Errorf("%s on read-only DB = %v", name, err)
		}
	}
	for name, write := range writes {
		if err := write(); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on read-only DB = %v, want ErrReadOnly", name, err)
		}
	}
}

func TestSubStoresClosed(t *testing.T) {
	db := openTest(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	reads, writes := perAccountCalls(t.Context(), db)
	for _, calls := range []map[string]func() error{reads, writes} {
		for name, call := range calls {
			if err := call(); !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", name, err)
			}
		}
	}
}

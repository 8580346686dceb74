package muc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/mam"
	"switchboard/xmpp/xmpptest"
)

// inboxRouter drops what a room sends.
type inboxRouter struct{}

func (inboxRouter) Route(context.Context, *xmpp.Stanza) {}

// codecArchive formats stanza-ids with the server's codec; room archive
// queries are not used here.
type codecArchive struct{ ids mam.IDCodec }

func (a codecArchive) QueryRoomArchive(_ context.Context, _ jid.JID, st *xmpp.Stanza, _ mam.RoomView) (*xmpp.Stanza, error) {
	return st.Result(nil), nil
}

func (a codecArchive) FormatID(id uint64) string { return a.ids.Format(id) }

// inboxFixture is a room service with an Inbox that is not started, so
// that what it would write stays pending for the test to see.
type inboxFixture struct {
	db  *store.DB
	w   *store.ArchiveWriter
	in  *Inbox
	svc *Service
	ids mam.IDCodec
}

// openTestStore opens a store in a temporary directory with a started
// archive writer, both closed at the test's end.
func openTestStore(t *testing.T) (*store.DB, *store.ArchiveWriter) {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := db.Archive().NewWriter(store.WriterOptions{})
	w.Start(context.Background())
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return db, w
}

func newInboxFixture(t *testing.T) *inboxFixture {
	t.Helper()
	db, w := openTestStore(t)
	f := &inboxFixture{db: db, w: w, ids: mam.NewIDCodec([]byte("inbox test"))}
	var err error
	f.in, err = NewInbox(InboxDeps{Inbox: db.RoomInbox(), Archive: db.Archive(), Rooms: db.Rooms(), IDs: f.ids})
	if err != nil {
		t.Fatal(err)
	}
	f.svc, err = New(Options{Domain: "conf.example.org", Host: "example.org", Secret: []byte("inbox")},
		Deps{Rooms: db.Rooms(), History: db.Archive(), Writer: w, MAM: codecArchive{f.ids}, Router: inboxRouter{}, Inbox: f.in})
	if err != nil {
		t.Fatal(err)
	}
	f.in.AddService(f.svc)
	t.Cleanup(f.svc.Stop)
	return f
}

// send routes a stanza from a full JID to the service.
func (f *inboxFixture) send(t *testing.T, from jid.JID, xml string) {
	t.Helper()
	routeXML(t, f.svc, from, xml)
}

// routeXML routes a stanza, given as XML, from a full JID to svc.
func routeXML(t *testing.T, svc *Service, from jid.JID, xml string) {
	t.Helper()
	st := xmpptest.Stanza(t, xml)
	st.Stamp(from, from.String())
	svc.Route(t.Context(), st)
}

// barrier waits until the room has handled everything sent before.
func (f *inboxFixture) barrier(t *testing.T, rj jid.JID) {
	t.Helper()
	if err := f.svc.do(t.Context(), rj, func(context.Context, *room) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func (f *inboxFixture) pending() map[[2]string]store.RoomInboxChange {
	f.in.mu.Lock()
	defer f.in.mu.Unlock()
	out := map[[2]string]store.RoomInboxChange{}
	for k, v := range f.in.pending {
		out[k] = v
	}
	return out
}

// TestInboxWritesPerUserNotPerMessage: 200 occupants enter a room and 50
// messages fan out to them; the Inbox has one change per occupant (its
// entry) and none per message; markers are one change per user, however
// many; the list computes unread counts from the room's archive.
func TestInboxWritesPerUserNotPerMessage(t *testing.T) {
	ctx := t.Context()
	f := newInboxFixture(t)
	owner := jid.MustParse("owner@example.org")
	if err := f.svc.CreateRoom(ctx, "r", owner); err != nil {
		t.Fatal(err)
	}
	rj := jid.MustParse("r@conf.example.org")
	const occupants, messages = 200, 50
	users := make([]jid.JID, occupants)
	for i := range users {
		users[i] = jid.MustParse(fmt.Sprintf("u%03d@example.org/res", i))
		f.send(t, users[i], fmt.Sprintf("<presence to='r@conf.example.org/U%03d'><x xmlns='%s'/></presence>", i, NS))
	}
	f.barrier(t, rj)
	if p := f.pending(); len(p) != occupants {
		t.Fatalf("%d pending changes after %d joins, want one per occupant", len(p), occupants)
	}
	if err := f.in.flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Message i comes from users[i%7].
	for i := range messages {
		f.send(t, users[i%7], fmt.Sprintf("<message to='r@conf.example.org' type='groupchat' id='m%d'><body>%d</body></message>", i, i))
	}
	f.barrier(t, rj)
	if p := f.pending(); len(p) != 0 {
		t.Fatalf("%d pending changes after %d messages to %d occupants, want none", len(p), messages, occupants)
	}
	if err := f.w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := f.db.Archive().Query(ctx, store.ArchiveQuery{Archive: rj.String(), Max: messages})
	if err != nil || len(page.Records) != messages {
		t.Fatalf("room archive: %d records, %v", len(page.Records), err)
	}
	id := func(i int) uint64 { return page.Records[i].ID }

	// u010 marks message 20 read, then 30, then (late) 5; u011 marks 40.
	// Markers carry the room's stanza-id; others are ignored.
	for _, m := range []struct {
		user int
		mark string
	}{{10, f.ids.Format(id(20))}, {10, f.ids.Format(id(30))}, {10, f.ids.Format(id(5))}, {11, f.ids.Format(id(40))}, {12, "m3"}} {
		f.send(t, users[m.user], fmt.Sprintf("<message to='r@conf.example.org' type='groupchat'><displayed xmlns='%s' id='%s'/></message>", mam.NSMarkers, m.mark))
	}
	f.barrier(t, rj)
	p := f.pending()
	if len(p) != 2 || p[[2]string{"u010@example.org", rj.String()}].ReadID != id(30) || p[[2]string{"u011@example.org", rj.String()}].ReadID != id(40) {
		t.Fatalf("pending after markers: %+v; want u010 at message 30, u011 at 40", p)
	}

	list := func(user string) []mam.RoomConversation {
		t.Helper()
		convs, err := f.in.RoomConversations(ctx, jid.MustParse(user))
		if err != nil {
			t.Fatal(err)
		}
		return convs
	}
	for _, tc := range []struct {
		user   string
		unread int
	}{
		{"u010@example.org", messages - 31}, // after message 30
		{"u011@example.org", messages - 41}, // after message 40
		{"u003@example.org", 4},             // after its own last message, 45
		{"u100@example.org", messages},      // never marked, never posted: all since it entered
	} {
		convs := list(tc.user)
		if len(convs) != 1 || !convs[0].Room.Equal(rj) || convs[0].Unread != tc.unread || convs[0].Last.ID != id(messages-1) {
			t.Errorf("%s: %+v; want the room with %d unread and message %d last", tc.user, convs, tc.unread, messages-1)
		}
	}
	if convs := list("stranger@example.org"); len(convs) != 0 {
		t.Errorf("a user who never entered lists %+v", convs)
	}

	// An outcast no longer sees the room; the entry is kept.
	err = f.svc.do(ctx, rj, func(ctx context.Context, r *room) error {
		r.data.Affiliations["u003@example.org"] = affOutcast
		r.save(ctx)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if convs := list("u003@example.org"); len(convs) != 0 {
		t.Errorf("an outcast lists %+v", convs)
	}

	// A destroyed room leaves the lists.
	if err := f.svc.DestroyRoom(ctx, "r", ""); err != nil {
		t.Fatal(err)
	}
	if convs := list("u010@example.org"); len(convs) != 0 {
		t.Errorf("after the room was destroyed: %+v", convs)
	}
	if entries, err := f.db.RoomInbox().List(ctx, "u010@example.org"); err != nil || len(entries) != 0 {
		t.Errorf("u010's entries after the room was destroyed: %+v, %v", entries, err)
	}
}

// A running room that does not answer in time is left out of the list
// (not forgotten) and the other rooms are listed; once it answers again it
// is listed again. Rooms stuck together cost the list one wait, not one
// each.
func TestInboxSlowRoomsLeftOutOnce(t *testing.T) {
	ctx := t.Context()
	f := newInboxFixture(t)
	f.in.viewWait = 200 * time.Millisecond
	var logged struct {
		sync.Mutex
		strings.Builder
	}
	f.svc.log = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logged.Lock()
		defer logged.Unlock()
		return logged.Write(p)
	}), nil))
	owner := jid.MustParse("owner@example.org")
	user := jid.MustParse("u@example.org/res")
	rooms := []jid.JID{jid.MustParse("a@conf.example.org"), jid.MustParse("b@conf.example.org"), jid.MustParse("c@conf.example.org")}
	for _, rj := range rooms {
		if err := f.svc.CreateRoom(ctx, rj.Localpart(), owner); err != nil {
			t.Fatal(err)
		}
		f.send(t, user, fmt.Sprintf("<presence to='%s/U'><x xmlns='%s'/></presence>", rj, NS))
		f.barrier(t, rj)
	}
	listed := func() []string {
		t.Helper()
		convs, err := f.in.RoomConversations(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range convs {
			out = append(out, c.Room.Localpart())
		}
		return out
	}
	if got := fmt.Sprint(listed()); got != "[a b c]" {
		t.Fatalf("listed %s, want [a b c]", got)
	}

	// Rooms a and c are stuck (their goroutines wait for release).
	release := make(chan struct{})
	var stuck sync.WaitGroup
	for _, rj := range []jid.JID{rooms[0], rooms[2]} {
		entered := make(chan struct{})
		stuck.Go(func() {
			_ = f.svc.do(context.Background(), rj, func(context.Context, *room) error {
				close(entered)
				<-release
				return nil
			})
		})
		<-entered
	}
	start := time.Now()
	got := listed()
	took := time.Since(start)
	close(release)
	stuck.Wait()
	if fmt.Sprint(got) != "[b]" {
		t.Errorf("with a and c stuck: listed %v, want [b]", got)
	}
	if took < f.in.viewWait {
		t.Errorf("the list took %s with two stuck rooms, want at least the wait, %s", took, f.in.viewWait)
	}
	// Each stuck room is named in a warning: neither was skipped
	// silently because the first used up the wait.
	logged.Lock()
	text := logged.String()
	logged.Unlock()
	for _, rj := range []jid.JID{rooms[0], rooms[2]} {
		if !strings.Contains(text, "room="+rj.String()) {
			t.Errorf("no warning names %s; log:\n%s", rj, text)
		}
	}
	if got := fmt.Sprint(listed()); got != "[a b c]" {
		t.Errorf("after the rooms answered again: listed %s, want [a b c]", got)
	}
}

// TestInboxStopWritesPending: what is pending when the Inbox stops is
// written.
func TestInboxStopWritesPending(t *testing.T) {
	ctx := t.Context()
	f := newInboxFixture(t)
	f.in.Start()
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: "r@conf.example.org", Joined: time.Now(), ReadID: 9})
	if err := f.in.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	entries, err := f.db.RoomInbox().List(ctx, "u@example.org")
	if err != nil || len(entries) != 1 || entries[0].ReadID != 9 {
		t.Fatalf("after Stop: %+v, %v", entries, err)
	}
}

// A flush made for a request whose context has ended still writes
// everyone's pending changes; a failed write keeps them pending.
func TestInboxFlushOutlivesCallerAndKeepsFailedChanges(t *testing.T) {
	f := newInboxFixture(t)
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: "r@conf.example.org", Joined: time.Now(), ReadID: 9})
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.in.flush(cancelled); err != nil {
		t.Fatalf("flush with an ended context: %v", err)
	}
	entries, err := f.db.RoomInbox().List(t.Context(), "u@example.org")
	if err != nil || len(entries) != 1 || entries[0].ReadID != 9 {
		t.Fatalf("after flush: %+v, %v", entries, err)
	}
	if n := len(f.pending()); n != 0 {
		t.Fatalf("%d changes pending after a flush that wrote them", n)
	}

	f.in.change(store.RoomInboxChange{Owner: "v@example.org", Room: "r@conf.example.org", Joined: time.Now(), ReadID: 3})
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.in.flush(t.Context()); err == nil {
		t.Fatal("flush into a closed database succeeded")
	}
	if p := f.pending(); len(p) != 1 || p[[2]string{"v@example.org", "r@conf.example.org"}].ReadID != 3 {
		t.Fatalf("pending after a failed flush: %+v", p)
	}
	if !f.failing() {
		t.Fatal("a failed flush counted no failure")
	}
}

func (f *inboxFixture) failing() bool {
	f.in.mu.Lock()
	defer f.in.mu.Unlock()
	return f.in.failures > 0
}

// While writes of pending changes fail, the conversation list serves what
// is stored and leaves the retries to the writer; once a write succeeds
// it writes the pending changes first again.
func TestInboxListLeavesRetriesToTheWriter(t *testing.T) {
	f := newInboxFixture(t)
	user := jid.MustParse("u@example.org/phone")
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: "r@conf.example.org", Joined: time.Now()})
	f.in.mu.Lock()
	f.in.failures = 1 // as a failed write leaves it
	f.in.mu.Unlock()
	if _, err := f.in.RoomConversations(t.Context(), user); err != nil {
		t.Fatal(err)
	}
	if n := len(f.pending()); n != 1 {
		t.Fatalf("%d changes pending after a list while writes fail, want 1 (not written)", n)
	}
	if err := f.in.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if f.failing() {
		t.Fatal("a successful write left failures counted")
	}
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: "s@conf.example.org", Joined: time.Now()})
	if _, err := f.in.RoomConversations(t.Context(), user); err != nil {
		t.Fatal(err)
	}
	if n := len(f.pending()); n != 0 {
		t.Fatalf("%d changes pending after a list, want 0 (written first)", n)
	}
}

// A write with nothing pending (ForgetRoom took the last change of a
// failed write) ends the failures: the list writes first again.
func TestInboxFailuresEndWithNothingPending(t *testing.T) {
	f := newInboxFixture(t)
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: "r@conf.example.org", Joined: time.Now()})
	f.in.mu.Lock()
	f.in.failures = 2 // as two failed writes leave it
	f.in.mu.Unlock()
	if _, err := f.in.ForgetRoom(t.Context(), jid.MustParse("u@example.org"), jid.MustParse("r@conf.example.org")); err != nil {
		t.Fatal(err)
	}
	if err := f.in.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if f.failing() {
		t.Fatal("failures still counted with nothing pending")
	}
}

// Changes the store refuses as invalid are dropped, not queued again:
// written again they would be refused again. The batch's other changes
// are written. The store answered, so earlier failures no longer count.
func TestInboxDropsInvalidChanges(t *testing.T) {
	f := newInboxFixture(t)
	f.in.mu.Lock()
	f.in.failures = 2 // as two failed writes leave it
	f.in.mu.Unlock()
	f.in.change(store.RoomInboxChange{Owner: strings.Repeat("u", 4000) + "@example.org", Room: "r@conf.example.org", Joined: time.Now()})
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: "r@conf.example.org", Joined: time.Now()})
	if err := f.in.flush(t.Context()); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("flush of an invalid change: %v, want ErrInvalid", err)
	}
	if n := len(f.pending()); n != 0 || f.failing() {
		t.Fatalf("after a refused write: %d pending, failing %v; want none, false", n, f.failing())
	}
	if got, err := f.db.RoomInbox().List(t.Context(), "u@example.org"); err != nil || len(got) != 1 || got[0].Room != "r@conf.example.org" {
		t.Fatalf("the valid change of the batch: %+v, %v; want it written", got, err)
	}
}

// A user who follows the store's most rooms follows no more: the write
// succeeds, and the operator is warned once per write with the count of
// rooms left out.
func TestInboxWarnsOfRoomsOverTheLimit(t *testing.T) {
	f := newInboxFixture(t)
	var logged bytes.Buffer
	f.in.log = slog.New(slog.NewTextHandler(&logged, nil))
	now := time.Now()
	full := make([]store.RoomInboxChange, store.MaxRoomInbox)
	for i := range full {
		full[i] = store.RoomInboxChange{Owner: "u@example.org", Room: fmt.Sprintf("r%d@conf.example.org", i), Joined: now}
	}
	if skipped, err := f.db.RoomInbox().Apply(t.Context(), full); err != nil || skipped != 0 {
		t.Fatalf("following %d rooms: %d skipped, %v", len(full), skipped, err)
	}
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: "over1@conf.example.org", Joined: now})
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: "over2@conf.example.org", Joined: now})
	f.in.change(store.RoomInboxChange{Owner: "v@example.org", Room: "r0@conf.example.org", Joined: now})
	if err := f.in.flush(t.Context()); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if l := logged.String(); strings.Count(l, "level=WARN") != 1 || !strings.Contains(l, "per-user limit") || !strings.Contains(l, "skipped=2") {
		t.Fatalf("log %q, want one warning of 2 rooms skipped", l)
	}
	if n := len(f.pending()); n != 0 || f.failing() {
		t.Fatalf("after the write: %d pending, failing %v; want none, false", n, f.failing())
	}
	if got, err := f.db.RoomInbox().List(t.Context(), "v@example.org"); err != nil || len(got) != 1 {
		t.Fatalf("another user's change in the same write: %+v, %v; want it written", got, err)
	}
}

// ForgetRoom drops the pair's pending change instead of writing the
// pending changes first: the room does not come back, it counts as
// followed, and the other pending changes stay for the writer.
func TestInboxForgetRoomDropsItsPendingChange(t *testing.T) {
	f := newInboxFixture(t)
	u := jid.MustParse("u@example.org")
	stored, pending, other := "stored@conf.example.org", "pending@conf.example.org", "other@conf.example.org"
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: stored, Joined: time.Now()})
	if err := f.in.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: pending, Joined: time.Now()})
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: other, Joined: time.Now()})
	for _, room := range []string{stored, pending} {
		if ok, err := f.in.ForgetRoom(t.Context(), u, jid.MustParse(room)); err != nil || !ok {
			t.Fatalf("ForgetRoom(%s) = %v, %v; want true", room, ok, err)
		}
	}
	if ok, err := f.in.ForgetRoom(t.Context(), u, jid.MustParse("never@conf.example.org")); err != nil || ok {
		t.Fatalf("ForgetRoom of a room never followed = %v, %v; want false", ok, err)
	}
	if p := f.pending(); len(p) != 1 || p[[2]string{"u@example.org", other}].Joined.IsZero() {
		t.Fatalf("pending after ForgetRoom: %+v, want the other room's change alone", p)
	}
	if err := f.in.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	entries, err := f.db.RoomInbox().List(t.Context(), "u@example.org")
	if err != nil || len(entries) != 1 || entries[0].Room != other {
		t.Fatalf("followed after ForgetRoom and a write: %+v, %v; want %s alone", entries, err, other)
	}
	// A ForgetRoom that fails forgets nothing: the pending change stays.
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: pending, Joined: time.Now()})
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.in.ForgetRoom(t.Context(), u, jid.MustParse(pending)); err == nil || ok {
		t.Fatalf("ForgetRoom into a closed store = %v, %v; want an error", ok, err)
	}
	if p := f.pending(); p[[2]string{"u@example.org", pending}].Joined.IsZero() {
		t.Fatalf("pending after a failed ForgetRoom: %+v, want the room's change kept", p)
	}
}

func TestInboxRetryDelay(t *testing.T) {
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{
		{0, inboxDelay},
		{1, 2 * inboxDelay},
		{3, 8 * inboxDelay},
		{6, 3200 * time.Millisecond},
		{7, maxInboxRetry},
		{1000, maxInboxRetry},
	} {
		if got := inboxRetryDelay(tc.failures); got != tc.want {
			t.Errorf("inboxRetryDelay(%d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
}

// countWrites counts the Inbox's failed-write error lines.
type countWrites struct {
	mu sync.Mutex
	n  int
}

func (c *countWrites) Enabled(context.Context, slog.Level) bool { return true }
func (c *countWrites) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "muc: inbox: write" {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return nil
}
func (c *countWrites) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *countWrites) WithGroup(string) slog.Handler      { return c }
func (c *countWrites) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// A store that keeps failing is tried less and less often, not every
// inboxDelay; the changes stay pending.
func TestInboxBacksOffWhileTheStoreFails(t *testing.T) {
	f := newInboxFixture(t)
	var writes countWrites
	f.in.log = slog.New(&writes)
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	f.in.Start()
	f.in.change(store.RoomInboxChange{Owner: "v@example.org", Room: "r@conf.example.org", Joined: time.Now(), ReadID: 3})
	// Retries at 50, 150, 350, 750, 1550 ms and so on: 5 attempts in 2 s,
	// where a fixed inboxDelay would make about 40.
	time.Sleep(2 * time.Second)
	if n := writes.count(); n < 2 || n > 6 {
		t.Errorf("%d failed writes in 2 s, want 2 to 6", n)
	}
	// Stop's last write fails too (the store is closed), says so, and
	// keeps the change.
	if err := f.in.Stop(t.Context()); err == nil {
		t.Error("Stop after a last write into a closed store: no error")
	}
	if p := f.pending(); len(p) != 1 {
		t.Errorf("pending after failed writes: %+v", p)
	}
}

// writerFunc is an io.Writer made of a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A room that is gone is taken off the list with its pending change,
// which a later write would otherwise put back: here the change waits
// behind failed writes, so the listing does not write it first.
func TestInboxListDropsGoneRoomsPendingChanges(t *testing.T) {
	f := newInboxFixture(t)
	u := jid.MustParse("u@example.org")
	gone := "gone@conf.example.org" // never created on the service
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: gone, Joined: time.Now()})
	if err := f.in.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.in.change(store.RoomInboxChange{Owner: "u@example.org", Room: gone, ReadID: 7})
	f.in.mu.Lock()
	f.in.failures = 2 // as two failed writes leave it: the listing does not flush
	f.in.mu.Unlock()
	if convs, err := f.in.RoomConversations(t.Context(), u); err != nil || len(convs) != 0 {
		t.Fatalf("RoomConversations = %+v, %v; want none", convs, err)
	}
	if p := f.pending(); len(p) != 0 {
		t.Fatalf("pending after the gone room was listed: %+v, want none", p)
	}
	if err := f.in.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if entries, err := f.db.RoomInbox().List(t.Context(), "u@example.org"); err != nil || len(entries) != 0 {
		t.Fatalf("followed after the listing and a write: %+v, %v; want nothing", entries, err)
	}
}

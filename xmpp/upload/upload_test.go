package upload

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

type fixture struct {
	svc   *Service
	comp  *Component
	rt    *xmpptest.Recorder
	clock *xmpptest.Clock
	db    *store.DB
}

func newFixture(t *testing.T, expire time.Duration) *fixture {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{rt: &xmpptest.Recorder{}, clock: xmpptest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), db: db}
	f.svc, err = New(Options{
		Dir: filepath.Join(t.TempDir(), "files"), MaxFileSize: 100, Quota: 100 * store.UploadMinCharge, ExpireAfter: expire, Now: f.clock.Now,
	}, Deps{Slots: db.Uploads(), Router: f.rt})
	if err != nil {
		t.Fatal(err)
	}
	f.comp = f.svc.NewComponent("upload.example.org", "example.org")
	f.comp.SetBaseURL("https://example.org:5443")
	return f
}

// route gives the component a stanza and returns its answers.
func (f *fixture) route(t *testing.T, xml string) []*xmpp.Stanza {
	t.Helper()
	f.comp.Route(t.Context(), xmpptest.Stanza(t, xml))
	return f.rt.Take()
}

// slot requests a slot for juliet and returns its id.
func (f *fixture) slot(t *testing.T, size, ctype string) string {
	t.Helper()
	req := "<iq type='get' id='s' from='juliet@example.org/r' to='upload.example.org'><request xmlns='" + NS +
		"' filename='a.bin' size='" + size + "'"
	if ctype != "" {
		req += " content-type='" + ctype + "'"
	}
	out := f.route(t, req+"/></iq>")
	if len(out) != 1 || out[0].Type != xmpp.TypeResult {
		t.Fatalf("slot request answered %v", out)
	}
	u := out[0].Payload().Child("put", NS).AttrValue("url")
	id, _, ok := ParsePath(strings.TrimPrefix(u, "https://example.org:5443"))
	if !ok {
		t.Fatalf("slot URL %s", u)
	}
	return id
}

func errorCondition(st *xmpp.Stanza) string {
	e := st.El.Child("error", wire.NSClient)
	if e == nil || len(e.Children) == 0 {
		return ""
	}
	return e.Children[0].Name
}

// TestComponentSenders: only accounts of the component's host get slots;
// stanzas that are not IQ requests are never answered.
func TestComponentSenders(t *testing.T) {
	f := newFixture(t, 0)
	for _, tt := range []struct {
		name, xml, want string // want: "" none, "result", or an error condition
	}{
		{"account of the host", "<iq type='get' id='1' from='juliet@example.org/r' to='upload.example.org'><request xmlns='" + NS + "' filename='a' size='1'/></iq>", "result"},
		{"the host itself", "<iq type='get' id='1' from='example.org' to='upload.example.org'><request xmlns='" + NS + "' filename='a' size='1'/></iq>", "forbidden"},
		{"another domain's account", "<iq type='get' id='1' from='romeo@example.net/r' to='upload.example.org'><request xmlns='" + NS + "' filename='a' size='1'/></iq>", "forbidden"},
		{"to a JID at the service", "<iq type='get' id='1' from='juliet@example.org/r' to='x@upload.example.org'><request xmlns='" + NS + "' filename='a' size='1'/></iq>", "service-unavailable"},
		{"disco#info node", "<iq type='get' id='1' from='juliet@example.org/r' to='upload.example.org'><query xmlns='" + xmpp.NSDiscoInfo + "' node='x'/></iq>", "item-not-found"},
		{"empty IQ", "<iq type='get' id='1' from='juliet@example.org/r' to='upload.example.org'/>", "service-unavailable"},
		{"IQ result", "<iq type='result' id='1' from='juliet@example.org/r' to='upload.example.org'/>", ""},
		{"IQ error", "<iq type='error' id='1' from='juliet@example.org/r' to='upload.example.org'><error type='cancel'/></iq>", ""},
		{"message", "<message id='1' from='juliet@example.org/r' to='upload.example.org'><body>x</body></message>", ""},
		{"presence", "<presence from='juliet@example.org/r' to='upload.example.org'/>", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := f.route(t, tt.xml)
			switch {
			case tt.want == "" && len(out) != 0:
				t.Fatalf("answered %s", out[0].Bytes())
			case tt.want == "":
			case len(out) != 1:
				t.Fatalf("%d answers, want one", len(out))
			case tt.want == "result" && out[0].Type != xmpp.TypeResult,
				tt.want != "result" && errorCondition(out[0]) != tt.want:
				t.Fatalf("answered %s, want %s", out[0].Bytes(), tt.want)
			}
		})
	}
}

// TestComponentWithoutBaseURL: before the HTTPS listener is bound the
// service grants no slot.
func TestComponentWithoutBaseURL(t *testing.T) {
	f := newFixture(t, 0)
	c := f.svc.NewComponent("upload.example.org", "example.org")
	c.Route(t.Context(), xmpptest.Stanza(t, "<iq type='get' id='1' from='juliet@example.org/r' to='upload.example.org'><request xmlns='"+NS+"' filename='a' size='1'/></iq>"))
	if out := f.rt.Take(); len(out) != 1 || errorCondition(out[0]) != "service-unavailable" {
		t.Fatalf("answers %v", out)
	}
}

func put(t *testing.T, svc *Service, id string, body io.Reader, length int64, ctype string) int {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPut, "/upload/"+id+"/a.bin", body)
	req.ContentLength = length
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	svc.ServeHTTP(w, req)
	return w.Code
}

func get(t *testing.T, svc *Service, id string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	svc.ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/upload/"+id+"/a.bin", nil))
	return w
}

// failingReader returns some bytes, then an error, as a client that
// disconnects mid-upload.
type failingReader struct{ n int }

func (r *failingReader) Read(b []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("connection reset")
	}
	n := min(r.n, len(b))
	r.n -= n
	return n, nil
}

// TestPutInterrupted: an upload cut off leaves no file (temporary or not)
// and the slot unused.
func TestPutInterrupted(t *testing.T) {
	f := newFixture(t, 0)
	id := f.slot(t, "10", "")
	if code := put(t, f.svc, id, &failingReader{n: 5}, 10, ""); code/100 != 4 && code/100 != 5 {
		t.Fatalf("interrupted PUT: %d", code)
	}
	if entries, _ := os.ReadDir(f.svc.opts.Dir); len(entries) != 0 {
		t.Fatalf("files left: %v", entries)
	}
	if up, err := f.db.Uploads().Get(t.Context(), id); err != nil || up.State != store.UploadReserved {
		t.Fatalf("slot after an interrupted PUT: %+v, %v", up, err)
	}
	if code := put(t, f.svc, id, strings.NewReader("0123456789"), 10, "application/pdf"); code != http.StatusCreated {
		t.Fatalf("PUT after the interruption: %d", code)
	}
	w := get(t, f.svc, id)
	if w.Code != http.StatusOK || w.Body.String() != "0123456789" || w.Header().Get("Content-Type") != "application/pdf" ||
		!strings.HasPrefix(w.Header().Get("Content-Disposition"), "attachment") {
		t.Fatalf("GET: %d %q %v", w.Code, w.Body, w.Header())
	}
}

// TestPutSlotLifetime: a slot takes its PUT for SlotLifetime only.
func TestPutSlotLifetime(t *testing.T) {
	f := newFixture(t, 0)
	late, inTime := f.slot(t, "1", ""), f.slot(t, "1", "")
	f.clock.Advance(SlotLifetime)
	if code := put(t, f.svc, inTime, strings.NewReader("x"), 1, ""); code != http.StatusCreated {
		t.Fatalf("PUT at the end of the lifetime: %d", code)
	}
	f.clock.Advance(time.Second)
	if code := put(t, f.svc, late, strings.NewReader("x"), 1, ""); code != http.StatusGone {
		t.Fatalf("PUT after the lifetime: %d", code)
	}
	if w := get(t, f.svc, inTime); w.Header().Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("an upload of no declared or sent type is served as %q", w.Header().Get("Content-Type"))
	}
}

// TestCleanup: expired files and unused slots go, with their files; the
// others stay; a temporary file left by a crash goes after an hour.
func TestCleanup(t *testing.T) {
	f := newFixture(t, 24*time.Hour)
	ctx := t.Context()
	old := f.slot(t, "3", "")
	if code := put(t, f.svc, old, strings.NewReader("old"), 3, ""); code != http.StatusCreated {
		t.Fatal(code)
	}
	unused := f.slot(t, "1", "")
	stray := filepath.Join(f.svc.opts.Dir, tempPrefix+unused+"-1"+tempSuffix)
	if err := os.WriteFile(stray, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-2 * ReservedLifetime)
	if err := os.Chtimes(stray, past, past); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	recent := f.slot(t, "6", "")
	if code := put(t, f.svc, recent, strings.NewReader("recent"), 6, ""); code != http.StatusCreated {
		t.Fatal(code)
	}
	fresh := f.slot(t, "1", "")

	if n, err := f.svc.Cleanup(ctx); err != nil || n != 1 {
		t.Fatalf("first Cleanup = %d, %v; want the unused slot", n, err)
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stray temporary file: %v", err)
	}
	if n, _ := f.db.Uploads().Used(ctx, "juliet@example.org"); n != 3*store.UploadMinCharge { // three small files
		t.Fatalf("usage after the first cleanup = %d", n)
	}
	f.clock.Advance(23 * time.Hour)
	if w := get(t, f.svc, old); w.Code != http.StatusNotFound {
		t.Fatalf("GET of an expired file before cleanup: %d", w.Code)
	}
	if n, err := f.svc.Cleanup(ctx); err != nil || n != 2 {
		t.Fatalf("second Cleanup = %d, %v; want the old file and the fresh slot", n, err)
	}
	if _, err := os.Stat(filepath.Join(f.svc.opts.Dir, old)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("expired file: %v", err)
	}
	if w := get(t, f.svc, recent); w.Code != http.StatusOK || w.Body.String() != "recent" {
		t.Fatalf("GET of a file kept: %d", w.Code)
	}
	for _, id := range []string{old, unused, fresh} {
		if _, err := f.db.Uploads().Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("slot %s after cleanup: %v", id, err)
		}
	}
}

func TestNewOptions(t *testing.T) {
	deps := Deps{Slots: (*store.Uploads)(nil), Router: &xmpptest.Recorder{}}
	for _, o := range []Options{
		{MaxFileSize: 1},
		{Dir: t.TempDir()},
		{Dir: t.TempDir(), MaxFileSize: 1, Quota: -1},
	} {
		if _, err := New(o, deps); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if _, err := New(Options{Dir: t.TempDir(), MaxFileSize: 1}, Deps{}); err == nil {
		t.Error("New without deps accepted")
	}
}

// TestCleanupSparesClaimedAndChanged: Cleanup leaves a slot a PUT holds,
// and one that was uploaded since it was found expired (a PUT can outlast
// ReservedLifetime while its bytes keep coming).
func TestCleanupSparesClaimedAndChanged(t *testing.T) {
	f := newFixture(t, 0)
	ctx := t.Context()
	held := f.slot(t, "1", "")
	done := f.slot(t, "1", "")
	f.clock.Advance(ReservedLifetime + time.Minute)
	snapshot, err := f.db.Uploads().Get(ctx, done)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.Uploads().MarkUploaded(ctx, done, ""); err != nil {
		t.Fatal(err)
	}
	if removed, err := f.svc.removeExpired(ctx, snapshot); removed || err != nil {
		t.Fatalf("removeExpired of a slot uploaded since = %v, %v; want kept", removed, err)
	}
	if !f.svc.claim(held) {
		t.Fatal("claim")
	}
	if n, err := f.svc.Cleanup(ctx); n != 0 || err != nil {
		t.Fatalf("Cleanup while a PUT holds the only unused slot = %d, %v", n, err)
	}
	f.svc.release(held)
	if n, err := f.svc.Cleanup(ctx); n != 1 || err != nil {
		t.Fatalf("Cleanup once released = %d, %v; want the unused slot", n, err)
	}
	if _, err := f.db.Uploads().Get(ctx, done); err != nil {
		t.Fatalf("the uploaded file's record: %v", err)
	}
}

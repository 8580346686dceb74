package upload

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"switchboard/store"
	"switchboard/xmpp"
)

// idleTimeout is how long a PUT may go without receiving body bytes; the
// HTTP server's own read timeout (for whole requests) is lifted for it.
const idleTimeout = 30 * time.Second

// tempPrefix and tempSuffix name the temporary file of an upload in
// progress: .<id>-<random>.tmp in the upload directory.
const (
	tempPrefix = "."
	tempSuffix = ".tmp"
)

// ServeHTTP serves PathPrefix: PUT stores a file, GET and HEAD serve it,
// OPTIONS answers CORS preflights (see the package documentation).
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		s.put(w, r)
	case http.MethodGet, http.MethodHead:
		s.get(w, r)
	default:
		h.Set("Allow", "GET, HEAD, PUT, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// slotID returns the slot id a request's path names; when it names none
// it answers 404 and returns false.
func slotID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, _, ok := ParsePath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
	}
	return id, ok
}

// lookup finds slot id; when there is none it answers (404, or 500 if the
// store fails) and returns false.
func (s *Service) lookup(w http.ResponseWriter, r *http.Request, id string) (store.Upload, bool) {
	up, err := s.deps.Slots.Get(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.NotFound(w, r)
		return store.Upload{}, false
	case err != nil:
		s.log.Error("upload: read slot", xmpp.LogID, id, xmpp.LogErr, err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return store.Upload{}, false
	}
	return up, true
}

func (s *Service) put(w http.ResponseWriter, r *http.Request) {
	id, ok := slotID(w, r)
	if !ok {
		return
	}
	// The slot is read under the claim: a PUT of the same slot that
	// finished before has marked it uploaded, and this one must not
	// replace its file; Cleanup claims a slot before deleting it.
	if !s.claim(id) {
		http.Error(w, "this slot is being used", http.StatusConflict)
		return
	}
	defer s.release(id)
	up, ok := s.lookup(w, r, id)
	if !ok {
		return
	}
	switch {
	case up.State != store.UploadReserved:
		http.Error(w, "this slot was used already", http.StatusConflict)
		return
	case s.opts.Now().Sub(up.Created) > SlotLifetime:
		http.Error(w, "this slot expired; request a new one", http.StatusGone)
		return
	}
	switch {
	case r.ContentLength < 0:
		http.Error(w, "Content-Length is required", http.StatusLengthRequired)
		return
	case r.ContentLength > up.Size:
		http.Error(w, fmt.Sprintf("the slot is for %d bytes", up.Size), http.StatusRequestEntityTooLarge)
		return
	case r.ContentLength != up.Size:
		http.Error(w, fmt.Sprintf("the slot is for %d bytes", up.Size), http.StatusBadRequest)
		return
	}
	// ct is what the slot will be served as when its request declared
	// no type (XEP-0363 §5 lets the service assume
	// application/octet-stream; the PUT's own type is more useful).
	ct := mediaType(r.Header.Get("Content-Type"))
	if up.ContentType != "" {
		if ct != mediaType(up.ContentType) {
			http.Error(w, "Content-Type differs from the slot request's", http.StatusBadRequest)
			return
		}
		ct = "" // the declared type stays
	} else if len(ct) > store.MaxUploadContentType {
		ct = ""
	}
	body := &progressReader{r: http.MaxBytesReader(w, r.Body, up.Size), rc: http.NewResponseController(w)}
	body.extend()
	if err := s.store(id, body, up.Size); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) || errors.Is(err, errShortBody) || errors.Is(err, io.ErrUnexpectedEOF) {
			s.log.Debug("upload: body refused", xmpp.LogID, id, xmpp.LogErr, err)
			http.Error(w, "the body does not match the slot's size", http.StatusBadRequest)
			return
		}
		s.log.Warn("upload: storing failed", xmpp.LogID, id, xmpp.LogErr, err)
		http.Error(w, "the file could not be stored", http.StatusInternalServerError)
		return
	}
	if err := s.deps.Slots.MarkUploaded(r.Context(), id, ct); err != nil {
		if rmErr := os.Remove(s.path(id)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			s.log.Error("upload: remove file", xmpp.LogID, id, xmpp.LogErr, rmErr)
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			http.Error(w, "this slot expired; request a new one", http.StatusGone)
		default:
			s.log.Error("upload: mark uploaded", xmpp.LogID, id, xmpp.LogErr, err)
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
		return
	}
	s.log.Info("file uploaded", xmpp.LogJID, up.Owner, xmpp.LogID, id, "size", up.Size)
	w.WriteHeader(http.StatusCreated)
}

// claim marks id as being uploaded; false if it is already.
func (s *Service) claim(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.uploading[id] {
		return false
	}
	s.uploading[id] = true
	return true
}

func (s *Service) release(id string) {
	s.mu.Lock()
	delete(s.uploading, id)
	s.mu.Unlock()
}

// path is where the file of slot id is kept.
func (s *Service) path(id string) string { return filepath.Join(s.opts.Dir, id) }

var errShortBody = errors.New("upload: body shorter than its Content-Length")

// store writes size bytes of body to the file of slot id: to a temporary
// file first, synced, then renamed, and the directory synced, so that the
// file is either complete or absent.
func (s *Service) store(id string, body io.Reader, size int64) (err error) {
	f, err := os.CreateTemp(s.opts.Dir, tempPrefix+id+"-*"+tempSuffix)
	if err != nil {
		return fmt.Errorf("upload: temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := io.Copy(f, body)
	if err != nil {
		return fmt.Errorf("upload: write %s: %w", id, err)
	}
	if n != size {
		return errShortBody
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("upload: sync %s: %w", id, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("upload: close %s: %w", id, err)
	}
	if err := os.Rename(f.Name(), s.path(id)); err != nil {
		return fmt.Errorf("upload: rename %s: %w", id, err)
	}
	if d, err := os.Open(s.opts.Dir); err == nil {
		// Best effort: the rename is durable once the directory is.
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// progressReader moves the connection's read deadline idleTimeout ahead
// as body bytes arrive (at most once a second), so that a large upload
// over a slow link is not cut by the server's read timeout while a
// stalled one still is.
type progressReader struct {
	r    io.Reader
	rc   *http.ResponseController
	last time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && time.Since(p.last) >= time.Second {
		p.extend()
	}
	return n, err
}

func (p *progressReader) extend() {
	p.last = time.Now()
	// Not every connection supports deadlines (http.ErrNotSupported);
	// the server's read timeout then applies.
	_ = p.rc.SetReadDeadline(p.last.Add(idleTimeout))
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	id, ok := slotID(w, r)
	if !ok {
		return
	}
	up, ok := s.lookup(w, r, id)
	if !ok {
		return
	}
	now := s.opts.Now()
	if up.State != store.UploadDone || s.expired(up, now) {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(s.path(id))
	if err != nil {
		s.log.Warn("upload: file of an uploaded slot is missing", xmpp.LogID, id, xmpp.LogErr, err)
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	ct := up.ContentType
	if mediaType(ct) == "" {
		ct = "application/octet-stream"
	}
	disposition := "attachment"
	if inline(mediaType(ct)) {
		disposition = "inline"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": up.Name}))
	h.Set("X-Content-Type-Options", "nosniff")
	// XEP-0363 §6: no active content, no framing; sandbox also isolates
	// a document opened directly.
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox")
	h.Set("ETag", `"`+id+`"`)
	maxAge := 365 * 24 * time.Hour
	if s.opts.ExpireAfter > 0 {
		maxAge = min(maxAge, up.Created.Add(s.opts.ExpireAfter).Sub(now))
	}
	// A file never changes: it may be cached until it expires.
	h.Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(maxAge/time.Second), 10)+", immutable")
	http.ServeContent(w, r, up.Name, up.Created, f)
}

// expired reports whether an uploaded file is past ExpireAfter (served as
// absent before Cleanup deletes it).
func (s *Service) expired(up store.Upload, now time.Time) bool {
	return s.opts.ExpireAfter > 0 && now.Sub(up.Created) >= s.opts.ExpireAfter
}

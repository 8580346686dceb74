package upload

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// NS is the XEP-0363 namespace.
const NS = "urn:xmpp:http:upload:0"

// Lifetimes of a slot.
const (
	// SlotLifetime is how long after the request a slot accepts its PUT
	// (XEP-0363 §5 recommends around 300 s).
	SlotLifetime = 5 * time.Minute
	// ReservedLifetime is how long Cleanup keeps a slot never used.
	ReservedLifetime = time.Hour
)

// Slots is what the service needs of the store (store.Uploads).
type Slots interface {
	Reserve(ctx context.Context, up store.Upload, quota int64) error
	Get(ctx context.Context, id string) (store.Upload, error)
	MarkUploaded(ctx context.Context, id, contentType string) error
	Delete(ctx context.Context, id string) error
	Expired(ctx context.Context, doneBefore, reservedBefore time.Time, max int) ([]store.Upload, error)
}

// Options configure a Service.
type Options struct {
	// Dir holds the files (created, mode 0700, if missing).
	Dir string
	// MaxFileSize is the largest file accepted, in bytes. Positive.
	MaxFileSize int64
	// Quota bounds the bytes of one account's slots; 0 is unlimited.
	Quota int64
	// ExpireAfter deletes files this long after their request; 0 keeps
	// them.
	ExpireAfter time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Deps are the service's collaborators.
type Deps struct {
	Slots  Slots
	Router xmpp.Router
}

// Service stores and serves the files of every host's upload component.
// It is an http.Handler for PathPrefix.
type Service struct {
	opts Options
	deps Deps
	log  *slog.Logger

	mu sync.Mutex
	// uploading holds the ids whose PUT is in progress: a second PUT of
	// one is refused, and Cleanup leaves it.
	uploading map[string]bool
}

// New checks opts and creates the upload directory.
func New(opts Options, deps Deps) (*Service, error) {
	switch {
	case opts.Dir == "":
		return nil, errors.New("upload: no directory")
	case opts.MaxFileSize < 1:
		return nil, fmt.Errorf("upload: max file size %d is not positive", opts.MaxFileSize)
	case opts.Quota < 0 || opts.ExpireAfter < 0:
		return nil, errors.New("upload: negative quota or expiry")
	case deps.Slots == nil || deps.Router == nil:
		return nil, errors.New("upload: missing slots or router")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("upload: directory: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{opts: opts, deps: deps, log: log, uploading: map[string]bool{}}, nil
}

// Component is a host's upload service: it answers disco and slot
// requests addressed to its domain.
type Component struct {
	svc    *Service
	domain string
	host   string
	base   atomic.Pointer[string]
}

var _ xmpp.Component = (*Component)(nil)

// NewComponent returns the upload component at domain for the accounts
// of host. It answers slot requests once SetBaseURL was called.
func (s *Service) NewComponent(domain, host string) *Component {
	return &Component{svc: s, domain: domain, host: host}
}

// SetBaseURL sets the base of the component's URLs ("https://host:port",
// maybe with a path; no trailing slash): the HTTPS listener's address as
// clients reach it.
func (c *Component) SetBaseURL(base string) { c.base.Store(&base) }

// Domain implements xmpp.Component.
func (c *Component) Domain() string { return c.domain }

// Route implements xmpp.Component: it answers IQ requests to the service
// and ignores everything else (see the package documentation).
func (c *Component) Route(ctx context.Context, st *xmpp.Stanza) {
	if !st.IsIQRequest() {
		return
	}
	reply, err := c.answer(ctx, st)
	if err != nil {
		var app *wire.Element
		se := xmpp.AsStanzaError(err)
		var tooLarge fileTooLarge
		if errors.As(err, &tooLarge) {
			se = xmpp.StanzaError(stanza.NotAcceptable, fmt.Sprintf("File too large. The maximum file size is %d bytes", tooLarge.max))
			app = tooLarge.element()
		}
		if se.Condition == stanza.InternalServerError {
			c.svc.log.Error("upload: slot request failed", xmpp.LogJID, st.From.String(), xmpp.LogErr, err)
		}
		reply = st.ErrorReplyApp(se, app)
	}
	if reply != nil && !xmpp.IsZero(st.From) {
		c.svc.deps.Router.Route(ctx, reply)
	}
}

func (c *Component) answer(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	p := st.Payload()
	if p == nil || st.To.Localpart() != "" || st.To.Resourcepart() != "" || st.Type != xmpp.TypeGet {
		return nil, xmpp.StanzaError(stanza.ServiceUnavailable, "")
	}
	switch {
	case p.Space == xmpp.NSDiscoInfo && p.Name == "query":
		if p.AttrValue("node") != "" {
			return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
		}
		return st.Result(c.svc.discoInfo()), nil
	case p.Space == xmpp.NSDiscoItem && p.Name == "query":
		if p.AttrValue("node") != "" {
			return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
		}
		return st.Result(wire.New("query", xmpp.NSDiscoItem)), nil
	case p.Space == NS && p.Name == "request":
		return c.slot(ctx, st, p)
	}
	return nil, xmpp.StanzaError(stanza.ServiceUnavailable, "")
}

// discoInfo is the service's disco#info (XEP-0363 §3).
func (s *Service) discoInfo() *wire.Element {
	q := wire.New("query", xmpp.NSDiscoInfo)
	q.AddChild(wire.New("identity", xmpp.NSDiscoInfo, wire.Attr{Name: "category", Value: "store"},
		wire.Attr{Name: "type", Value: "file"}, wire.Attr{Name: "name", Value: "HTTP File Upload"}))
	for _, f := range []string{xmpp.NSDiscoInfo, NS} {
		q.AddChild(wire.New("feature", xmpp.NSDiscoInfo, wire.Attr{Name: "var", Value: f}))
	}
	// XEP-0128 extended information: the size limit, so that clients
	// need not ask for a slot to learn it.
	q.AddChild(wire.New("x", xmpp.NSData, wire.Attr{Name: "type", Value: "result"}).AddChild(
		xmpp.FormField("FORM_TYPE", "hidden", NS),
		xmpp.FormField("max-file-size", "", strconv.FormatInt(s.opts.MaxFileSize, 10)),
	))
	return q
}

// fileTooLarge is the error of a request above the size limit, answered
// with not-acceptable and the XEP-0363 §4 application condition.
type fileTooLarge struct{ max int64 }

func (e fileTooLarge) Error() string {
	return fmt.Sprintf("upload: file too large: the maximum file size is %d bytes", e.max)
}

func (e fileTooLarge) element() *wire.Element {
	return wire.New("file-too-large", NS).AddChild(
		wire.New("max-file-size", NS).SetText(strconv.FormatInt(e.max, 10)))
}

// slot answers a slot request (XEP-0363 §4).
func (c *Component) slot(ctx context.Context, st *xmpp.Stanza, p *wire.Element) (*xmpp.Stanza, error) {
	if st.From.Localpart() == "" || st.From.Domainpart() != c.host {
		return nil, xmpp.StanzaError(stanza.Forbidden, "Only accounts of "+c.host+" may upload files here")
	}
	base := c.base.Load()
	if base == nil {
		return nil, xmpp.StanzaError(stanza.ServiceUnavailable, "")
	}
	ct, hasType := p.Attr("content-type")
	req, err := parseRequest(p.AttrValue("filename"), p.AttrValue("size"), ct, hasType)
	if err != nil {
		return nil, xmpp.StanzaError(stanza.BadRequest, err.Error())
	}
	if req.size > c.svc.opts.MaxFileSize {
		return nil, fileTooLarge{c.svc.opts.MaxFileSize}
	}
	var random [16]byte
	_, _ = rand.Read(random[:]) // never fails (crypto/rand)
	up := store.Upload{
		ID: hex.EncodeToString(random[:]), Owner: st.From.Bare().String(), Name: req.name,
		Size: req.size, ContentType: req.contentType, Created: c.svc.opts.Now(),
	}
	if err := c.svc.deps.Slots.Reserve(ctx, up, c.svc.opts.Quota); err != nil {
		if errors.Is(err, store.ErrQuota) {
			return nil, xmpp.StanzaError(stanza.ResourceConstraint,
				fmt.Sprintf("Quota reached: your files may take %d bytes", c.svc.opts.Quota))
		}
		return nil, fmt.Errorf("upload: reserve slot: %w", err)
	}
	c.svc.log.Debug("upload slot reserved", xmpp.LogJID, up.Owner, xmpp.LogID, up.ID, "size", up.Size)
	u := *base + PathPrefix + up.ID + "/" + url.PathEscape(up.Name)
	slot := wire.New("slot", NS).AddChild(
		wire.New("put", NS, wire.Attr{Name: "url", Value: u}),
		wire.New("get", NS, wire.Attr{Name: "url", Value: u}),
	)
	return st.Result(slot), nil
}

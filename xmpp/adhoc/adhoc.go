package adhoc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// NSData is the XEP-0004 namespace.
const NSData = xmpp.NSData

// Limits on the sessions of multi-stage commands (XEP-0050 §3.4): a
// session is opened when a command's form is sent and closed by its
// submission or cancellation; one left open expires after SessionLifetime.
const (
	// SessionLifetime is how long a command's form may wait for its
	// submission.
	SessionLifetime = 10 * time.Minute
	// MaxSessionsPerUser bounds the open sessions of one account (all
	// its resources); opening one more closes its oldest.
	MaxSessionsPerUser = 8
	// MaxSessions bounds the open sessions of all requesters; opening one
	// more closes the oldest of all, so that no one can lock others out.
	MaxSessions = 10000
)

// Module serves ad-hoc commands.
type Module struct {
	reg *xmpp.Registry
	now func() time.Time

	mu       sync.Mutex
	sessions map[string]session // by sessionid
}

// session is an open multi-stage command: who opened it, for which node,
// and when.
type session struct {
	requester jid.JID // the full JID
	node      string
	opened    time.Time
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module.
func New() *Module { return &Module{now: time.Now, sessions: map[string]session{}} }

// Name implements xmpp.Module.
func (*Module) Name() string { return "adhoc" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, _ *xmpp.Hooks) error {
	m.reg = reg
	reg.AddFeature(xmpp.TargetHost, xmpp.NSCommands)
	if err := reg.AddNode(xmpp.DiscoNode{
		Target: xmpp.TargetHost, Node: xmpp.NSCommands,
		Identities: []xmpp.Identity{{Target: xmpp.TargetHost, Category: "automation", Type: "command-list"}},
		Items:      m.list,
	}); err != nil {
		return err
	}
	return reg.HandleIQ(m.Name(), xmpp.TargetHost, xmpp.TypeSet, xmpp.NSCommands, "command", m.execute)
}

func (m *Module) allowed(ctx context.Context, st *xmpp.Stanza, c xmpp.Command) bool {
	return c.Allowed == nil || c.Allowed(ctx, st)
}

// list is the command list (XEP-0050 §3.2), filtered by permission.
func (m *Module) list(ctx context.Context, st *xmpp.Stanza) []xmpp.DiscoItem {
	var out []xmpp.DiscoItem
	for _, c := range m.reg.Commands() {
		if m.allowed(ctx, st, c) {
			out = append(out, xmpp.DiscoItem{JID: st.To.String(), Node: c.Node, Name: c.Name})
		}
	}
	return out
}

func reply(st *xmpp.Stanza, node, id, status string, children ...*wire.Element) *xmpp.Stanza {
	c := wire.New("command", xmpp.NSCommands,
		wire.Attr{Name: "node", Value: node},
		wire.Attr{Name: "sessionid", Value: id},
		wire.Attr{Name: "status", Value: status})
	c.Children = children
	return st.Result(c)
}

// execute runs a command (XEP-0050 §3.4): without a submitted form it
// returns the command's form and opens a session; with one it runs the
// command, closing the session named by sessionid (a one-stage execution
// needs none).
func (m *Module) execute(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	p := st.Payload()
	node := p.AttrValue("node")
	var cmd *xmpp.Command
	for _, c := range m.reg.Commands() {
		if c.Node == node {
			cmd = &c
		}
	}
	if cmd == nil {
		return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
	}
	if !m.allowed(ctx, st, *cmd) {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	action := p.AttrValue("action")
	switch action {
	case "", "execute", "complete", "next", "cancel":
	case "prev":
		// Every command here has one form: there is no previous stage.
		return badRequest(st, "bad-action"), nil
	default:
		return badRequest(st, "malformed-action"), nil
	}
	id := p.AttrValue("sessionid")
	x := p.Child("x", NSData)
	// The session ends with a cancel or a submission that runs; a form
	// asked for again keeps it, and its id (clients check that it
	// stays), and so does a submission the command refuses, which can
	// be corrected and sent again.
	run := cmd.Form == nil || (x != nil && x.AttrValue("type") == "submit")
	if id != "" {
		// A stage of an open session: it must be the requester's own,
		// for this node, and not expired (XEP-0050 §4.4: bad-sessionid,
		// session-expired).
		if errReply := m.use(st, id, node, action == "cancel"); errReply != nil {
			return errReply, nil
		}
	}
	if action == "cancel" {
		if id == "" {
			return badRequest(st, "bad-sessionid"), nil
		}
		return reply(st, node, id, "canceled"), nil
	}
	if !run {
		// First stage: the form to fill in, with "complete" allowed.
		if id == "" {
			id = m.open(st, node)
		}
		actions := wire.New("actions", xmpp.NSCommands, wire.Attr{Name: "execute", Value: "complete"}).AddChild(wire.New("complete", xmpp.NSCommands))
		return reply(st, node, id, "executing", actions, cmd.Form(ctx, st)), nil
	}
	if id == "" {
		// A one-stage execution, with the form submitted at once.
		id = newSessionID()
	}
	note, err := cmd.Run(ctx, st, xmpp.FormValues(x))
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	delete(m.sessions, id)
	m.mu.Unlock()
	var children []*wire.Element
	if note != "" {
		children = append(children, wire.New("note", xmpp.NSCommands, wire.Attr{Name: "type", Value: "info"}).SetText(note))
	}
	return reply(st, node, id, "completed", children...), nil
}

// badRequest answers st with bad-request and the XEP-0050 §4.4
// application condition app.
func badRequest(st *xmpp.Stanza, app string) *xmpp.Stanza {
	return st.ErrorReplyApp(xmpp.StanzaError(stanza.BadRequest, ""), wire.New(app, xmpp.NSCommands))
}

func newSessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// open records a new session of node for st's sender and returns its id.
func (m *Module) open(st *xmpp.Stanza, node string) string {
	user := st.From.Bare()
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sessions) >= MaxSessions {
		m.expire(now)
	}
	var mine, oldest string
	n := 0
	for id, s := range m.sessions {
		if oldest == "" || s.opened.Before(m.sessions[oldest].opened) {
			oldest = id
		}
		if s.requester.Bare().Equal(user) {
			n++
			if mine == "" || s.opened.Before(m.sessions[mine].opened) {
				mine = id
			}
		}
	}
	switch {
	case n >= MaxSessionsPerUser:
		delete(m.sessions, mine)
	case len(m.sessions) >= MaxSessions:
		delete(m.sessions, oldest)
	}
	id := newSessionID()
	m.sessions[id] = session{requester: st.From, node: node, opened: now}
	return id
}

// use checks that st, a stage on node, may use session id, and ends the
// session if final (a cancel); any other stage renews its lifetime (a
// submission that runs ends it after, in execute). It returns the error reply when st may not use the
// session; a cancel of an expired session is no error (a client cancels
// when its dialog closes, however late).
func (m *Module) use(st *xmpp.Stanza, id, node string, final bool) *xmpp.Stanza {
	now := m.now()
	m.mu.Lock()
	s, ok := m.sessions[id]
	ok = ok && s.requester.Equal(st.From) && s.node == node
	expired := ok && now.Sub(s.opened) > SessionLifetime
	switch {
	case ok && (final || expired):
		delete(m.sessions, id)
	case ok:
		s.opened = now
		m.sessions[id] = s
	}
	m.mu.Unlock()
	switch {
	case !ok:
		return badRequest(st, "bad-sessionid")
	case expired && !final:
		return st.ErrorReplyApp(xmpp.StanzaError(stanza.NotAllowed, "the command's session expired"), wire.New("session-expired", xmpp.NSCommands))
	}
	return nil
}

// expire drops the sessions older than SessionLifetime. m.mu is held.
func (m *Module) expire(now time.Time) {
	for id, s := range m.sessions {
		if now.Sub(s.opened) > SessionLifetime {
			delete(m.sessions, id)
		}
	}
}

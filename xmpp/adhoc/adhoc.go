// Package adhoc serves the server's commands with XEP-0050 Ad-Hoc Commands
// (1.3): discovery of the commands a requester may run (disco#items on the
// node http://jabber.org/protocol/commands of the server), and execution —
// a first request returns the command's data form, a submission runs it
// and completes with a note. The commands themselves are data that modules
// add to the registry (xmpp.Command).
package adhoc

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// NSData is the XEP-0004 namespace.
const NSData = xmpp.NSData

// Module serves ad-hoc commands.
type Module struct {
	reg *xmpp.Registry
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module.
func New() *Module { return &Module{} }

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

func reply(st *xmpp.Stanza, node, session, status string, children ...*wire.Element) *xmpp.Stanza {
	c := wire.New("command", xmpp.NSCommands,
		wire.Attr{Name: "node", Value: node},
		wire.Attr{Name: "sessionid", Value: session},
		wire.Attr{Name: "status", Value: status})
	c.Children = children
	return st.Result(c)
}

// execute runs a command (XEP-0050 §3.4): without a submitted form it
// returns the command's form; with one it runs the command.
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
	session := p.AttrValue("sessionid")
	if session == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		session = hex.EncodeToString(b[:])
	}
	action := p.AttrValue("action")
	if action == "cancel" {
		return reply(st, node, session, "canceled"), nil
	}
	switch action {
	case "", "execute", "complete", "next":
	default:
		return nil, xmpp.StanzaError(stanza.BadRequest, "unknown action")
	}
	x := p.Child("x", NSData)
	if (x == nil || x.AttrValue("type") != "submit") && cmd.Form != nil {
		// First stage: the form to fill in, with "complete" allowed.
		actions := wire.New("actions", xmpp.NSCommands, wire.Attr{Name: "execute", Value: "complete"}).AddChild(wire.New("complete", xmpp.NSCommands))
		return reply(st, node, session, "executing", actions, cmd.Form(ctx, st)), nil
	}
	note, err := cmd.Run(ctx, st, xmpp.FormValues(x))
	if err != nil {
		return nil, err
	}
	var children []*wire.Element
	if note != "" {
		children = append(children, wire.New("note", xmpp.NSCommands, wire.Attr{Name: "type", Value: "info"}).SetText(note))
	}
	return reply(st, node, session, "completed", children...), nil
}

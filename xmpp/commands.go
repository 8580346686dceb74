package xmpp

import (
	"context"
	"fmt"
	"sort"

	"switchboard/xmpp/wire"
)

// Command is a server command offered with XEP-0050 Ad-Hoc Commands.
// Commands are data: modules add them to the Registry and the ad-hoc
// module serves them.
type Command struct {
	// Node identifies the command; Name is its human-readable name.
	Node, Name string
	// Allowed reports whether the requester may see and run it.
	Allowed func(ctx context.Context, st *Stanza) bool
	// Form returns the data form (jabber:x:data, type form) asking for
	// the command's input, or nil if it takes none.
	Form func(ctx context.Context, st *Stanza) *wire.Element
	// Run executes the command with the submitted fields and returns a
	// note for the user, or an error (a stanza error is sent as is).
	Run func(ctx context.Context, st *Stanza, fields map[string][]string) (string, error)
}

// AddCommand registers an ad-hoc command; a duplicate node is an error.
func (r *Registry) AddCommand(c Command) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.frozen {
		return fmt.Errorf("registry: command %s: registration after startup", c.Node)
	}
	if r.commands == nil {
		r.commands = map[string]Command{}
	}
	if _, ok := r.commands[c.Node]; ok {
		return fmt.Errorf("registry: command %s registered twice", c.Node)
	}
	r.commands[c.Node] = c
	return nil
}

// Commands returns the registered commands sorted by node.
func (r *Registry) Commands() []Command {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Command, 0, len(r.commands))
	for _, c := range r.commands {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// DiscoItem is an item of a disco#items answer.
type DiscoItem struct {
	JID, Node, Name string
}

// DiscoNode describes a service discovery node (XEP-0030 §3.2, §4.2).
type DiscoNode struct {
	Target     Target
	Node       string
	Identities []Identity
	Features   []string
	// Items lists the node's items for a requester.
	Items func(ctx context.Context, st *Stanza) []DiscoItem
}

// AddNode registers a disco node.
func (r *Registry) AddNode(n DiscoNode) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nodes == nil {
		r.nodes = map[string]DiscoNode{}
	}
	if _, ok := r.nodes[n.Node]; ok {
		return fmt.Errorf("registry: disco node %s registered twice", n.Node)
	}
	r.nodes[n.Node] = n
	return nil
}

// Node returns the disco node for a target.
func (r *Registry) Node(t Target, node string) (DiscoNode, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n, ok := r.nodes[node]
	if ok && n.Target&t != 0 {
		return n, true
	}
	if c, ok := r.commands[node]; ok && t == TargetHost {
		// XEP-0050 §3.3: a command node's info.
		return DiscoNode{Target: TargetHost, Node: node,
			Identities: []Identity{{Target: TargetHost, Category: "automation", Type: "command-node", Name: c.Name}},
			Features:   []string{NSCommands, "jabber:x:data"}}, true
	}
	return DiscoNode{}, false
}

// NSCommands is the XEP-0050 namespace.
const NSCommands = "http://jabber.org/protocol/commands"

package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.etcd.io/bbolt"
)

// pepCfg returns n without its sequence number: the configuration a
// caller gave.
func pepCfg(n PEPNode) PEPNode {
	n.seq = 0
	return n
}

// pepConf is a node configuration with the given name and MaxItems.
func pepConf(name string, maxItems int) PEPNode {
	return PEPNode{Node: name, Access: "presence", MaxItems: maxItems, SendLast: "on_sub_and_presence", NotifyRetract: true}
}

// pepItem is an item with a payload that names it.
func pepItem(id, payload string) PEPItem {
	return PEPItem{ID: id, Publisher: juliet + "/balcony", Payload: []byte(payload)}
}

// pepPub publishes it to owner's node n (created with n if absent) with
// no limits, failing the test on error.
func pepPub(t *testing.T, p *PEP, owner string, n PEPNode, it PEPItem) (PEPNode, bool) {
	t.Helper()
	got, created, err := p.Publish(t.Context(), PEPPublish{Owner: owner, Item: it, Create: n})
	if err != nil {
		t.Fatalf("Publish(%s, %q, %q): %v", owner, n.Node, it.ID, err)
	}
	return got, created
}

func pepIDs(items []PEPItem) []string {
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return ids
}

func pepSize(items ...PEPItem) int64 {
	var n int64
	for _, it := range items {
		n += int64(it.size())
	}
	return n
}

// pepWantItems checks that owner's node holds want, oldest first.
func pepWantItems(t *testing.T, p *PEP, owner, node string, want ...PEPItem) {
	t.Helper()
	_, got, err := p.Items(t.Context(), owner, node, 0, nil)
	if err != nil {
		t.Fatalf("Items(%s, %q): %v", owner, node, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Items(%s, %q) = %q, want %q", owner, node, pepIDs(got), pepIDs(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Publisher != want[i].Publisher || !bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Fatalf("Items(%s, %q)[%d] = %+v, want %+v", owner, node, i, got[i], want[i])
		}
	}
}

// pepWantUsage checks owner's usage.
func pepWantUsage(t *testing.T, p *PEP, owner string, want int64) {
	t.Helper()
	if got, err := p.Usage(t.Context(), owner); err != nil || got != want {
		t.Fatalf("Usage(%s) = %d, %v; want %d", owner, got, err, want)
	}
}

// pepKeys returns the keys of a pep bucket starting with prefix.
func pepKeys(t *testing.T, db *DB, name string, prefix []byte) [][]byte {
	t.Helper()
	var keys [][]byte
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket([]byte(name)).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestPEPPublishAndItems(t *testing.T) {
	ctx := t.Context()
	p := openTest(t).PEP()
	const node = "urn:xmpp:mood:0"
	conf := pepConf(node, 10)
	conf.RosterGroups = []string{"Friends"}
	a, b, c := pepItem("a", "<mood>happy</mood>"), pepItem("b", "<mood>sad</mood>"), pepItem("c", "")

	if _, err := p.Node(ctx, juliet, node); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Node before any publication = %v, want ErrNotFound", err)
	}
	for i, it := range []PEPItem{a, b, c} {
		// Later publications carry another configuration: it is used only
		// to create the node.
		create := conf
		if i > 0 {
			create = pepConf(node, 1)
		}
		got, created := pepPub(t, p, juliet, create, it)
		if created != (i == 0) || !reflect.DeepEqual(pepCfg(got), conf) {
			t.Fatalf("Publish #%d = %+v, created %v; want %+v, created %v", i, got, created, conf, i == 0)
		}
	}
	if got, err := p.Node(ctx, juliet, node); err != nil || !reflect.DeepEqual(pepCfg(got), conf) {
		t.Fatalf("Node = %+v, %v; want %+v", got, err, conf)
	}
	pepWantItems(t, p, juliet, node, a, b, c)
	// An empty payload comes back as nil.
	if _, items, _ := p.Items(ctx, juliet, node, 0, nil); items[2].Payload != nil {
		t.Errorf("empty payload read back as %q, want nil", items[2].Payload)
	}
	pepWantUsage(t, p, juliet, pepSize(a, b, c))

	tests := []struct {
		name string
		max  int
		ids  []string
		want []string
	}{
		{"all", 0, nil, []string{"a", "b", "c"}},
		{"negative max is all", -1, nil, []string{"a", "b", "c"}},
		{"newest one", 1, nil, []string{"c"}},
		{"newest two", 2, nil, []string{"b", "c"}},
		{"max equal to count", 3, nil, []string{"a", "b", "c"}},
		{"max above count", 50, nil, []string{"a", "b", "c"}},
		{"ids oldest first", 0, []string{"c", "a"}, []string{"a", "c"}},
		{"ids with an absent one", 0, []string{"x", "b"}, []string{"b"}},
		{"ids only absent", 0, []string{"x"}, nil},
		{"ids repeated", 0, []string{"b", "b"}, []string{"b"}},
		{"ids ignore max", 1, []string{"a", "c"}, []string{"a", "c"}},
		{"empty ids is all", 2, []string{}, []string{"b", "c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, items, err := p.Items(ctx, juliet, node, tc.max, tc.ids)
			if err != nil || !slices.Equal(pepIDs(items), tc.want) {
				t.Fatalf("Items(max %d, ids %q) = %q, %v; want %q", tc.max, tc.ids, pepIDs(items), err, tc.want)
			}
			if !reflect.DeepEqual(pepCfg(n), conf) {
				t.Fatalf("Items node = %+v, want %+v", n, conf)
			}
		})
	}
}

func TestPEPReplaceAndTrim(t *testing.T) {
	tests := []struct {
		name     string
		maxItems int
		publish  []string // item ids, in order
		want     []string // ids, oldest first
	}{
		{"distinct", 10, []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"replace becomes newest", 10, []string{"a", "b", "c", "b"}, []string{"a", "c", "b"}},
		{"replace the oldest", 10, []string{"a", "b", "c", "a"}, []string{"b", "c", "a"}},
		{"replace the newest", 10, []string{"a", "b", "b"}, []string{"a", "b"}},
		{"replace only item", 1, []string{"a", "a", "a"}, []string{"a"}},
		{"one item", 1, []string{"a", "b", "c"}, []string{"c"}},
		{"trim oldest", 2, []string{"a", "b", "c", "d"}, []string{"c", "d"}},
		{"replace at the limit trims nothing", 2, []string{"a", "b", "a"}, []string{"b", "a"}},
		{"replace then trim", 2, []string{"a", "b", "a", "c"}, []string{"a", "c"}},
		{"full then replace", 3, []string{"a", "b", "c", "b", "d"}, []string{"c", "b", "d"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			p := openTest(t).PEP()
			// Each publication has its own payload, so a replaced item
			// shows the newest.
			latest := map[string]PEPItem{}
			for i, id := range tc.publish {
				it := pepItem(id, fmt.Sprintf("<p n='%d'>%s</p>", i, strings.Repeat("x", i)))
				latest[id] = it
				pepPub(t, p, juliet, pepConf("n", tc.maxItems), it)
			}
			var want []PEPItem
			for _, id := range tc.want {
				want = append(want, latest[id])
			}
			pepWantItems(t, p, juliet, "n", want...)
			pepWantUsage(t, p, juliet, pepSize(want...))
			nodes, err := p.Nodes(ctx, juliet)
			if err != nil || len(nodes) != 1 || nodes[0].Item.ID != tc.want[len(tc.want)-1] {
				t.Fatalf("Nodes = %+v, %v; want newest %q", nodes, err, tc.want[len(tc.want)-1])
			}
			if !bytes.Equal(nodes[0].Item.Payload, latest[nodes[0].Item.ID].Payload) {
				t.Fatalf("newest payload = %q, want %q", nodes[0].Item.Payload, latest[nodes[0].Item.ID].Payload)
			}
		})
	}
}

// The items' order rests on a big-endian sequence number: it holds beyond
// one byte of it, and across a reopen (the node keeps its sequence).
func TestPEPOrderManyItemsAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	db.bolt.NoSync = true
	p := db.PEP()
	const count = 300
	var want []string
	for i := range count {
		id := fmt.Sprintf("item-%d", count-i) // ids sort the other way
		want = append(want, id)
		pepPub(t, p, juliet, pepConf("n", 1000), pepItem(id, "x"))
	}
	_, items, err := p.Items(t.Context(), juliet, "n", 0, nil)
	if err != nil || !slices.Equal(pepIDs(items), want) {
		t.Fatalf("Items = %d items %v, want %d in publication order", len(items), err, count)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	p = openAt(t, path, Options{}).PEP()
	pepPub(t, p, juliet, pepConf("n", 1000), pepItem("after-reopen", "y"))
	want = append(want, "after-reopen")
	if _, items, err := p.Items(t.Context(), juliet, "n", 2, nil); err != nil || !slices.Equal(pepIDs(items), want[len(want)-2:]) {
		t.Fatalf("newest two after reopen = %q, %v; want %q", pepIDs(items), err, want[len(want)-2:])
	}
	nodes, err := p.Nodes(t.Context(), juliet)
	if err != nil || len(nodes) != 1 || nodes[0].Item.ID != "after-reopen" {
		t.Fatalf("Nodes after reopen = %+v, %v", nodes, err)
	}
	_, items, _ = p.Items(t.Context(), juliet, "n", 0, nil)
	pepWantUsage(t, p, juliet, pepSize(items...))
}

func TestPEPNodesNewestItem(t *testing.T) {
	ctx := t.Context()
	p := openTest(t).PEP()
	// Owners and node names that are prefixes of one another, with and
	// without items on either side.
	const short, long = "a@x", "a@xa"
	pub := func(owner, node, id string) PEPItem {
		it := pepItem(id, owner+" "+node+" "+id)
		pepPub(t, p, owner, pepConf(node, 10), it)
		return it
	}
	create := func(owner, node string) {
		if err := p.Create(ctx, owner, pepConf(node, 10), PEPLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	create(short, "a") // empty, before "ab" which has items
	pub(short, "ab", "ab1")
	ab2 := pub(short, "ab", "ab2")
	pub(short, "b", "b1")
	create(short, "c")    // empty, "c" of long has items
	pub(short, "d", "d1") // "d" of long is empty
	pub(short, "z", "z1") // the owner's last node
	pub(long, "a", "la1")
	create(long, "ab") // empty, after "a" which has items
	pub(long, "c", "lc1")
	create(long, "d")

	type last struct{ node, item string }
	check := func(owner string, want ...last) {
		t.Helper()
		nodes, err := p.Nodes(ctx, owner)
		if err != nil {
			t.Fatalf("Nodes(%s): %v", owner, err)
		}
		var got []last
		for _, n := range nodes {
			got = append(got, last{n.Node.Node, n.Item.ID})
			if !reflect.DeepEqual(pepCfg(n.Node), pepConf(n.Node.Node, 10)) {
				t.Errorf("Nodes(%s) config of %q = %+v", owner, n.Node.Node, n.Node)
			}
			if n.Item.ID != "" && string(n.Item.Payload) != owner+" "+n.Node.Node+" "+n.Item.ID {
				t.Errorf("Nodes(%s) item of %q = %+v, from another node", owner, n.Node.Node, n.Item)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Nodes(%s) = %v\nwant %v", owner, got, want)
		}
	}
	check(short, last{"a", ""}, last{"ab", "ab2"}, last{"b", "b1"}, last{"c", ""}, last{"d", "d1"}, last{"z", "z1"})
	check(long, last{"a", "la1"}, last{"ab", ""}, last{"c", "lc1"}, last{"d", ""})
	if nodes, err := p.Nodes(ctx, "a@"); err != nil || nodes != nil {
		t.Fatalf("Nodes of an owner without nodes = %+v, %v", nodes, err)
	}
	if got, err := p.Nodes(ctx, pepRomeo); err != nil || len(got) != 0 {
		t.Fatalf("Nodes(romeo) = %+v, %v", got, err)
	}

	// Retracting the newest makes the previous one the newest; retracting
	// an older one changes nothing; retracting the last empties it.
	if n, err := p.Retract(ctx, short, "ab", ab2.ID); err != nil || n.Node != "ab" {
		t.Fatalf("Retract = %+v, %v", n, err)
	}
	check(short, last{"a", ""}, last{"ab", "ab1"}, last{"b", "b1"}, last{"c", ""}, last{"d", "d1"}, last{"z", "z1"})
	pub(short, "b", "b2")
	if _, err := p.Retract(ctx, short, "b", "b1"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Retract(ctx, short, "ab", "ab1"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Retract(ctx, long, "a", "la1"); err != nil {
		t.Fatal(err)
	}
	check(short, last{"a", ""}, last{"ab", ""}, last{"b", "b2"}, last{"c", ""}, last{"d", "d1"}, last{"z", "z1"})
	check(long, last{"a", ""}, last{"ab", ""}, last{"c", "lc1"}, last{"d", ""})
	// A purged node keeps its configuration, without item.
	if _, err := p.Delete(ctx, short, "z", true); err != nil {
		t.Fatal(err)
	}
	check(short, last{"a", ""}, last{"ab", ""}, last{"b", "b2"}, last{"c", ""}, last{"d", "d1"}, last{"z", ""})
	// After a purge, a publication is the newest again.
	pub(short, "z", "z2")
	check(short, last{"a", ""}, last{"ab", ""}, last{"b", "b2"}, last{"c", ""}, last{"d", "d1"}, last{"z", "z2"})
}

func TestPEPCheck(t *testing.T) {
	ctx := t.Context()
	p := openTest(t).PEP()
	conf := pepConf("n", 10)
	conf.Access = "open"
	old := pepItem("a", "old")
	var calls []PEPNode
	errPrecondition := errors.New("precondition not met")
	check := func(err error) func(PEPNode) error {
		return func(n PEPNode) error {
			calls = append(calls, n)
			return err
		}
	}
	// Auto-create does not call Check: there is no existing configuration.
	if _, created, err := p.Publish(ctx, PEPPublish{Owner: juliet, Item: old, Create: conf, Check: check(errPrecondition)}); err != nil || !created {
		t.Fatalf("Publish creating the node = %v, created %v", err, created)
	}
	if len(calls) != 0 {
		t.Fatalf("Check called %d times on auto-create", len(calls))
	}

	tests := []struct {
		name string
		item PEPItem
		err  error
	}{
		{"new item refused", pepItem("b", "new"), errPrecondition},
		{"replacement refused", pepItem("a", "replacement"), errPrecondition},
		{"quota error passes through", pepItem("b", "new"), ErrQuota},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls = nil
			// The publication's Create differs: Check sees the stored one.
			_, _, err := p.Publish(ctx, PEPPublish{Owner: juliet, Item: tc.item, Create: pepConf("n", 1), Check: check(tc.err)})
			if !errors.Is(err, tc.err) {
				t.Fatalf("Publish = %v, want %v", err, tc.err)
			}
			if len(calls) != 1 || !reflect.DeepEqual(pepCfg(calls[0]), conf) {
				t.Fatalf("Check calls = %+v, want one with %+v", calls, conf)
			}
			pepWantItems(t, p, juliet, "n", old)
			pepWantUsage(t, p, juliet, pepSize(old))
			if n, err := p.Node(ctx, juliet, "n"); err != nil || !reflect.DeepEqual(pepCfg(n), conf) {
				t.Fatalf("Node = %+v, %v", n, err)
			}
		})
	}

	// A passing Check lets the publication through, configuration unchanged.
	calls = nil
	next := pepItem("b", "next")
	if n, created, err := p.Publish(ctx, PEPPublish{Owner: juliet, Item: next, Create: pepConf("n", 1), Check: check(nil)}); err != nil || created || !reflect.DeepEqual(pepCfg(n), conf) {
		t.Fatalf("Publish with a passing Check = %+v, %v, %v", n, created, err)
	}
	if len(calls) != 1 {
		t.Fatalf("Check called %d times", len(calls))
	}
	pepWantItems(t, p, juliet, "n", old, next)
}

func TestPEPMaxNodes(t *testing.T) {
	ctx := t.Context()
	p := openTest(t).PEP()
	lim := PEPLimits{MaxNodes: 2}
	publish := func(owner, node string) error {
		_, _, err := p.Publish(ctx, PEPPublish{Owner: owner, Item: pepItem("i", "x"), Create: pepConf(node, 1), Limits: lim})
		return err
	}
	// Another owner's nodes, whose name has juliet's as a prefix, do not count.
	for _, n := range []string{"x1", "x2"} {
		if err := publish(juliet+"a", n); err != nil {
			t.Fatal(err)
		}
	}
	if err := publish(juliet, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := p.Create(ctx, juliet, pepConf("n2", 1), lim); err != nil {
		t.Fatal(err)
	}
	used, _ := p.Usage(ctx, juliet)

	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"publish to a new node", func() error { return publish(juliet, "n3") }, ErrQuota},
		{"create a new node", func() error { return p.Create(ctx, juliet, pepConf("n3", 1), lim) }, ErrQuota},
		{"create an existing node", func() error { return p.Create(ctx, juliet, pepConf("n1", 1), lim) }, ErrExists},
		{"publish to an existing node", func() error { return publish(juliet, "n2") }, nil},
		{"no limit", func() error { return p.Create(ctx, juliet, pepConf("n4", 1), PEPLimits{}) }, nil},
		{"above the limit already", func() error { return publish(juliet, "n5") }, ErrQuota},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(); !errors.Is(err, tc.want) {
				t.Fatalf("op = %v, want %v", err, tc.want)
			}
		})
	}
	for _, n := range []string{"n3", "n5"} {
		if _, err := p.Node(ctx, juliet, n); !errors.Is(err, ErrNotFound) {
			t.Errorf("Node(%s) after a refusal = %v, want ErrNotFound", n, err)
		}
	}
	pepWantUsage(t, p, juliet, used+pepSize(pepItem("i", "x")))

	// Deleting nodes makes room again.
	for _, n := range []string{"n1", "n4"} {
		if _, err := p.Delete(ctx, juliet, n, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := publish(juliet, "n3"); err != nil {
		t.Fatalf("publish after deleting nodes: %v", err)
	}
	if err := publish(juliet, "n6"); !errors.Is(err, ErrQuota) {
		t.Fatalf("publish beyond the limit again = %v, want ErrQuota", err)
	}
	// A purge keeps the node: it still counts.
	if _, err := p.Delete(ctx, juliet, "n3", true); err != nil {
		t.Fatal(err)
	}
	if err := p.Create(ctx, juliet, pepConf("n6", 1), lim); !errors.Is(err, ErrQuota) {
		t.Fatalf("Create after a purge = %v, want ErrQuota", err)
	}
	// MaxNodes 1 allows one node.
	if err := p.Create(ctx, pepRomeo, pepConf("only", 1), PEPLimits{MaxNodes: 1}); err != nil {
		t.Fatalf("first node with MaxNodes 1: %v", err)
	}
}

func TestPEPMaxBytes(t *testing.T) {
	a := pepItem("a", strings.Repeat("a", 20)) // size 40 with the publisher
	size := pepSize(a)
	tests := []struct {
		name     string
		before   []PEPItem // published to "n" without limits
		node     string
		item     PEPItem
		maxBytes int64
		wantErr  error
	}{
		{"first item exactly at the limit", nil, "n", a, size, nil},
		{"first item one byte over", nil, "n", a, size - 1, ErrQuota},
		{"first item on a new node over", []PEPItem{a}, "m", pepItem("b", "b"), size, ErrQuota},
		{"second item at the limit", []PEPItem{a}, "n", pepItem("b", "b"), size + pepSize(pepItem("b", "b")), nil},
		{"second item over", []PEPItem{a}, "n", pepItem("b", "bb"), size + pepSize(pepItem("b", "b")), ErrQuota},
		{"replacement counts once", []PEPItem{a}, "n", pepItem("a", strings.Repeat("A", 20)), size, nil},
		{"larger replacement over", []PEPItem{a}, "n", pepItem("a", strings.Repeat("A", 21)), size, ErrQuota},
		{"no limit", []PEPItem{a}, "n", pepItem("b", strings.Repeat("b", 1<<16)), 0, nil},
		{"already over the limit", []PEPItem{a, pepItem("b", "b")}, "n", pepItem("c", ""), size, ErrQuota},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			p := openTest(t).PEP()
			for _, it := range tc.before {
				pepPub(t, p, juliet, pepConf("n", 10), it)
			}
			before, _ := p.Usage(ctx, juliet)
			_, _, err := p.Publish(ctx, PEPPublish{Owner: juliet, Item: tc.item, Create: pepConf(tc.node, 10), Limits: PEPLimits{MaxBytes: tc.maxBytes}})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Publish = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil {
				return
			}
			pepWantUsage(t, p, juliet, before)
			if len(tc.before) > 0 {
				pepWantItems(t, p, juliet, "n", tc.before...)
			}
			if tc.node != "n" || len(tc.before) == 0 {
				if _, err := p.Node(ctx, juliet, tc.node); !errors.Is(err, ErrNotFound) {
					t.Fatalf("Node(%s) after a refused auto-create = %v, want ErrNotFound", tc.node, err)
				}
			}
		})
	}
}

// A publication that the node's MaxItems trims back within MaxBytes keeps
// the account within its limits (a one-item node such as an avatar's,
// republished with a new id near the quota).
func TestPEPMaxBytesCountsTrimmedItems(t *testing.T) {
	p := openTest(t).PEP()
	conf := PEPNode{Node: "urn:xmpp:avatar:data", MaxItems: 1}
	lim := PEPLimits{MaxBytes: 100}
	old := PEPItem{ID: "old", Payload: bytes.Repeat([]byte("o"), 57)}  // 60 bytes
	next := PEPItem{ID: "new", Payload: bytes.Repeat([]byte("n"), 57)} // 60 bytes; old goes
	for _, it := range []PEPItem{old, next} {
		if _, _, err := p.Publish(t.Context(), PEPPublish{Owner: juliet, Item: it, Create: conf, Limits: lim}); err != nil {
			t.Fatalf("Publish(%s) = %v; the account would keep 60 of 100 bytes", it.ID, err)
		}
	}
	pepWantItems(t, p, juliet, conf.Node, next)
	pepWantUsage(t, p, juliet, 60)
}

func TestPEPUsage(t *testing.T) {
	const other = "juliet@example.orga" // juliet's owner string is a prefix
	tests := []struct {
		name string
		op   func(t *testing.T, p *PEP) error
		want map[string][]string // node → item ids left; a missing node is absent
	}{
		{"nothing", func(*testing.T, *PEP) error { return nil },
			map[string][]string{"n": {"a", "b", "c"}, "m": {"d"}}},
		{"retract", func(t *testing.T, p *PEP) error { _, err := p.Retract(t.Context(), juliet, "n", "b"); return err },
			map[string][]string{"n": {"a", "c"}, "m": {"d"}}},
		{"retract all", func(t *testing.T, p *PEP) error {
			for _, r := range [][2]string{{"n", "a"}, {"n", "b"}, {"n", "c"}, {"m", "d"}} {
				if _, err := p.Retract(t.Context(), juliet, r[0], r[1]); err != nil {
					return err
				}
			}
			return nil
		}, map[string][]string{"n": nil, "m": nil}},
		{"delete", func(t *testing.T, p *PEP) error { _, err := p.Delete(t.Context(), juliet, "n", false); return err },
			map[string][]string{"m": {"d"}}},
		{"purge", func(t *testing.T, p *PEP) error { _, err := p.Delete(t.Context(), juliet, "n", true); return err },
			map[string][]string{"n": nil, "m": {"d"}}},
		{"delete all", func(t *testing.T, p *PEP) error {
			for _, n := range []string{"n", "m"} {
				if _, err := p.Delete(t.Context(), juliet, n, false); err != nil {
					return err
				}
			}
			return nil
		}, map[string][]string{}},
		{"replace with a smaller payload", func(t *testing.T, p *PEP) error {
			pepPub(t, p, juliet, pepConf("n", 10), pepItem("b", ""))
			return nil
		}, map[string][]string{"n": {"a", "c", "b"}, "m": {"d"}}},
		{"replace with a larger payload", func(t *testing.T, p *PEP) error {
			pepPub(t, p, juliet, pepConf("n", 10), pepItem("a", strings.Repeat("A", 100)))
			return nil
		}, map[string][]string{"n": {"b", "c", "a"}, "m": {"d"}}},
		{"trim", func(t *testing.T, p *PEP) error {
			if err := p.Configure(t.Context(), juliet, pepConf("m", 1)); err != nil {
				return err
			}
			pepPub(t, p, juliet, pepConf("m", 1), pepItem("e", "eeeee"))
			return nil
		}, map[string][]string{"n": {"a", "b", "c"}, "m": {"e"}}},
		{"configure lowering MaxItems", func(t *testing.T, p *PEP) error { return p.Configure(t.Context(), juliet, pepConf("n", 1)) },
			map[string][]string{"n": {"c"}, "m": {"d"}}},
		{"configure to MaxItems equal to count", func(t *testing.T, p *PEP) error { return p.Configure(t.Context(), juliet, pepConf("n", 3)) },
			map[string][]string{"n": {"a", "b", "c"}, "m": {"d"}}},
		{"configure raising MaxItems", func(t *testing.T, p *PEP) error { return p.Configure(t.Context(), juliet, pepConf("n", 100)) },
			map[string][]string{"n": {"a", "b", "c"}, "m": {"d"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			db := openTest(t)
			p := db.PEP()
			items := map[string]PEPItem{}
			for _, r := range []struct{ node, id, payload string }{
				{"n", "a", "<a/>"}, {"n", "b", "<bb/>"}, {"n", "c", "<ccc/>"}, {"m", "d", "<dddd/>"},
			} {
				it := pepItem(r.id, r.payload)
				items[r.id] = it
				pepPub(t, p, juliet, pepConf(r.node, 10), it)
			}
			otherItem := pepItem("o", "<other/>")
			pepPub(t, p, other, pepConf("n", 10), otherItem)
			if err := tc.op(t, p); err != nil {
				t.Fatal(err)
			}
			var want int64
			for _, node := range []string{"n", "m"} {
				ids, ok := tc.want[node]
				_, got, err := p.Items(ctx, juliet, node, 0, nil)
				if !ok {
					if !errors.Is(err, ErrNotFound) {
						t.Fatalf("Items(%s) = %q, %v; want ErrNotFound", node, pepIDs(got), err)
					}
					continue
				}
				if err != nil || !slices.Equal(pepIDs(got), ids) {
					t.Fatalf("Items(%s) = %q, %v; want %q", node, pepIDs(got), err, ids)
				}
				want += pepSize(got...)
			}
			pepWantUsage(t, p, juliet, want)
			pepWantUsage(t, p, other, pepSize(otherItem))
			// No usage left is no usage record.
			if keys := pepKeys(t, db, bucketPEPUsage, lp(juliet)); (want == 0) != (len(keys) == 0) {
				t.Fatalf("usage keys of %s = %q with usage %d", juliet, keys, want)
			}
		})
	}
}

func TestPEPNotFoundAndExists(t *testing.T) {
	ctx := t.Context()
	p := openTest(t).PEP()
	conf := pepConf("a", 10)
	pepPub(t, p, juliet, conf, pepItem("i", "x"))
	if err := p.Create(ctx, juliet, pepConf("empty", 10), PEPLimits{}); err != nil {
		t.Fatal(err)
	}
	const longer = juliet + "a"
	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"create existing", func() error { return p.Create(ctx, juliet, pepConf("a", 3), PEPLimits{}) }, ErrExists},
		{"create existing empty", func() error { return p.Create(ctx, juliet, pepConf("empty", 3), PEPLimits{}) }, ErrExists},
		{"configure missing", func() error { return p.Configure(ctx, juliet, pepConf("ab", 3)) }, ErrNotFound},
		{"configure another owner's", func() error { return p.Configure(ctx, longer, pepConf("a", 3)) }, ErrNotFound},
		{"node missing", func() error { _, err := p.Node(ctx, juliet, "ab"); return err }, ErrNotFound},
		{"node of a name prefix", func() error { _, err := p.Node(ctx, juliet, "urn"); return err }, ErrNotFound},
		{"node of another owner", func() error { _, err := p.Node(ctx, longer, "a"); return err }, ErrNotFound},
		{"items missing", func() error { _, _, err := p.Items(ctx, juliet, "ab", 0, nil); return err }, ErrNotFound},
		{"items by id missing", func() error { _, _, err := p.Items(ctx, juliet, "ab", 0, []string{"i"}); return err }, ErrNotFound},
		{"items of another owner", func() error { _, _, err := p.Items(ctx, longer, "a", 0, nil); return err }, ErrNotFound},
		{"retract missing item", func() error { _, err := p.Retract(ctx, juliet, "a", "j"); return err }, ErrNotFound},
		{"retract item of an empty node", func() error { _, err := p.Retract(ctx, juliet, "empty", "i"); return err }, ErrNotFound},
		{"retract missing node", func() error { _, err := p.Retract(ctx, juliet, "ab", "i"); return err }, ErrNotFound},
		{"retract empty id", func() error { _, err := p.Retract(ctx, juliet, "a", ""); return err }, ErrNotFound},
		{"delete missing", func() error { _, err := p.Delete(ctx, juliet, "ab", false); return err }, ErrNotFound},
		{"purge missing", func() error { _, err := p.Delete(ctx, juliet, "ab", true); return err }, ErrNotFound},
		{"delete another owner's", func() error { _, err := p.Delete(ctx, longer, "a", false); return err }, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(); !errors.Is(err, tc.want) {
				t.Fatalf("op = %v, want %v", err, tc.want)
			}
		})
	}
	// Nothing changed.
	if n, err := p.Node(ctx, juliet, "a"); err != nil || !reflect.DeepEqual(pepCfg(n), conf) {
		t.Fatalf("Node(a) = %+v, %v; want %+v", n, err, conf)
	}
	pepWantItems(t, p, juliet, "a", pepItem("i", "x"))
	if nodes, err := p.Nodes(ctx, juliet); err != nil || len(nodes) != 2 {
		t.Fatalf("Nodes = %+v, %v", nodes, err)
	}
	// Retracting twice: the second is not found.
	if _, err := p.Retract(ctx, juliet, "a", "i"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Retract(ctx, juliet, "a", "i"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Retract = %v, want ErrNotFound", err)
	}
	// Deleting twice likewise; the node can then be created again, empty.
	if _, err := p.Delete(ctx, juliet, "a", false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Delete(ctx, juliet, "a", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	if err := p.Create(ctx, juliet, conf, PEPLimits{}); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
	pepWantItems(t, p, juliet, "a")
}

func TestPEPReturnedConfiguration(t *testing.T) {
	ctx := t.Context()
	p := openTest(t).PEP()
	conf := pepConf("n", 10)
	conf.Title = "Mood"
	pepPub(t, p, juliet, conf, pepItem("a", "x"))
	pepPub(t, p, juliet, conf, pepItem("b", "x"))
	if n, err := p.Retract(ctx, juliet, "n", "a"); err != nil || !reflect.DeepEqual(pepCfg(n), conf) {
		t.Fatalf("Retract = %+v, %v; want %+v", n, err, conf)
	}
	if n, err := p.Delete(ctx, juliet, "n", true); err != nil || !reflect.DeepEqual(pepCfg(n), conf) {
		t.Fatalf("purge = %+v, %v; want %+v", n, err, conf)
	}
	if n, err := p.Delete(ctx, juliet, "n", false); err != nil || !reflect.DeepEqual(pepCfg(n), conf) {
		t.Fatalf("Delete = %+v, %v; want %+v", n, err, conf)
	}
}

func TestPEPInvalid(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	node := pepConf("n", 1)
	item := pepItem("i", "x")
	with := func(f func(*PEPNode)) PEPNode {
		n := node
		f(&n)
		return n
	}
	publish := func(owner string, n PEPNode, it PEPItem) func(context.Context, *PEP) error {
		return func(ctx context.Context, p *PEP) error {
			_, _, err := p.Publish(ctx, PEPPublish{Owner: owner, Item: it, Create: n})
			return err
		}
	}
	create := func(owner string, n PEPNode) func(context.Context, *PEP) error {
		return func(ctx context.Context, p *PEP) error { return p.Create(ctx, owner, n, PEPLimits{}) }
	}
	configure := func(owner string, n PEPNode) func(context.Context, *PEP) error {
		return func(ctx context.Context, p *PEP) error { return p.Configure(ctx, owner, n) }
	}
	tests := []struct {
		name string
		op   func(context.Context, *PEP) error
		want error
	}{
		{"publish empty owner", publish("", node, item), ErrInvalid},
		{"publish owner too long", publish(long(maxJID+1), node, item), ErrInvalid},
		{"publish empty node", publish(juliet, with(func(n *PEPNode) { n.Node = "" }), item), ErrInvalid},
		{"publish node too long", publish(juliet, with(func(n *PEPNode) { n.Node = long(MaxPEPNodeLen + 1) }), item), ErrInvalid},
		{"publish MaxItems 0", publish(juliet, with(func(n *PEPNode) { n.MaxItems = 0 }), item), ErrInvalid},
		{"publish MaxItems -1", publish(juliet, with(func(n *PEPNode) { n.MaxItems = -1 }), item), ErrInvalid},
		{"publish empty item id", publish(juliet, node, pepItem("", "x")), ErrInvalid},
		{"publish item id too long", publish(juliet, node, pepItem(long(MaxPEPItemIDLen+1), "x")), ErrInvalid},
		{"publish publisher too long", publish(juliet, node, PEPItem{ID: "i", Publisher: long(maxJID + 1)}), ErrInvalid},
		{"publish access too long", publish(juliet, with(func(n *PEPNode) { n.Access = long(MaxPEPFieldLen + 1) }), item), ErrInvalid},
		{"publish send last too long", publish(juliet, with(func(n *PEPNode) { n.SendLast = long(MaxPEPFieldLen + 1) }), item), ErrInvalid},
		{"publish title too long", publish(juliet, with(func(n *PEPNode) { n.Title = long(MaxPEPFieldLen + 1) }), item), ErrInvalid},
		{"publish roster group too long", publish(juliet, with(func(n *PEPNode) { n.RosterGroups = []string{"ok", long(MaxPEPFieldLen + 1)} }), item), ErrInvalid},
		{"publish to the existing node, invalid Create", publish(juliet, with(func(n *PEPNode) { n.Node, n.MaxItems = "keep", 0 }), item), ErrInvalid},
		{"create empty owner", create("", node), ErrInvalid},
		{"create empty node", create(juliet, with(func(n *PEPNode) { n.Node = "" })), ErrInvalid},
		{"create node too long", create(juliet, with(func(n *PEPNode) { n.Node = long(MaxPEPNodeLen + 1) })), ErrInvalid},
		{"create MaxItems 0", create(juliet, with(func(n *PEPNode) { n.MaxItems = 0 })), ErrInvalid},
		{"create title too long", create(juliet, with(func(n *PEPNode) { n.Title = long(MaxPEPFieldLen + 1) })), ErrInvalid},
		{"configure empty owner", configure("", with(func(n *PEPNode) { n.Node = "keep" })), ErrInvalid},
		{"configure empty node", configure(juliet, with(func(n *PEPNode) { n.Node = "" })), ErrInvalid},
		{"configure MaxItems 0", configure(juliet, with(func(n *PEPNode) { n.Node, n.MaxItems = "keep", 0 })), ErrInvalid},
		{"configure node too long", configure(juliet, with(func(n *PEPNode) { n.Node = long(MaxPEPNodeLen + 1) })), ErrInvalid},
		{"configure group too long", configure(juliet, with(func(n *PEPNode) { n.Node, n.RosterGroups = "keep", []string{long(MaxPEPFieldLen + 1)} })), ErrInvalid},
		{"node empty owner", func(ctx context.Context, p *PEP) error { _, err := p.Node(ctx, "", "keep"); return err }, ErrInvalid},
		{"node empty node", func(ctx context.Context, p *PEP) error { _, err := p.Node(ctx, juliet, ""); return err }, ErrInvalid},
		{"node too long", func(ctx context.Context, p *PEP) error {
			_, err := p.Node(ctx, juliet, long(MaxPEPNodeLen+1))
			return err
		}, ErrInvalid},
		{"nodes empty owner", func(ctx context.Context, p *PEP) error { _, err := p.Nodes(ctx, ""); return err }, ErrInvalid},
		{"nodes owner too long", func(ctx context.Context, p *PEP) error { _, err := p.Nodes(ctx, long(maxJID+1)); return err }, ErrInvalid},
		{"items empty owner", func(ctx context.Context, p *PEP) error { _, _, err := p.Items(ctx, "", "keep", 0, nil); return err }, ErrInvalid},
		{"items empty node", func(ctx context.Context, p *PEP) error { _, _, err := p.Items(ctx, juliet, "", 0, nil); return err }, ErrInvalid},
		{"items node too long", func(ctx context.Context, p *PEP) error {
			_, _, err := p.Items(ctx, juliet, long(MaxPEPNodeLen+1), 0, nil)
			return err
		}, ErrInvalid},
		{"retract empty owner", func(ctx context.Context, p *PEP) error { _, err := p.Retract(ctx, "", "keep", "k"); return err }, ErrInvalid},
		{"retract empty node", func(ctx context.Context, p *PEP) error { _, err := p.Retract(ctx, juliet, "", "k"); return err }, ErrInvalid},
		{"delete empty owner", func(ctx context.Context, p *PEP) error { _, err := p.Delete(ctx, "", "keep", false); return err }, ErrInvalid},
		{"delete empty node", func(ctx context.Context, p *PEP) error { _, err := p.Delete(ctx, juliet, "", false); return err }, ErrInvalid},
		{"purge node too long", func(ctx context.Context, p *PEP) error {
			_, err := p.Delete(ctx, juliet, long(MaxPEPNodeLen+1), true)
			return err
		}, ErrInvalid},
		// The limits themselves are accepted.
		{"publish at the maximum lengths", publish(long(maxJID), with(func(n *PEPNode) {
			n.Node, n.Access, n.SendLast, n.Title = long(MaxPEPNodeLen), long(MaxPEPFieldLen), long(MaxPEPFieldLen), long(MaxPEPFieldLen)
			n.RosterGroups = []string{long(MaxPEPFieldLen)}
		}), PEPItem{ID: long(MaxPEPItemIDLen), Publisher: long(maxJID)}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			db := openTest(t)
			p := db.PEP()
			keep := pepConf("keep", 5)
			kept := pepItem("k", "kept")
			pepPub(t, p, juliet, keep, kept)
			if err := tc.op(ctx, p); !errors.Is(err, tc.want) {
				t.Fatalf("op = %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				return
			}
			// Nothing else stored, nothing changed.
			nodes, err := p.Nodes(ctx, juliet)
			if err != nil || len(nodes) != 1 || !reflect.DeepEqual(pepCfg(nodes[0].Node), keep) || nodes[0].Item.ID != "k" {
				t.Fatalf("Nodes after a refusal = %+v, %v", nodes, err)
			}
			pepWantItems(t, p, juliet, "keep", kept)
			pepWantUsage(t, p, juliet, pepSize(kept))
			for _, b := range []string{bucketPEPNodes, bucketPEPItems, bucketPEPUsage} {
				if keys := pepKeys(t, db, b, nil); len(keys) != 1 {
					t.Fatalf("bucket %s holds %d keys after a refusal, want 1", b, len(keys))
				}
			}
		})
	}
}

// Usage checks its owner as the other methods do (Offline.Count,
// Uploads.Used).
func TestPEPUsageInvalidOwner(t *testing.T) {
	p := openTest(t).PEP()
	if _, err := p.Usage(t.Context(), ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Usage(\"\") = %v, want ErrInvalid", err)
	}
}

func TestPEPCorrupt(t *testing.T) {
	const node = "n"
	nodeKey := pepNodeKey(juliet, node)
	itemKey := append(pepItemPrefix(juliet, node), be64(1)...)
	validNode := encodePEPNode(PEPNode{Node: node, MaxItems: 5, seq: 1})
	validItem := encodePEPItem(pepItem("i", "x"))
	corrupt := []struct {
		name   string
		bucket string
		key    []byte
		value  []byte
	}{
		{"node empty value", bucketPEPNodes, nodeKey, []byte{}},
		{"node version 2", bucketPEPNodes, nodeKey, append([]byte{2}, validNode[1:]...)},
		{"node truncated", bucketPEPNodes, nodeKey, validNode[:len(validNode)-1]},
		{"node trailing byte", bucketPEPNodes, nodeKey, append(bytes.Clone(validNode), 0)},
		{"node huge group count", bucketPEPNodes, nodeKey, []byte{pepNodeCodecV1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"node garbage", bucketPEPNodes, nodeKey, []byte("garbage")},
		{"item empty value", bucketPEPItems, itemKey, []byte{}},
		{"item version 2", bucketPEPItems, itemKey, append([]byte{2}, validItem[1:]...)},
		{"item truncated", bucketPEPItems, itemKey, validItem[:len(validItem)-1]},
		{"item trailing byte", bucketPEPItems, itemKey, append(bytes.Clone(validItem), 0)},
		{"item garbage", bucketPEPItems, itemKey, []byte("garbage")},
	}
	ops := []struct {
		name      string
		op        func(context.Context, *PEP) error
		nodeOnly  bool // reads the node's value but not its items
		itemsOnly bool // needs the corrupt value to be an item
	}{
		{"Node", func(ctx context.Context, p *PEP) error { _, err := p.Node(ctx, juliet, node); return err }, true, false},
		{"Nodes", func(ctx context.Context, p *PEP) error { _, err := p.Nodes(ctx, juliet); return err }, false, false},
		{"Items", func(ctx context.Context, p *PEP) error { _, _, err := p.Items(ctx, juliet, node, 0, nil); return err }, false, false},
		{"Items by id", func(ctx context.Context, p *PEP) error {
			_, _, err := p.Items(ctx, juliet, node, 0, []string{"i"})
			return err
		}, false, false},
		{"Publish", func(ctx context.Context, p *PEP) error {
			_, _, err := p.Publish(ctx, PEPPublish{Owner: juliet, Item: pepItem("j", "y"), Create: pepConf(node, 5)})
			return err
		}, false, false},
		{"Retract", func(ctx context.Context, p *PEP) error { _, err := p.Retract(ctx, juliet, node, "i"); return err }, false, false},
		{"Delete", func(ctx context.Context, p *PEP) error { _, err := p.Delete(ctx, juliet, node, false); return err }, false, false},
		{"purge", func(ctx context.Context, p *PEP) error { _, err := p.Delete(ctx, juliet, node, true); return err }, false, false},
		// Configure reads the items only to trim them.
		{"Configure", func(ctx context.Context, p *PEP) error { return p.Configure(ctx, juliet, pepConf(node, 5)) }, true, false},
		{"Configure trimming", func(ctx context.Context, p *PEP) error {
			// The corrupt item is the oldest of two.
			if err := p.db.bolt.Update(func(tx *bbolt.Tx) error {
				return tx.Bucket([]byte(bucketPEPItems)).Put(append(pepItemPrefix(juliet, node), be64(2)...), validItem)
			}); err != nil {
				return err
			}
			return p.Configure(ctx, juliet, pepConf(node, 1))
		}, false, true},
	}
	for _, c := range corrupt {
		for _, o := range ops {
			if c.bucket == bucketPEPItems && o.nodeOnly {
				continue
			}
			if c.bucket != bucketPEPItems && o.itemsOnly {
				continue
			}
			t.Run(c.name+"/"+o.name, func(t *testing.T) {
				db := openTest(t)
				p := db.PEP()
				pepPub(t, p, juliet, pepConf(node, 5), pepItem("i", "x"))
				err := db.bolt.Update(func(tx *bbolt.Tx) error {
					return tx.Bucket([]byte(c.bucket)).Put(c.key, c.value)
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := o.op(t.Context(), p); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s = %v, want ErrCorrupt", o.name, err)
				}
			})
		}
	}

	// A corrupt usage counter.
	for _, v := range [][]byte{{}, {2, 1}, {pepUsageCodecV1}, {pepUsageCodecV1, 0x80}, {pepUsageCodecV1, 1, 0}} {
		t.Run(fmt.Sprintf("usage %x", v), func(t *testing.T) {
			ctx := t.Context()
			db := openTest(t)
			p := db.PEP()
			pepPub(t, p, juliet, pepConf(node, 5), pepItem("i", "x"))
			if err := db.bolt.Update(func(tx *bbolt.Tx) error {
				return tx.Bucket([]byte(bucketPEPUsage)).Put(lp(juliet), v)
			}); err != nil {
				t.Fatal(err)
			}
			for name, op := range map[string]func() error{
				"Usage": func() error { _, err := p.Usage(ctx, juliet); return err },
				"Publish": func() error {
					_, _, err := p.Publish(ctx, PEPPublish{Owner: juliet, Item: pepItem("j", "y"), Create: pepConf(node, 5)})
					return err
				},
				"Retract": func() error { _, err := p.Retract(ctx, juliet, node, "i"); return err },
				"Delete":  func() error { _, err := p.Delete(ctx, juliet, node, false); return err },
			} {
				if err := op(); !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s = %v, want ErrCorrupt", name, err)
				}
			}
		})
	}
}

func TestPEPCodecs(t *testing.T) {
	nodes := []PEPNode{
		{Node: "n", MaxItems: 1},
		{Node: "urn:xmpp:avatar:metadata", Access: "roster", RosterGroups: []string{"Friends", "", "Famille ✓"}, MaxItems: 1 << 40,
			SendLast: "on_sub", NotifyRetract: true, NotifyDelete: true, Title: "Avatar", seq: 1<<64 - 1},
		{Node: "n", Access: "open", MaxItems: 7, NotifyDelete: true, seq: 3},
	}
	for _, n := range nodes {
		got := checkStrictCodec(t, encodePEPNode(n), func(b []byte) (PEPNode, error) { return decodePEPNode(n.Node, b) })
		if !reflect.DeepEqual(got, n) {
			t.Errorf("decode(encode(%+v)) = %+v", n, got)
		}
	}
	for _, it := range []PEPItem{
		{ID: "i"},
		{ID: "current", Publisher: juliet + "/balcony", Payload: []byte("<geoloc xmlns='http://jabber.org/protocol/geoloc'/>")},
	} {
		got := checkStrictCodec(t, encodePEPItem(it), decodePEPItem)
		if !reflect.DeepEqual(got, it) {
			t.Errorf("decode(encode(%+v)) = %+v", it, got)
		}
	}
}

func TestPEPNodeFieldsRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		conf PEPNode
	}{
		{"minimal", PEPNode{Node: "n", MaxItems: 1}},
		{"every field", PEPNode{
			Node: "urn:xmpp:avatar:metadata", Access: "roster", RosterGroups: []string{"Friends", "Famille ✓", ""},
			MaxItems: 1 << 20, SendLast: "on_sub_and_presence", NotifyRetract: true, NotifyDelete: true, Title: "Avatar metadata",
		}},
		{"notify retract only", PEPNode{Node: "n", Access: "presence", MaxItems: 2, NotifyRetract: true}},
		{"notify delete only", PEPNode{Node: "n", Access: "whitelist", MaxItems: 3, NotifyDelete: true, SendLast: "never"}},
		{"maximum lengths", PEPNode{
			Node: strings.Repeat("n", MaxPEPNodeLen), Access: strings.Repeat("a", MaxPEPFieldLen),
			RosterGroups: []string{strings.Repeat("g", MaxPEPFieldLen), strings.Repeat("h", MaxPEPFieldLen)},
			MaxItems:     4, SendLast: strings.Repeat("s", MaxPEPFieldLen), Title: strings.Repeat("t", MaxPEPFieldLen),
		}},
	}
	other := PEPNode{Node: "", Access: "open", RosterGroups: []string{"Other"}, MaxItems: 9, SendLast: "never", Title: "Other"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "db")
			db := openAt(t, path, Options{})
			p := db.PEP()
			check := func(what string, got PEPNode, err error, want PEPNode) {
				t.Helper()
				if err != nil || !reflect.DeepEqual(pepCfg(got), want) {
					t.Fatalf("%s = %+v, %v\nwant %+v", what, got, err, want)
				}
			}
			// Create, then read back every way.
			if err := p.Create(ctx, juliet, tc.conf, PEPLimits{}); err != nil {
				t.Fatal(err)
			}
			n, err := p.Node(ctx, juliet, tc.conf.Node)
			check("Node after Create", n, err, tc.conf)
			n, _, err = p.Items(ctx, juliet, tc.conf.Node, 0, nil)
			check("Items", n, err, tc.conf)
			nodes, err := p.Nodes(ctx, juliet)
			if len(nodes) != 1 {
				t.Fatalf("Nodes = %+v, %v", nodes, err)
			}
			check("Nodes", nodes[0].Node, err, tc.conf)

			// Auto-create by Publish.
			n, created, err := p.Publish(ctx, PEPPublish{Owner: pepRomeo, Item: pepItem("i", "x"), Create: tc.conf})
			if !created {
				t.Fatal("Publish did not create the node")
			}
			check("Publish", n, err, tc.conf)
			n, err = p.Node(ctx, pepRomeo, tc.conf.Node)
			check("Node after Publish", n, err, tc.conf)

			// Configure to something else and back.
			o := other
			o.Node = tc.conf.Node
			if err := p.Configure(ctx, pepRomeo, o); err != nil {
				t.Fatal(err)
			}
			n, err = p.Node(ctx, pepRomeo, tc.conf.Node)
			check("Node after Configure", n, err, o)
			if err := p.Configure(ctx, pepRomeo, tc.conf); err != nil {
				t.Fatal(err)
			}
			n, err = p.Node(ctx, pepRomeo, tc.conf.Node)
			check("Node after Configure back", n, err, tc.conf)

			// And after a reopen.
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			p = openAt(t, path, Options{}).PEP()
			for _, owner := range []string{juliet, pepRomeo} {
				n, err = p.Node(ctx, owner, tc.conf.Node)
				check("Node after reopen", n, err, tc.conf)
			}
			n, err = p.Retract(ctx, pepRomeo, tc.conf.Node, "i")
			check("Retract", n, err, tc.conf)
			n, err = p.Delete(ctx, pepRomeo, tc.conf.Node, false)
			check("Delete", n, err, tc.conf)
		})
	}
}

const pepRomeo = "romeo@example.net"

func TestUsersDeleteDropsPEP(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	p := db.PEP()
	// juliet@example.or's owner string is a prefix of juliet's.
	const shorter = "juliet@example.or"
	createAccounts(t, db, juliet, pepRomeo, shorter)
	kept := map[string]PEPItem{}
	for _, owner := range []string{juliet, pepRomeo, shorter} {
		for _, node := range []string{"a", "ab"} {
			it := pepItem(node+"1", owner+node)
			pepPub(t, p, owner, pepConf(node, 10), it)
			kept[owner+" "+node] = it
		}
		if err := p.Create(ctx, owner, pepConf("empty", 1), PEPLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Users().Delete(ctx, "example.org", "juliet"); err != nil {
		t.Fatal(err)
	}
	if nodes, err := p.Nodes(ctx, juliet); err != nil || len(nodes) != 0 {
		t.Fatalf("Nodes after deleting the account = %+v, %v", nodes, err)
	}
	if _, _, err := p.Items(ctx, juliet, "a", 0, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Items after deleting the account = %v, want ErrNotFound", err)
	}
	pepWantUsage(t, p, juliet, 0)
	for _, b := range []string{bucketPEPNodes, bucketPEPItems, bucketPEPUsage} {
		if keys := pepKeys(t, db, b, lp(juliet)); len(keys) != 0 {
			t.Fatalf("bucket %s keeps %q of the deleted account", b, keys)
		}
	}
	for _, owner := range []string{pepRomeo, shorter} {
		nodes, err := p.Nodes(ctx, owner)
		if err != nil || len(nodes) != 3 {
			t.Fatalf("Nodes(%s) = %+v, %v", owner, nodes, err)
		}
		for _, node := range []string{"a", "ab"} {
			pepWantItems(t, p, owner, node, kept[owner+" "+node])
		}
		pepWantUsage(t, p, owner, pepSize(kept[owner+" a"], kept[owner+" ab"]))
	}
	// A re-created account starts without nodes.
	createAccounts(t, db, juliet)
	if nodes, err := p.Nodes(ctx, juliet); err != nil || len(nodes) != 0 {
		t.Fatalf("Nodes of the re-created account = %+v, %v", nodes, err)
	}
}

func TestPEPConcurrentPublish(t *testing.T) {
	ctx := t.Context()
	p := openNoSync(t).PEP()
	const workers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Every worker also re-publishes one shared id.
				ids := []string{fmt.Sprintf("w%d-%d", w, i), "shared"}
				for _, id := range ids {
					_, _, err := p.Publish(ctx, PEPPublish{Owner: juliet, Item: pepItem(id, "x"), Create: pepConf("n", 1000), Limits: PEPLimits{MaxNodes: 1}})
					if err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, items, err := p.Items(ctx, juliet, "n", 0, nil)
	if err != nil || len(items) != workers*each+1 {
		t.Fatalf("Items = %d, %v; want %d", len(items), err, workers*each+1)
	}
	pepWantUsage(t, p, juliet, pepSize(items...))
}

func TestPEPContextAndReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	pepPub(t, db.PEP(), juliet, pepConf("n", 5), pepItem("i", "x"))
	calls := func(ctx context.Context, p *PEP) (reads, writes map[string]func() error) {
		reads = map[string]func() error{
			"Node":  func() error { _, err := p.Node(ctx, juliet, "n"); return err },
			"Nodes": func() error { _, err := p.Nodes(ctx, juliet); return err },
			"Items": func() error { _, _, err := p.Items(ctx, juliet, "n", 0, nil); return err },
			"Usage": func() error { _, err := p.Usage(ctx, juliet); return err },
		}
		writes = map[string]func() error{
			"Publish": func() error {
				_, _, err := p.Publish(ctx, PEPPublish{Owner: juliet, Item: pepItem("j", "y"), Create: pepConf("n", 5)})
				return err
			},
			"Create":    func() error { return p.Create(ctx, juliet, pepConf("m", 5), PEPLimits{}) },
			"Configure": func() error { return p.Configure(ctx, juliet, pepConf("n", 2)) },
			"Retract":   func() error { _, err := p.Retract(ctx, juliet, "n", "i"); return err },
			"Delete":    func() error { _, err := p.Delete(ctx, juliet, "n", true); return err },
		}
		return reads, writes
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	reads, writes := calls(cancelled, db.PEP())
	for _, m := range []map[string]func() error{reads, writes} {
		for name, call := range m {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context = %v, want context.Canceled", name, err)
			}
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro := openAt(t, path, Options{ReadOnly: true})
	reads, writes = calls(t.Context(), ro.PEP())
	for name, call := range reads {
		if err := call(); err != nil {
			t.Errorf("%s on a read-only DB = %v", name, err)
		}
	}
	for name, call := range writes {
		if err := call(); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on a read-only DB = %v, want ErrReadOnly", name, err)
		}
	}
	pepWantItems(t, ro.PEP(), juliet, "n", pepItem("i", "x"))
}

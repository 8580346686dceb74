package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// Codec versions of the pep buckets' values.
const (
	pepNodeCodecV1  = 1
	pepItemCodecV1  = 1
	pepUsageCodecV1 = 1
)

// Limits on PEP records, in bytes; larger values fail with ErrInvalid.
const (
	MaxPEPNodeLen   = 1023
	MaxPEPItemIDLen = 1023
	MaxPEPFieldLen  = 1023
)

// PEPNode is the configuration of one personal eventing node (XEP-0163) of
// an account. The pep module gives the fields their meaning; the store
// keeps them as given.
type PEPNode struct {
	// Node is the node's name, unique per account.
	Node string
	// Access is the XEP-0060 access model ("presence", "open",
	// "roster", "whitelist").
	Access string
	// RosterGroups are the owner's roster groups allowed by the
	// "roster" access model.
	RosterGroups []string
	// MaxItems is how many items the node keeps (at least 1): the
	// oldest go when a publication exceeds it.
	MaxItems int
	// SendLast is pubsub#send_last_published_item.
	SendLast string
	// NotifyRetract and NotifyDelete say whether subscribers hear of a
	// retraction or the node's deletion.
	NotifyRetract, NotifyDelete bool
	// Title is pubsub#title.
	Title string
	// seq is the sequence number of the node's newest item.
	seq uint64
}

func (n PEPNode) validate() error {
	if n.Node == "" || len(n.Node) > MaxPEPNodeLen {
		return fmt.Errorf("node name must be 1 to %d bytes, got %d: %w", MaxPEPNodeLen, len(n.Node), ErrInvalid)
	}
	if n.MaxItems < 1 {
		return fmt.Errorf("node %q keeps %d items: %w", n.Node, n.MaxItems, ErrInvalid)
	}
	for _, s := range append([]string{n.Access, n.SendLast, n.Title}, n.RosterGroups...) {
		if len(s) > MaxPEPFieldLen {
			return fmt.Errorf("node %q: field of %d bytes exceeds %d: %w", n.Node, len(s), MaxPEPFieldLen, ErrInvalid)
		}
	}
	return nil
}

// PEPItem is one published item.
type PEPItem struct {
	ID string
	// Publisher is the full JID that published it.
	Publisher string
	// Payload is the item's payload element, serialised.
	Payload []byte
}

func (it PEPItem) size() uint64 { return uint64(len(it.ID) + len(it.Publisher) + len(it.Payload)) }

// PEPLimits bound what one account may store.
type PEPLimits struct {
	// MaxNodes is the number of nodes an account may have.
	MaxNodes int
	// MaxBytes bounds the sum of the sizes of an account's items (ids,
	// publishers and payloads).
	MaxBytes int64
}

// PEP is the sub-store of personal eventing nodes and items: bucket
// "pep_nodes" keyed lp(owner) ‖ node holds each node's configuration,
// "pep_items" keyed lp(owner) ‖ lp(node) ‖ be64(seq) its items oldest
// first, and "pep_usage" keyed lp(owner) the bytes the account's items
// take. Get it from DB.PEP.
type PEP struct {
	db *DB
}

// PEPPublish is one publication.
type PEPPublish struct {
	Owner string
	Item  PEPItem
	// Create is the configuration of the node if it does not exist
	// (XEP-0060 auto-create); Create.Node names the node.
	Create PEPNode
	// CreateErr, when set, is returned instead of creating the node.
	CreateErr error
	// Check, when set, vets an existing node's configuration first
	// (publish-options preconditions); its error fails the publication.
	Check func(PEPNode) error
	// Limits bound the account.
	Limits PEPLimits
}

// Publish stores p.Item in its node, creating the node if needed. An item
// with the id of an existing one replaces it and becomes the newest; items
// beyond the node's MaxItems go, oldest first. It returns the node's
// configuration and whether it was created. It fails with ErrQuota when
// the account would exceed its limits.
func (p *PEP) Publish(ctx context.Context, pub PEPPublish) (PEPNode, bool, error) {
	if err := validatePEP(pub.Owner, pub.Create); err != nil {
		return PEPNode{}, false, fmt.Errorf("store: publish: %w", err)
	}
	if pub.Item.ID == "" || len(pub.Item.ID) > MaxPEPItemIDLen || len(pub.Item.Publisher) > maxJID {
		return PEPNode{}, false, fmt.Errorf("store: publish to %s: item id of %d bytes: %w", pub.Owner, len(pub.Item.ID), ErrInvalid)
	}
	var node PEPNode
	var created bool
	err := p.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := pepBuckets(tx)
		if err != nil {
			return err
		}
		node, err = b.node(pub.Owner, pub.Create.Node)
		switch {
		case errors.Is(err, ErrNotFound):
			if pub.CreateErr != nil {
				return pub.CreateErr
			}
			if err := b.checkNodeCount(pub.Owner, pub.Limits.MaxNodes); err != nil {
				return err
			}
			node, created = pub.Create, true
		case err != nil:
			return err
		case pub.Check != nil:
			if err := pub.Check(node); err != nil {
				return err
			}
		}
		used, err := b.usage(pub.Owner)
		if err != nil {
			return err
		}
		replaced, _, err := b.removeItem(pub.Owner, node.Node, pub.Item.ID)
		if err != nil {
			return err
		}
		used -= min(used, replaced)
		prefix := pepItemPrefix(pub.Owner, node.Node)
		node.seq++
		if err := b.items.Put(append(prefix, be64(node.seq)...), encodePEPItem(pub.Item)); err != nil {
			return err
		}
		// The quota counts what stays after the trim; a refusal rolls
		// the whole transaction back.
		freed, err := b.trim(pub.Owner, node)
		if err != nil {
			return err
		}
		used = used + pub.Item.size() - min(used+pub.Item.size(), freed)
		if pub.Limits.MaxBytes > 0 && used > uint64(pub.Limits.MaxBytes) {
			return fmt.Errorf("%w: items of %s would take %d bytes, at most %d", ErrQuota, pub.Owner, used, pub.Limits.MaxBytes)
		}
		if err := b.setUsage(pub.Owner, used); err != nil {
			return err
		}
		return b.nodes.Put(pepNodeKey(pub.Owner, node.Node), encodePEPNode(node))
	})
	if err != nil {
		return PEPNode{}, false, fmt.Errorf("store: publish to %s node %q: %w", pub.Owner, pub.Create.Node, err)
	}
	return node, created, nil
}

// Create creates a node; it fails with ErrExists if the account has it,
// and ErrQuota beyond the limits' MaxNodes.
func (p *PEP) Create(ctx context.Context, owner string, n PEPNode, lim PEPLimits) error {
	if err := validatePEP(owner, n); err != nil {
		return fmt.Errorf("store: create node: %w", err)
	}
	err := p.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := pepBuckets(tx)
		if err != nil {
			return err
		}
		if hasKey(b.nodes, pepNodeKey(owner, n.Node)) {
			return ErrExists
		}
		if err := b.checkNodeCount(owner, lim.MaxNodes); err != nil {
			return err
		}
		n.seq = 0
		return b.nodes.Put(pepNodeKey(owner, n.Node), encodePEPNode(n))
	})
	if err != nil {
		return fmt.Errorf("store: create %s node %q: %w", owner, n.Node, err)
	}
	return nil
}

// Configure replaces an existing node's configuration (ErrNotFound if
// there is none); items beyond a lowered MaxItems go, oldest first.
func (p *PEP) Configure(ctx context.Context, owner string, n PEPNode) error {
	if err := validatePEP(owner, n); err != nil {
		return fmt.Errorf("store: configure node: %w", err)
	}
	_, err := p.onNode(ctx, owner, n.Node, true, func(b pepTx, old PEPNode) error {
		n.seq = old.seq
		freed, err := b.trim(owner, n)
		if err != nil {
			return err
		}
		if err := b.release(owner, freed); err != nil {
			return err
		}
		return b.nodes.Put(pepNodeKey(owner, n.Node), encodePEPNode(n))
	})
	if err != nil {
		return fmt.Errorf("store: configure %s node %q: %w", owner, n.Node, err)
	}
	return nil
}

// Node returns a node's configuration, or ErrNotFound.
func (p *PEP) Node(ctx context.Context, owner, node string) (PEPNode, error) {
	n, err := p.onNode(ctx, owner, node, false, nil)
	if err != nil {
		return PEPNode{}, fmt.Errorf("store: %s node %q: %w", owner, node, err)
	}
	return n, nil
}

// onNode runs fn, if not nil, on an existing node of owner in a read or a
// write transaction and returns the node's configuration; a missing node
// is ErrNotFound.
func (p *PEP) onNode(ctx context.Context, owner, node string, write bool, fn func(b pepTx, n PEPNode) error) (PEPNode, error) {
	if err := validatePEP(owner, PEPNode{Node: node, MaxItems: 1}); err != nil {
		return PEPNode{}, err
	}
	run := p.db.view
	if write {
		run = p.db.update
	}
	var n PEPNode
	err := run(ctx, func(tx *bbolt.Tx) error {
		b, err := pepBuckets(tx)
		if err != nil {
			return err
		}
		if n, err = b.node(owner, node); err != nil || fn == nil {
			return err
		}
		return fn(b, n)
	})
	return n, err
}

// PEPLast is a node with its newest item (Item.ID empty when it has none).
type PEPLast struct {
	Node PEPNode
	Item PEPItem
}

// Nodes returns the account's nodes in name order, each with its newest
// item.
func (p *PEP) Nodes(ctx context.Context, owner string) ([]PEPLast, error) {
	if err := validateJID("owner", owner); err != nil {
		return nil, fmt.Errorf("store: nodes: %w", err)
	}
	var out []PEPLast
	err := p.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := pepBuckets(tx)
		if err != nil {
			return err
		}
		prefix := lp(owner)
		c := b.nodes.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			n, err := decodePEPNode(string(k[len(prefix):]), v)
			if err != nil {
				return err
			}
			last := PEPLast{Node: n}
			if last.Item, err = b.last(owner, n.Node); err != nil {
				return err
			}
			out = append(out, last)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: nodes of %s: %w", owner, err)
	}
	return out, nil
}

// Items returns a node's configuration and items, oldest first: with ids,
// those of them that exist; otherwise the newest max (all when max <= 0).
// A missing node is ErrNotFound.
func (p *PEP) Items(ctx context.Context, owner, node string, max int, ids []string) (PEPNode, []PEPItem, error) {
	var items []PEPItem
	n, err := p.onNode(ctx, owner, node, false, func(b pepTx, _ PEPNode) error {
		want := map[string]bool{}
		for _, id := range ids {
			want[id] = true
		}
		prefix := pepItemPrefix(owner, node)
		c := b.items.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			it, err := decodePEPItem(v)
			if err != nil {
				return err
			}
			if len(ids) == 0 || want[it.ID] {
				items = append(items, it)
			}
		}
		return nil
	})
	if err != nil {
		return PEPNode{}, nil, fmt.Errorf("store: items of %s node %q: %w", owner, node, err)
	}
	if len(ids) == 0 && max > 0 && len(items) > max {
		items = items[len(items)-max:]
	}
	return n, items, nil
}

// Retract removes an item and returns its node's configuration; a missing
// node or item is ErrNotFound.
func (p *PEP) Retract(ctx context.Context, owner, node, id string) (PEPNode, error) {
	n, err := p.onNode(ctx, owner, node, true, func(b pepTx, _ PEPNode) error {
		size, found, err := b.removeItem(owner, node, id)
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		return b.release(owner, size)
	})
	if err != nil {
		return PEPNode{}, fmt.Errorf("store: retract %q from %s node %q: %w", id, owner, node, err)
	}
	return n, nil
}

// Delete removes a node and its items (purge only: keep the node) and
// returns its configuration; a missing node is ErrNotFound.
func (p *PEP) Delete(ctx context.Context, owner, node string, purgeOnly bool) (PEPNode, error) {
	n, err := p.onNode(ctx, owner, node, true, func(b pepTx, _ PEPNode) error {
		freed, err := b.dropItems(pepItemPrefix(owner, node))
		if err != nil {
			return err
		}
		if err := b.release(owner, freed); err != nil {
			return err
		}
		if purgeOnly {
			return nil
		}
		return b.nodes.Delete(pepNodeKey(owner, node))
	})
	if err != nil {
		return PEPNode{}, fmt.Errorf("store: delete %s node %q: %w", owner, node, err)
	}
	return n, nil
}

// Usage returns the bytes the account's items take.
func (p *PEP) Usage(ctx context.Context, owner string) (int64, error) {
	if err := validateJID("owner", owner); err != nil {
		return 0, fmt.Errorf("store: PEP usage: %w", err)
	}
	var used uint64
	err := p.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := pepBuckets(tx)
		if err != nil {
			return err
		}
		used, err = b.usage(owner)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: PEP usage of %s: %w", owner, err)
	}
	return int64(used), nil
}

func validatePEP(owner string, n PEPNode) error {
	if err := validateJID("owner", owner); err != nil {
		return err
	}
	return n.validate()
}

func pepNodeKey(owner, node string) []byte { return append(lp(owner), node...) }

func pepItemPrefix(owner, node string) []byte { return appendString(lp(owner), node) }

// pepTx holds the pep buckets of a transaction.
type pepTx struct {
	nodes, items, use *bbolt.Bucket
}

func pepBuckets(tx *bbolt.Tx) (pepTx, error) {
	var b pepTx
	var err error
	if b.nodes, err = bucket(tx, bucketPEPNodes); err != nil {
		return b, err
	}
	if b.items, err = bucket(tx, bucketPEPItems); err != nil {
		return b, err
	}
	b.use, err = bucket(tx, bucketPEPUsage)
	return b, err
}

func (b pepTx) node(owner, node string) (PEPNode, error) {
	v := b.nodes.Get(pepNodeKey(owner, node))
	if v == nil {
		return PEPNode{}, ErrNotFound
	}
	return decodePEPNode(node, v)
}

// removeItem removes the node's item with the id, if there is one, and
// returns its size.
func (b pepTx) removeItem(owner, node, id string) (size uint64, found bool, err error) {
	prefix := pepItemPrefix(owner, node)
	c := b.items.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		it, err := decodePEPItem(v)
		if err != nil {
			return 0, false, err
		}
		if it.ID == id {
			return it.size(), true, c.Delete()
		}
	}
	return 0, false, nil
}

// last returns the node's newest item (zero if it has none): item keys
// are the node's prefix and 8 bytes, so a longer key sorts after them all.
func (b pepTx) last(owner, node string) (PEPItem, error) {
	ip := pepItemPrefix(owner, node)
	c := b.items.Cursor()
	k, v := c.Seek(append(bytes.Clone(ip), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, ip) {
		return PEPItem{}, nil
	}
	return decodePEPItem(v)
}

func (b pepTx) checkNodeCount(owner string, max int) error {
	if max <= 0 {
		return nil
	}
	prefix := lp(owner)
	n := 0
	c := b.nodes.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if n++; n >= max {
			return fmt.Errorf("%w: %s has %d nodes", ErrQuota, owner, n)
		}
	}
	return nil
}

// trim removes the node's oldest items beyond its MaxItems and returns the
// bytes they took.
func (b pepTx) trim(owner string, n PEPNode) (uint64, error) {
	prefix := pepItemPrefix(owner, n.Node)
	count := 0
	c := b.items.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		count++
	}
	if count <= n.MaxItems {
		return 0, nil
	}
	return b.dropOldest(prefix, count-n.MaxItems)
}

// dropItems removes every item under prefix and returns the bytes they
// took.
func (b pepTx) dropItems(prefix []byte) (uint64, error) { return b.dropOldest(prefix, -1) }

// dropOldest removes the first n items under prefix (the oldest: keys end
// in the item's sequence number), all of them when n < 0, and returns the
// bytes they took.
func (b pepTx) dropOldest(prefix []byte, n int) (uint64, error) {
	var freed uint64
	c := b.items.Cursor()
	for k, v := c.Seek(prefix); n != 0 && k != nil && bytes.HasPrefix(k, prefix); k, v = c.Seek(prefix) {
		it, err := decodePEPItem(v)
		if err != nil {
			return 0, err
		}
		freed += it.size()
		if err := c.Delete(); err != nil {
			return 0, err
		}
		n--
	}
	return freed, nil
}

func (b pepTx) usage(owner string) (uint64, error) {
	v := b.use.Get(lp(owner))
	if v == nil {
		return 0, nil
	}
	return decodeVersionedUvarint(v, pepUsageCodecV1, "PEP usage")
}

func (b pepTx) setUsage(owner string, used uint64) error {
	if used == 0 {
		return b.use.Delete(lp(owner))
	}
	return b.use.Put(lp(owner), appendUvarint([]byte{pepUsageCodecV1}, used))
}

func (b pepTx) release(owner string, freed uint64) error {
	if freed == 0 {
		return nil
	}
	used, err := b.usage(owner)
	if err != nil {
		return err
	}
	return b.setUsage(owner, used-min(used, freed))
}

// deletePEPOwner removes an account's nodes, items and usage.
func deletePEPOwner(tx *bbolt.Tx, owner string) error {
	b, err := pepBuckets(tx)
	if err != nil {
		return err
	}
	prefix := lp(owner)
	for _, bk := range []*bbolt.Bucket{b.nodes, b.items} {
		if err := deletePrefix(bk, prefix); err != nil {
			return err
		}
	}
	return b.use.Delete(prefix)
}

func encodePEPNode(n PEPNode) []byte {
	v := []byte{pepNodeCodecV1}
	v = appendString(v, n.Access)
	v = appendUvarint(v, uint64(len(n.RosterGroups)))
	for _, g := range n.RosterGroups {
		v = appendString(v, g)
	}
	v = appendUvarint(v, uint64(n.MaxItems))
	v = appendString(v, n.SendLast)
	var flags byte
	if n.NotifyRetract {
		flags |= 1
	}
	if n.NotifyDelete {
		flags |= 2
	}
	v = append(v, flags)
	v = appendString(v, n.Title)
	return appendUvarint(v, n.seq)
}

func decodePEPNode(name string, v []byte) (PEPNode, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != pepNodeCodecV1 {
		return PEPNode{}, fmt.Errorf("%w: PEP node %q codec version %d", ErrCorrupt, name, ver)
	}
	n := PEPNode{Node: name, Access: d.string()}
	groups := d.uvarint()
	if groups > uint64(len(v)) {
		return PEPNode{}, fmt.Errorf("%w: PEP node %q with %d groups", ErrCorrupt, name, groups)
	}
	for range groups {
		n.RosterGroups = append(n.RosterGroups, d.string())
	}
	n.MaxItems = d.int()
	n.SendLast = d.string()
	flags := d.byte()
	n.NotifyRetract, n.NotifyDelete = flags&1 != 0, flags&2 != 0
	n.Title = d.string()
	n.seq = d.uvarint()
	if err := d.done(); err != nil {
		return PEPNode{}, fmt.Errorf("PEP node %q: %w", name, err)
	}
	return n, nil
}

func encodePEPItem(it PEPItem) []byte {
	v := []byte{pepItemCodecV1}
	v = appendString(v, it.ID)
	v = appendString(v, it.Publisher)
	return appendBytes(v, it.Payload)
}

func decodePEPItem(v []byte) (PEPItem, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != pepItemCodecV1 {
		return PEPItem{}, fmt.Errorf("%w: PEP item codec version %d", ErrCorrupt, ver)
	}
	it := PEPItem{ID: d.string(), Publisher: d.string(), Payload: d.bytes()}
	if err := d.done(); err != nil {
		return PEPItem{}, fmt.Errorf("PEP item: %w", err)
	}
	return it, nil
}

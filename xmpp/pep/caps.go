package pep

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"sort"
	"strings"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// NSCaps is the XEP-0115 Entity Capabilities namespace.
const NSCaps = "http://jabber.org/protocol/caps"

// notifySuffix marks a feature that asks for a node's notifications
// (XEP-0060 §9.2 filtered notifications).
const notifySuffix = "+notify"

// capsKey identifies the capabilities a presence announces: its hash
// function and verification string, or "" when it carries none.
func capsKey(p *wire.Element) (key, node, ver string) {
	c := p.Child("c", NSCaps)
	if c == nil {
		return "", "", ""
	}
	ver, node = c.AttrValue("ver"), c.AttrValue("node")
	h := c.AttrValue("hash")
	// Real strings are base64 digests of at most 64 bytes; longer
	// ones are not learnt (they would take room in every cache).
	if ver == "" || len(ver) > maxVerLen || len(h) > maxHashNameLen || len(node) > maxCapsNodeLen {
		return "", "", ""
	}
	return h + " " + ver, node, ver
}

// Bounds on what the server learns from entity capabilities.
const (
	maxVerLen      = 128
	maxHashNameLen = 32
	maxCapsNodeLen = 1024
	// maxInterests is how many nodes one answer may ask for; further
	// "+notify" features are ignored, as are longer node names.
	maxInterests    = 64
	maxInterestName = 256
)

// capsHashes are the XEP-0115 §5.1 hash functions whose verification
// strings the server checks (IANA names, XEP-0115 §8.2). Others are
// legacy or unknown: what their owner answers is kept for that JID only.
var capsHashes = map[string]func() hash.Hash{
	"sha-1":   sha1.New,
	"sha-256": sha256.New,
	"sha-512": sha512.New,
}

// verification computes the XEP-0115 §5.1 verification string of a
// disco#info result with the named hash. ok is false for an unknown hash or
// for a result that §5.4 says not to trust: duplicate identities or
// features, two extended forms of one FORM_TYPE, or a form with more than
// one FORM_TYPE field. Forms without a hidden FORM_TYPE are left out.
func verification(q *wire.Element, hashName string) (ver string, ok bool) {
	newHash, known := capsHashes[hashName]
	if !known || q == nil {
		return "", false
	}
	var ids, features []string
	type form struct {
		typ    string
		fields []string
	}
	var forms []form
	for _, ch := range q.Children {
		switch {
		case ch.Space == xmpp.NSDiscoInfo && ch.Name == "identity":
			ids = append(ids, ch.AttrValue("category")+"/"+ch.AttrValue("type")+"/"+ch.AttrValue("xml:lang")+"/"+ch.AttrValue("name"))
		case ch.Space == xmpp.NSDiscoInfo && ch.Name == "feature":
			features = append(features, ch.AttrValue("var"))
		case ch.Space == xmpp.NSData && ch.Name == "x":
			f, typ, good := formString(ch)
			if !good {
				return "", false
			}
			if typ == "" {
				continue // §5.4 3.6: ignored
			}
			forms = append(forms, form{typ: typ, fields: f})
		}
	}
	if hasDuplicate(ids) || hasDuplicate(features) {
		return "", false
	}
	sort.Strings(ids)
	sort.Strings(features)
	sort.Slice(forms, func(i, j int) bool { return forms[i].typ < forms[j].typ })
	for i := 1; i < len(forms); i++ {
		if forms[i].typ == forms[i-1].typ {
			return "", false // §5.4 3.6: one form per FORM_TYPE
		}
	}
	var b strings.Builder
	for _, s := range ids {
		b.WriteString(s)
		b.WriteByte('<')
	}
	for _, s := range features {
		b.WriteString(s)
		b.WriteByte('<')
	}
	for _, f := range forms {
		b.WriteString(f.typ)
		b.WriteByte('<')
		for _, s := range f.fields {
			b.WriteString(s)
		}
	}
	h := newHash()
	h.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), true
}

// formString returns an extended form's fields in §5.1 order (each field's
// var then its sorted values, each followed by '<'), without FORM_TYPE, and
// the FORM_TYPE value. good is false for a form §5.4 rejects.
func formString(x *wire.Element) (fields []string, typ string, good bool) {
	type field struct {
		v      string
		values []string
	}
	var fs []field
	found := false
	for _, f := range x.Children {
		if f.Space != xmpp.NSData || f.Name != "field" {
			continue
		}
		var values []string
		for _, v := range f.Children {
			if v.Space == xmpp.NSData && v.Name == "value" {
				values = append(values, v.Text)
			}
		}
		if f.AttrValue("var") == "FORM_TYPE" {
			if f.AttrValue("type") != "hidden" {
				// §5.4 3.6: such a form is ignored.
				return nil, "", true
			}
			if found || len(values) != 1 {
				return nil, "", false
			}
			found, typ = true, values[0]
			continue
		}
		fs = append(fs, field{v: f.AttrValue("var"), values: values})
	}
	if !found {
		// §5.4 3.6: a form without FORM_TYPE is ignored, not hashed.
		return nil, "", true
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].v < fs[j].v })
	for _, f := range fs {
		sort.Strings(f.values)
		s := f.v + "<"
		for _, v := range f.values {
			s += v + "<"
		}
		fields = append(fields, s)
	}
	return fields, typ, true
}

func hasDuplicate(s []string) bool {
	seen := make(map[string]bool, len(s))
	for _, v := range s {
		if seen[v] {
			return true
		}
		seen[v] = true
	}
	return false
}

// interests returns the nodes whose notifications a disco#info result asks
// for ("node+notify" features).
func interests(q *wire.Element) map[string]bool {
	out := map[string]bool{}
	for _, ch := range q.Children {
		if ch.Space == xmpp.NSDiscoInfo && ch.Name == "feature" {
			v := ch.AttrValue("var")
			if strings.HasSuffix(v, notifySuffix) && len(v) > len(notifySuffix) && len(v) <= maxInterestName+len(notifySuffix) {
				if out[strings.TrimSuffix(v, notifySuffix)] = true; len(out) >= maxInterests {
					return out
				}
			}
		}
	}
	return out
}

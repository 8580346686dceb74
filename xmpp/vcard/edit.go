package vcard

import "switchboard/xmpp/wire"

// Edit changes the directory fields of a vCard, as an administrator sets
// them (a phone system provisioning extensions). A nil field is left as it
// is; an empty one is removed.
type Edit struct {
	FullName   *string // FN
	Given      *string // N/GIVEN
	Family     *string // N/FAMILY
	Department *string // ORG/ORGUNIT
	Extension  *string // the NUMBER of the first work TEL (or the first TEL)
	Email      *string // the USERID of the first EMAIL
}

// Apply returns a copy of the vCard v (nil: an empty one) with e's
// changes; everything else it holds (a photo, addresses) stays as it was,
// in its place.
func (e Edit) Apply(v *wire.Element) *wire.Element {
	var kids []*wire.Element
	if v != nil {
		kids = append(kids, v.Children...)
	}
	kids = setLeaf(kids, "FN", e.FullName)
	kids = setIn(kids, "N", nil, func(n []*wire.Element) []*wire.Element {
		return setLeaf(setLeaf(n, "FAMILY", e.Family), "GIVEN", e.Given)
	}, e.Given != nil || e.Family != nil)
	kids = setIn(kids, "ORG", nil, func(o []*wire.Element) []*wire.Element {
		return setLeaf(o, "ORGUNIT", e.Department)
	}, e.Department != nil)
	kids = setIn(kids, "TEL", isWork, func(t []*wire.Element) []*wire.Element {
		if len(t) == 0 {
			t = []*wire.Element{wire.New("WORK", NS), wire.New("VOICE", NS)}
		}
		return setLeaf(t, "NUMBER", e.Extension)
	}, e.Extension != nil)
	kids = setIn(kids, "EMAIL", nil, func(m []*wire.Element) []*wire.Element {
		if len(m) == 0 {
			m = []*wire.Element{wire.New("INTERNET", NS)}
		}
		return setLeaf(m, "USERID", e.Email)
	}, e.Email != nil)
	return wire.New("vCard", NS).WithChildren("", kids...)
}

// isWork prefers a TEL marked WORK.
func isWork(el *wire.Element) bool { return el.Child("WORK", NS) != nil }

// setLeaf replaces the first child name with one holding *val, removes it
// when *val is empty, and adds it when missing; nil leaves kids alone.
func setLeaf(kids []*wire.Element, name string, val *string) []*wire.Element {
	if val == nil {
		return kids
	}
	out := make([]*wire.Element, 0, len(kids)+1)
	done := false
	for _, k := range kids {
		if !done && k.Name == name && k.Space == NS {
			done = true
			if *val != "" {
				out = append(out, wire.New(name, NS).SetText(*val))
			}
			continue
		}
		out = append(out, k)
	}
	if !done && *val != "" {
		out = append(out, wire.New(name, NS).SetText(*val))
	}
	return out
}

// setIn rewrites the children of one child name (the first that prefer
// accepts, else the first; a new one when there is none) with edit, when
// change is set. A child left with nothing but markers (WORK, INTERNET)
// is removed.
func setIn(kids []*wire.Element, name string, prefer func(*wire.Element) bool, edit func([]*wire.Element) []*wire.Element, change bool) []*wire.Element {
	if !change {
		return kids
	}
	at := -1
	for i, k := range kids {
		if k.Name != name || k.Space != NS {
			continue
		}
		if at < 0 {
			at = i
		}
		if prefer == nil || prefer(k) {
			at = i
			break
		}
	}
	var inner []*wire.Element
	if at >= 0 {
		inner = kids[at].Children
	}
	inner = edit(append([]*wire.Element(nil), inner...))
	var el *wire.Element
	if hasValue(inner) {
		el = wire.New(name, NS).WithChildren("", inner...)
	}
	out := append([]*wire.Element(nil), kids...)
	switch {
	case at >= 0 && el != nil:
		out[at] = el
	case at >= 0:
		out = append(out[:at], out[at+1:]...)
	case el != nil:
		out = append(out, el)
	}
	return out
}

// hasValue reports whether a structured property holds any text.
func hasValue(kids []*wire.Element) bool {
	for _, k := range kids {
		if k.Text != "" || hasValue(k.Children) {
			return true
		}
	}
	return false
}

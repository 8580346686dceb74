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
	Extension  *string // the NUMBER of the work voice TEL (a new one if none)
	Email      *string // the USERID of the work EMAIL (a new one if none)
}

// Apply returns a copy of the vCard v (nil: an empty one) with e's
// changes. Everything else stays as it was, in its place: the user's other
// phone numbers and addresses, a photo, attributes. A property the edit
// leaves without a value is removed; extra copies of a property that
// should occur once (FN, GIVEN, FAMILY, ORGUNIT) go with the first.
func (e Edit) Apply(v *wire.Element) *wire.Element {
	var kids []*wire.Element
	root := wire.New("vCard", NS)
	if v != nil {
		kids = append(kids, v.Children...)
		if v.Prefix == "" {
			root = v // keeps its attributes (xml:lang)
		}
	}
	kids = setLeaf(kids, "FN", e.FullName, false)
	if e.Given != nil || e.Family != nil {
		kids = setIn(kids, "N", first, nil, func(n []*wire.Element) []*wire.Element {
			// The DTD's order: FAMILY, GIVEN, MIDDLE, PREFIX, SUFFIX.
			return setLeaf(setLeaf(n, "GIVEN", e.Given, false), "FAMILY", e.Family, true)
		})
	}
	if e.Department != nil {
		kids = setIn(kids, "ORG", first, []string{"ORGNAME"}, func(o []*wire.Element) []*wire.Element {
			return setLeaf(o, "ORGUNIT", e.Department, false)
		})
	}
	if e.Extension != nil {
		kids = setIn(kids, "TEL", workVoice, []string{"WORK", "VOICE"}, func(t []*wire.Element) []*wire.Element {
			return setLeaf(t, "NUMBER", e.Extension, false)
		})
	}
	if e.Email != nil {
		kids = setIn(kids, "EMAIL", work, []string{"INTERNET", "WORK"}, func(m []*wire.Element) []*wire.Element {
			return setLeaf(m, "USERID", e.Email, false)
		})
	}
	return root.WithChildren("", kids...)
}

// first accepts the first property of its name.
func first(*wire.Element) bool { return true }

// work accepts a property marked WORK.
func work(el *wire.Element) bool { return el.Child("WORK", NS) != nil }

// workVoice accepts a work number that is a voice line: not a fax, pager,
// modem, mobile, message, bulletin board, video, ISDN or PCS number.
func workVoice(el *wire.Element) bool {
	if !work(el) {
		return false
	}
	for _, other := range []string{"FAX", "PAGER", "MODEM", "CELL", "MSG", "BBS", "VIDEO", "ISDN", "PCS"} {
		if el.Child(other, NS) != nil {
			return false
		}
	}
	return true
}

// setLeaf replaces the first child name with one holding *val (removed
// when *val is empty), drops any further child of that name, and adds one
// (at the front when front is set) when there was none; nil leaves kids
// alone.
func setLeaf(kids []*wire.Element, name string, val *string, front bool) []*wire.Element {
	if val == nil {
		return kids
	}
	leaf := wire.New(name, NS).SetText(*val)
	out := make([]*wire.Element, 0, len(kids)+1)
	done := false
	for _, k := range kids {
		if k.Name != name || k.Space != NS {
			out = append(out, k)
			continue
		}
		if !done && *val != "" {
			out = append(out, leaf)
		}
		done = true
	}
	switch {
	case done || *val == "":
	case front:
		out = append([]*wire.Element{leaf}, out...)
	default:
		out = append(out, leaf)
	}
	return out
}

// setIn rewrites the children of the first child name that accept takes
// with edit; with none, it makes a new one whose children start with empty
// markers. A property left without any text is removed.
func setIn(kids []*wire.Element, name string, accept func(*wire.Element) bool, markers []string, edit func([]*wire.Element) []*wire.Element) []*wire.Element {
	at := -1
	for i, k := range kids {
		if k.Name == name && k.Space == NS && accept(k) {
			at = i
			break
		}
	}
	var inner []*wire.Element
	prop := wire.New(name, NS)
	if at >= 0 {
		prop = kids[at]
		inner = append(inner, prop.Children...)
	} else {
		for _, m := range markers {
			inner = append(inner, wire.New(m, NS))
		}
	}
	inner = edit(inner)
	out := append([]*wire.Element(nil), kids...)
	switch keep := hasValue(inner); {
	case at >= 0 && keep:
		out[at] = prop.WithChildren("", inner...)
	case at >= 0:
		out = append(out[:at], out[at+1:]...)
	case keep:
		out = append(out, prop.WithChildren("", inner...))
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

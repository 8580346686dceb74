package xmpp

import "switchboard/xmpp/wire"

// NSData is the namespace of XEP-0004 Data Forms.
const NSData = "jabber:x:data"

// FormField builds a data form field (XEP-0004 §3.2) with optional type
// and values.
func FormField(v, typ string, values ...string) *wire.Element {
	f := wire.New("field", NSData, wire.Attr{Name: "var", Value: v})
	if typ != "" {
		f.Attrs = append(f.Attrs, wire.Attr{Name: "type", Value: typ})
	}
	for _, val := range values {
		f.AddChild(wire.New("value", NSData).SetText(val))
	}
	return f
}

// FormValues returns the values of a submitted form's fields by var; a
// field without values maps to an empty slice.
func FormValues(x *wire.Element) map[string][]string {
	out := map[string][]string{}
	if x == nil {
		return out
	}
	for _, f := range x.Children {
		if f.Name != "field" || f.Space != NSData {
			continue
		}
		v := f.AttrValue("var")
		out[v] = []string{}
		for _, val := range f.Children {
			if val.Name == "value" && val.Space == NSData {
				out[v] = append(out[v], val.Text)
			}
		}
	}
	return out
}

// FormOption is a list field's option (XEP-0004 §3.2) with value v.
func FormOption(v string) *wire.Element {
	return wire.New("option", NSData).AddChild(wire.New("value", NSData).SetText(v))
}

// FormBool is b as a XEP-0004 §3.3 boolean value.
func FormBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// ParseFormBool reads a XEP-0004 §3.3 boolean value; ok is false for
// anything else.
func ParseFormBool(v string) (b, ok bool) {
	switch v {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

package pep

import (
	"slices"
	"strconv"

	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// configForm renders a node's configuration as a XEP-0004 form of type
// typ, with the fields of XEP-0060 §16.4.4 that the service honours.
func (m *Module) configForm(n store.PEPNode, typ string) *wire.Element {
	x := wire.New("x", xmpp.NSData, wire.Attr{Name: "type", Value: typ})
	x.AddChild(
		xmpp.FormField("FORM_TYPE", "hidden", NSNodeConfig),
		xmpp.FormField("pubsub#title", "text-single", n.Title),
		listField("pubsub#access_model", n.Access, AccessOpen, AccessPresence, AccessRoster, AccessWhitelist),
		xmpp.FormField("pubsub#roster_groups_allowed", "list-multi", n.RosterGroups...),
		xmpp.FormField("pubsub#max_items", "text-single", strconv.Itoa(n.MaxItems)),
		listField("pubsub#send_last_published_item", n.SendLast, SendNever, SendOnSub, SendOnSubAndPresence),
		xmpp.FormField("pubsub#notify_retract", "boolean", xmpp.FormBool(n.NotifyRetract)),
		xmpp.FormField("pubsub#notify_delete", "boolean", xmpp.FormBool(n.NotifyDelete)),
		xmpp.FormField("pubsub#persist_items", "boolean", "1"),
		xmpp.FormField("pubsub#deliver_payloads", "boolean", "1"),
		xmpp.FormField("pubsub#deliver_notifications", "boolean", "1"),
		listField("pubsub#publish_model", "publishers", "publishers"),
	)
	return x
}

func listField(v, value string, options ...string) *wire.Element {
	f := xmpp.FormField(v, "list-single", value)
	for _, o := range options {
		f.AddChild(xmpp.FormOption(o))
	}
	return f
}

// applyForm applies a submitted node configuration or publish-options
// form to n. A value the service does not offer is not-acceptable
// (XEP-0060 §8.2.5.3): persistence and payload delivery are always on.
// Fields it does not know are left alone in a configuration form and are
// not-acceptable in publish-options.
func (m *Module) applyForm(n *store.PEPNode, x *wire.Element, formType string) error {
	// Publish-options are preconditions: each field must be one the
	// service knows (XEP-0060 §7.1.5).
	strict := formType == NSPublishOptions
	bad := func(field string) error {
		return xmpp.StanzaError(stanza.NotAcceptable, "unsupported value for "+field)
	}
	for field, values := range xmpp.FormValues(x) {
		one := ""
		if len(values) > 0 {
			one = values[0]
		}
		switch field {
		case "FORM_TYPE":
			if one != formType && one != NSNodeConfig {
				return xmpp.StanzaError(stanza.BadRequest, "unexpected FORM_TYPE")
			}
		case "pubsub#title":
			if len(one) > store.MaxPEPFieldLen {
				return bad(field)
			}
			n.Title = one
		case "pubsub#access_model":
			switch one {
			case AccessOpen, AccessPresence, AccessRoster, AccessWhitelist:
				n.Access = one
			default:
				return bad(field)
			}
		case "pubsub#roster_groups_allowed":
			groups := slices.Clone(values)
			slices.Sort(groups)
			n.RosterGroups = slices.Compact(groups)
			if len(n.RosterGroups) == 0 {
				n.RosterGroups = nil
			}
			for _, g := range n.RosterGroups {
				if len(g) > store.MaxPEPFieldLen {
					return bad(field)
				}
			}
		case "pubsub#max_items":
			if one == "max" {
				n.MaxItems = m.opts.MaxItems
				continue
			}
			v, err := strconv.Atoi(one)
			if err != nil || v < 1 || v > m.opts.MaxItems {
				return bad(field)
			}
			n.MaxItems = v
		case "pubsub#send_last_published_item":
			switch one {
			case SendNever, SendOnSub, SendOnSubAndPresence:
				n.SendLast = one
			default:
				return bad(field)
			}
		case "pubsub#notify_retract", "pubsub#notify_delete":
			b, ok := xmpp.ParseFormBool(one)
			if !ok {
				return bad(field)
			}
			if field == "pubsub#notify_retract" {
				n.NotifyRetract = b
			} else {
				n.NotifyDelete = b
			}
		case "pubsub#persist_items", "pubsub#deliver_payloads", "pubsub#deliver_notifications":
			// Items always persist and notifications carry payloads.
			if b, ok := xmpp.ParseFormBool(one); !ok || !b {
				return bad(field)
			}
		case "pubsub#publish_model":
			if one != "publishers" {
				return bad(field)
			}
		default:
			if strict {
				return bad(field)
			}
		}
	}
	return nil
}

package roster

import (
	"fmt"
	"testing"

	"switchboard/store"
)

// The nine defined states of RFC 6121 Appendix A.1.
var (
	sNone      = State{Sub: store.SubNone}
	sNonePO    = State{Sub: store.SubNone, PendingOut: true}
	sNonePI    = State{Sub: store.SubNone, PendingIn: true}
	sNonePOPI  = State{Sub: store.SubNone, PendingOut: true, PendingIn: true}
	sTo        = State{Sub: store.SubTo}
	sToPI      = State{Sub: store.SubTo, PendingIn: true}
	sFrom      = State{Sub: store.SubFrom}
	sFromPO    = State{Sub: store.SubFrom, PendingOut: true}
	sBoth      = State{Sub: store.SubBoth}
	stateNames = map[State]string{sNone: "None", sNonePO: "None+PendingOut", sNonePI: "None+PendingIn", sNonePOPI: "None+PendingOut+PendingIn", sTo: "To", sToPI: "To+PendingIn", sFrom: "From", sFromPO: "From+PendingOut", sBoth: "Both"}
	allStates  = []State{sNone, sNonePO, sNonePI, sNonePOPI, sTo, sToPI, sFrom, sFromPO, sBoth}
)

type row struct {
	from State
	to   State
	pass bool // routed (outbound) or delivered (inbound)
}

// Appendix A.2: server processing of outbound subscription stanzas. Rows
// the RFC marks "MAY route" without a state change are implemented as: route
// a repeated subscribe (so the contact's server re-confirms), do not route
// an unsubscribe that changes nothing.
var outboundTables = map[string][]row{
	"subscribe": { // A.2.1
		{sNone, sNonePO, true}, {sNonePO, sNonePO, true}, {sNonePI, sNonePOPI, true},
		{sNonePOPI, sNonePOPI, true}, {sTo, sTo, true}, {sToPI, sToPI, true},
		{sFrom, sFromPO, true}, {sFromPO, sFromPO, true}, {sBoth, sBoth, true},
	},
	"unsubscribe": { // A.2.2
		{sNone, sNone, false}, {sNonePO, sNone, true}, {sNonePI, sNonePI, false},
		{sNonePOPI, sNonePI, true}, {sTo, sNone, true}, {sToPI, sNonePI, true},
		{sFrom, sFrom, false}, {sFromPO, sFrom, true}, {sBoth, sFrom, true},
	},
	"subscribed": { // A.2.3 (without a pending request: pre-approval, §3.4)
		{sNone, sNone, false}, {sNonePO, sNonePO, false}, {sNonePI, sFrom, true},
		{sNonePOPI, sFromPO, true}, {sTo, sTo, false}, {sToPI, sBoth, true},
		{sFrom, sFrom, false}, {sFromPO, sFromPO, false}, {sBoth, sBoth, false},
	},
	"unsubscribed": { // A.2.4
		{sNone, sNone, false}, {sNonePO, sNonePO, false}, {sNonePI, sNone, true},
		{sNonePOPI, sNonePO, true}, {sTo, sTo, false}, {sToPI, sTo, true},
		{sFrom, sNone, true}, {sFromPO, sNonePO, true}, {sBoth, sTo, true},
	},
}

// Appendix A.3: server processing of inbound subscription stanzas.
var inboundTables = map[string][]row{
	"subscribe": { // A.3.1 (From/Both: the server answers "subscribed" itself)
		{sNone, sNonePI, true}, {sNonePO, sNonePOPI, true}, {sNonePI, sNonePI, false},
		{sNonePOPI, sNonePOPI, false}, {sTo, sToPI, true}, {sToPI, sToPI, false},
		{sFrom, sFrom, false}, {sFromPO, sFromPO, false}, {sBoth, sBoth, false},
	},
	"unsubscribe": { // A.3.2
		{sNone, sNone, false}, {sNonePO, sNonePO, false}, {sNonePI, sNone, true},
		{sNonePOPI, sNonePO, true}, {sTo, sTo, false}, {sToPI, sTo, true},
		{sFrom, sNone, true}, {sFromPO, sNonePO, true}, {sBoth, sTo, true},
	},
	"subscribed": { // A.3.3
		{sNone, sNone, false}, {sNonePO, sTo, true}, {sNonePI, sNonePI, false},
		{sNonePOPI, sToPI, true}, {sTo, sTo, false}, {sToPI, sToPI, false},
		{sFrom, sFrom, false}, {sFromPO, sBoth, true}, {sBoth, sBoth, false},
	},
	"unsubscribed": { // A.3.4
		{sNone, sNone, false}, {sNonePO, sNone, true}, {sNonePI, sNonePI, false},
		{sNonePOPI, sNonePI, true}, {sTo, sNone, true}, {sToPI, sNonePI, true},
		{sFrom, sFrom, false}, {sFromPO, sFrom, true}, {sBoth, sFrom, true},
	},
}

func TestAppendixATables(t *testing.T) {
	for _, dir := range []struct {
		name   string
		tables map[string][]row
		fn     func(State, string) (State, bool)
	}{{"outbound", outboundTables, Outbound}, {"inbound", inboundTables, Inbound}} {
		for typ, rows := range dir.tables {
			if len(rows) != len(allStates) {
				t.Fatalf("%s %s: %d rows, want one per state", dir.name, typ, len(rows))
			}
			for _, r := range rows {
				t.Run(fmt.Sprintf("%s/%s/%s", dir.name, typ, stateNames[r.from]), func(t *testing.T) {
					got, pass := dir.fn(r.from, typ)
					if got != r.to || pass != r.pass {
						t.Fatalf("got %s (pass=%v), want %s (pass=%v)", stateNames[got], pass, stateNames[r.to], r.pass)
					}
				})
			}
		}
	}
}

func TestUnknownTypeChangesNothing(t *testing.T) {
	for _, s := range allStates {
		if got, pass := Outbound(s, "probe"); got != s || pass {
			t.Errorf("outbound probe changed %s", stateNames[s])
		}
		if got, pass := Inbound(s, ""); got != s || pass {
			t.Errorf("inbound available changed %s", stateNames[s])
		}
	}
}

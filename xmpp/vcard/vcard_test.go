package vcard

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

func TestProfileOf(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct {
		name  string
		vcard string
		want  store.Profile
	}{
		{"empty", "<vCard xmlns='vcard-temp'/>", store.Profile{}},
		{"every field", `<vCard xmlns='vcard-temp'>
			<FN> Alice Liddell </FN><N><FAMILY>Liddell</FAMILY><GIVEN>Alice</GIVEN></N><NICKNAME>al</NICKNAME>
			<ORG><ORGNAME>Example</ORGNAME><ORGUNIT>Sales</ORGUNIT></ORG>
			<TEL><WORK/><VOICE/><NUMBER>1234</NUMBER></TEL><TEL><CELL/><NUMBER>+44 7700 900000</NUMBER></TEL>
			<EMAIL><INTERNET/><USERID>alice@example.com</USERID></EMAIL></vCard>`,
			store.Profile{FullName: "Alice Liddell", Given: "Alice", Family: "Liddell", Nick: "al", OrgUnit: "Sales",
				Emails: []string{"alice@example.com"}, Phones: []string{"1234", "+44 7700 900000"}}},
		// XEP-0054 §6: the number belongs in NUMBER, the address in
		// USERID; an EMAIL's own text is taken when it has no USERID.
		{"email as text", "<vCard xmlns='vcard-temp'><EMAIL>a@example.com</EMAIL><TEL>555</TEL></vCard>",
			store.Profile{Emails: []string{"a@example.com"}}},
		{"empty numbers skipped", "<vCard xmlns='vcard-temp'><TEL><NUMBER/></TEL><TEL><NUMBER> </NUMBER></TEL></vCard>", store.Profile{}},
		{"other namespaces ignored", "<vCard xmlns='vcard-temp'><FN xmlns='urn:other'>x</FN><TEL xmlns='urn:other'><NUMBER>1</NUMBER></TEL></vCard>", store.Profile{}},
		{"long field cut at a rune", "<vCard xmlns='vcard-temp'><FN>a" + long + "</FN></vCard>",
			store.Profile{FullName: "a" + strings.Repeat("é", 127)}},
		{"at most 8 numbers", "<vCard xmlns='vcard-temp'>" + strings.Repeat("<TEL><NUMBER>1</NUMBER></TEL>", 10) + "</vCard>",
			store.Profile{Phones: []string{"1", "1", "1", "1", "1", "1", "1", "1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ProfileOf(xmpptest.Element(t, tc.vcard)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ProfileOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzProfileOf: any vCard a client sends gives a bounded profile of valid
// UTF-8 without panicking.
func FuzzProfileOf(f *testing.F) {
	f.Add("<vCard xmlns='vcard-temp'><FN>A</FN><N><GIVEN>A</GIVEN></N><TEL><NUMBER>1</NUMBER></TEL><EMAIL>x</EMAIL></vCard>")
	f.Add("<vCard xmlns='vcard-temp'><ORG><ORGUNIT>" + strings.Repeat("€", 100) + "</ORGUNIT></ORG></vCard>")
	f.Add("<vCard/>")
	f.Fuzz(func(t *testing.T, s string) {
		el, err := wire.Parse([]byte(s), wire.NewScope(""))
		if err != nil {
			return
		}
		p := ProfileOf(el)
		for _, v := range append([]string{p.FullName, p.Given, p.Family, p.Nick, p.OrgUnit}, append(p.Emails, p.Phones...)...) {
			if len(v) > maxProfileField || !utf8.ValidString(v) && utf8.ValidString(s) {
				t.Fatalf("field %q: %d bytes or invalid UTF-8", v, len(v))
			}
		}
		if len(p.Emails) > maxProfileList || len(p.Phones) > maxProfileList {
			t.Fatalf("lists of %d and %d", len(p.Emails), len(p.Phones))
		}
	})
}

// fakeStore is a Store whose answers the test sets.
type fakeStore struct {
	get    []byte
	getErr error
	setErr error
	set    []byte // what the last Set was given
}

func (f *fakeStore) Get(context.Context, string) ([]byte, error) { return f.get, f.getErr }
func (f *fakeStore) Set(_ context.Context, _ string, v []byte, _ store.Profile) error {
	f.set = v
	return f.setErr
}

// The handlers' store failures: an account removed while its session
// ends, a vCard that no longer parses, an I/O error.
func TestHandlerStoreFailures(t *testing.T) {
	ioErr := errors.New("disk on fire")
	tests := []struct {
		name  string
		store fakeStore
		iq    string
		cond  stanza.Condition // "": an error that is not a stanza error (internal-server-error)
	}{
		{"set, account gone", fakeStore{setErr: fmt.Errorf("x: %w", store.ErrNotFound)},
			"<iq type='set' id='1' from='a@x/r'><vCard xmlns='vcard-temp'><FN>A</FN></vCard></iq>", stanza.ItemNotFound},
		{"set, I/O", fakeStore{setErr: ioErr}, "<iq type='set' id='1' from='a@x/r'><vCard xmlns='vcard-temp'/></iq>", ""},
		{"get, unparsable", fakeStore{get: []byte("<vCard xmlns='vcard-temp'><FN>")},
			"<iq type='get' id='1' from='b@x/r' to='a@x'><vCard xmlns='vcard-temp'/></iq>", ""},
		{"get, I/O", fakeStore{getErr: ioErr}, "<iq type='get' id='1' from='b@x/r' to='a@x'><vCard xmlns='vcard-temp'/></iq>", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(Options{MaxBytes: 1024}, Deps{Store: &tc.store})
			if err != nil {
				t.Fatal(err)
			}
			st := xmpptest.Stanza(t, tc.iq)
			h := m.get
			if st.Type == "set" {
				h = m.set
			}
			res, err := h(t.Context(), st)
			xmpptest.HandlerError(t, res, err, tc.cond)
		})
	}
}

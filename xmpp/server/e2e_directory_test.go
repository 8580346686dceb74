package server_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

const (
	dirNSVCard  = "vcard-temp"
	dirNSSearch = "jabber:iq:search"
	dirNSData   = "jabber:x:data"
	dirNSRSM    = "http://jabber.org/protocol/rsm"
	dirFields   = "urn:switchboard:directory:0"
)

// dirCard is a vCard as a client writes it.
func dirCard(full, given, family, dept, ext, email string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<vCard xmlns='%s'>", dirNSVCard)
	if full != "" {
		fmt.Fprintf(&b, "<FN>%s</FN>", full)
	}
	if given != "" || family != "" {
		fmt.Fprintf(&b, "<N><FAMILY>%s</FAMILY><GIVEN>%s</GIVEN></N>", family, given)
	}
	if dept != "" {
		fmt.Fprintf(&b, "<ORG><ORGNAME>Example Ltd</ORGNAME><ORGUNIT>%s</ORGUNIT></ORG>", dept)
	}
	if ext != "" {
		fmt.Fprintf(&b, "<TEL><WORK/><VOICE/><NUMBER>%s</NUMBER></TEL>", ext)
	}
	if email != "" {
		fmt.Fprintf(&b, "<EMAIL><INTERNET/><PREF/><USERID>%s</USERID></EMAIL>", email)
	}
	return b.String() + "</vCard>"
}

func dirSetCard(t testing.TB, c *servertest.Client, card string) *wire.Element {
	t.Helper()
	return pepIQ(t, c, "<iq type='set'>%s</iq>", card)
}

func dirGetCard(t testing.TB, c *servertest.Client, to string) *wire.Element {
	t.Helper()
	if to == "" {
		return pepIQ(t, c, "<iq type='get'><vCard xmlns='%s'/></iq>", dirNSVCard)
	}
	return pepIQ(t, c, "<iq type='get' to='%s'><vCard xmlns='%s'/></iq>", to, dirNSVCard)
}

// dirCardText returns the text of a path of elements in an IQ result's
// vCard ("FN", "TEL/NUMBER"), failing unless el is a result with a vCard.
func dirCardText(t testing.TB, el *wire.Element, path string) string {
	t.Helper()
	pepCheckResult(t, el)
	v := el.Child("vCard", dirNSVCard)
	if v == nil {
		t.Fatalf("no vCard in %s", el)
	}
	for _, name := range strings.Split(path, "/") {
		if v = v.Child(name, dirNSVCard); v == nil {
			return ""
		}
	}
	return v.Text
}

func TestVCardStorage(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Directory.VCardMaxBytes = 2048 }))
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	carol := s.AddUser(t, "carol", prPassword)
	a := prLogin(t, s, alice, "pc")
	b := prLogin(t, s, bob, "pc")
	a2 := prLogin(t, s, alice, "phone")

	// Nothing set yet: the owner gets an empty vCard (§3.1), others
	// service-unavailable, as for an account that does not exist (§3.2).
	if el := dirGetCard(t, a, ""); dirCardText(t, el, "FN") != "" || len(el.Child("vCard", dirNSVCard).Children) != 0 {
		t.Fatalf("own vCard before any was set: %s", el)
	}
	pepCheckError(t, dirGetCard(t, b, alice.String()), "cancel", "service-unavailable", "")
	pepCheckError(t, dirGetCard(t, b, "nobody@"+s.Domain), "cancel", "service-unavailable", "")

	card := dirCard("Alice Liddell", "Alice", "Liddell", "Sales", "1234", "alice@example.com")
	pepCheckResult(t, dirSetCard(t, a, card))
	for _, tc := range []struct {
		name string
		c    *servertest.Client
		to   string
	}{
		{"owner, no to", a, ""},
		{"owner, to the bare JID", a, alice.String()},
		{"owner's other resource", a2, ""},
		{"another user", b, alice.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			el := dirGetCard(t, tc.c, tc.to)
			if got := dirCardText(t, el, "FN"); got != "Alice Liddell" {
				t.Fatalf("FN = %q in %s", got, el)
			}
			if got := dirCardText(t, el, "TEL/NUMBER"); got != "1234" {
				t.Fatalf("TEL/NUMBER = %q in %s", got, el)
			}
			if got := el.AttrValue("from"); tc.to != "" && got != alice.String() {
				t.Fatalf("answered from %q, want the bare JID %s", got, alice)
			}
		})
	}

	// Errors, each leaving the stored vCard as it was.
	pepCheckError(t, pepIQ(t, b, "<iq type='set' to='%s'>%s</iq>", alice, dirCard("Mallory", "", "", "", "", "")),
		"auth", "forbidden", "")
	big := dirCard(strings.Repeat("x", 2100), "", "", "", "", "")
	pepCheckError(t, dirSetCard(t, a, big), "modify", "not-acceptable", "")
	pepCheckError(t, dirGetCard(t, a, s.Domain), "cancel", "service-unavailable", "")
	pepCheckError(t, pepIQ(t, a, "<iq type='set' to='%s'>%s</iq>", s.Domain, card), "cancel", "service-unavailable", "")
	if got := dirCardText(t, dirGetCard(t, b, alice.String()), "FN"); got != "Alice Liddell" {
		t.Fatalf("after the refused sets FN = %q", got)
	}

	// A blocked user cannot read it (XEP-0191 §3.5).
	pepCheckResult(t, pepIQ(t, a, "<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='%s'/></block></iq>", carol))
	c := prLogin(t, s, carol, "pc")
	pepCheckError(t, dirGetCard(t, c, alice.String()), "cancel", "service-unavailable", "")

	// An empty vCard removes it.
	pepCheckResult(t, dirSetCard(t, a, "<vCard xmlns='vcard-temp'/>"))
	pepCheckError(t, dirGetCard(t, b, alice.String()), "cancel", "service-unavailable", "")
	if el := dirGetCard(t, a, ""); len(el.Child("vCard", dirNSVCard).Children) != 0 {
		t.Fatalf("own vCard after removal: %s", el)
	}

	// Discovery (XEP-0054 §4; XEP-0055 on the host).
	info := pepIQ(t, a, "<iq type='get' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", s.Domain)
	var features []string
	identity := false
	for _, e := range info.Child("query", "http://jabber.org/protocol/disco#info").Children {
		switch e.Name {
		case "feature":
			features = append(features, e.AttrValue("var"))
		case "identity":
			identity = identity || e.AttrValue("category") == "directory" && e.AttrValue("type") == "user"
		}
	}
	if !slices.Contains(features, dirNSVCard) || !slices.Contains(features, dirNSSearch) || !identity {
		t.Fatalf("host disco#info lacks vcard-temp, jabber:iq:search or the directory identity: %s", info)
	}
}

// dirPeople sets up the directory of the search tests: four users, three
// with vCards, and returns a session of the first.
func dirPeople(t *testing.T, s *servertest.Server) *servertest.Client {
	t.Helper()
	var first *servertest.Client
	for _, p := range []struct{ local, card string }{
		{"alice", dirCard("Alice Liddell", "Alice", "Liddell", "Sales", "1234", "alice@example.com")},
		{"bob", dirCard("Bob Builder", "Bob", "Builder", "Engineering", "+1 (212) 555-5678", "")},
		{"carol", ""},
		{"dave", "<vCard xmlns='vcard-temp'><NICKNAME>Dee</NICKNAME></vCard>"},
	} {
		c := prLogin(t, s, s.AddUser(t, p.local, prPassword), "pc")
		if p.card != "" {
			pepCheckResult(t, dirSetCard(t, c, p.card))
		}
		if first == nil {
			first = c
		}
	}
	return first
}

// dirForm is a submitted search form with the given field=value pairs.
func dirForm(pairs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value></field>", dirNSData, dirNSSearch)
	for _, p := range pairs {
		v, val, _ := strings.Cut(p, "=")
		fmt.Fprintf(&b, "<field var='%s'><value>%s</value></field>", v, val)
	}
	return b.String() + "</x>"
}

// dirSearch sends a search with the given query content and returns the
// found JIDs' localparts and the answer.
func dirSearch(t testing.TB, c *servertest.Client, content string) ([]string, *wire.Element) {
	t.Helper()
	el := pepIQ(t, c, "<iq type='set' to='%s'><query xmlns='%s'>%s</query></iq>", c.JID.Domainpart(), dirNSSearch, content)
	if el.AttrValue("type") != "result" {
		return nil, el
	}
	q := el.Child("query", dirNSSearch)
	var found []string
	add := func(j string) {
		local, _, _ := strings.Cut(j, "@")
		found = append(found, local)
	}
	for _, it := range q.Children {
		if it.Name == "item" && it.Space == dirNSSearch {
			add(it.AttrValue("jid"))
		}
	}
	if x := q.Child("x", dirNSData); x != nil {
		for _, it := range x.Children {
			if it.Name != "item" {
				continue
			}
			for _, f := range it.Children {
				if f.AttrValue("var") == "jid" {
					add(f.ChildText("value", dirNSData))
				}
			}
		}
	}
	return found, el
}

func TestDirectorySearch(t *testing.T) {
	s := servertest.Start(t)
	a := dirPeople(t, s)

	// The form: legacy fields and a data form (XEP-0055 §2, §3).
	form := pepIQ(t, a, "<iq type='get' to='%s'><query xmlns='%s'/></iq>", s.Domain, dirNSSearch)
	q := form.Child("query", dirNSSearch)
	if q == nil || q.Child("first", dirNSSearch) == nil || q.Child("email", dirNSSearch) == nil {
		t.Fatalf("no legacy fields in %s", form)
	}
	x := q.Child("x", dirNSData)
	if x == nil || x.AttrValue("type") != "form" {
		t.Fatalf("no data form in %s", form)
	}
	var vars []string
	for _, f := range x.Children {
		if f.Name == "field" {
			vars = append(vars, f.AttrValue("var"))
		}
	}
	for _, want := range []string{"FORM_TYPE", "first", "last", "nick", "email", "{" + dirFields + "}name", "{" + dirFields + "}extension", "{" + dirFields + "}department", "{" + dirFields + "}user"} {
		if !slices.Contains(vars, want) {
			t.Fatalf("form lacks field %s: %v", want, vars)
		}
	}

	name := "{" + dirFields + "}name"
	ext := "{" + dirFields + "}extension"
	dept := "{" + dirFields + "}department"
	user := "{" + dirFields + "}user"
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"legacy: family name", "<last>liddell</last>", []string{"alice"}},
		{"legacy: no match", "<last>Nobody</last>", nil},
		{"legacy: wildcard", "<first>B*</first>", []string{"bob"}},
		{"legacy: two fields", "<first>alice</first><email>example.com</email>", []string{"alice"}},
		{"form: full name", dirForm(name + "=bob b"), []string{"bob"}},
		{"form: name finds a user name", dirForm(name + "=car"), []string{"carol"}},
		{"form: name finds a nickname", dirForm(name + "=dee"), []string{"dave"}},
		{"form: extension", dirForm(ext + "=12"), []string{"alice", "bob"}},
		{"form: extension, digits alone", dirForm(ext + "=555 56"), []string{"bob"}},
		{"form: department", dirForm(dept + "=ENG"), []string{"bob"}},
		{"form: every field must match", dirForm(name+"=alice", dept+"=eng"), nil},
		{"form: user name", dirForm(user + "=a"), []string{"alice", "carol", "dave"}},
		{"form: empty lists everyone", dirForm(), []string{"alice", "bob", "carol", "dave"}},
		{"form: empty values list everyone", dirForm(name + "="), []string{"alice", "bob", "carol", "dave"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, el := dirSearch(t, a, tc.content)
			pepCheckResult(t, el)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("found %v, want %v in %s", got, tc.want, el)
			}
			q := el.Child("query", dirNSSearch)
			if tc.want == nil && !strings.Contains(tc.content, "<x ") && len(q.Children) != 0 {
				t.Fatalf("no match must be an empty <query/> (§2): %s", el)
			}
		})
	}

	// A form result carries the reported fields and the values.
	_, el := dirSearch(t, a, dirForm(ext+"=1234"))
	x = el.Child("query", dirNSSearch).Child("x", dirNSData)
	if x == nil || x.AttrValue("type") != "result" || x.Child("reported", dirNSData) == nil {
		t.Fatalf("form result without reported fields: %s", el)
	}
	values := map[string]string{}
	for _, it := range x.Children {
		if it.Name == "item" {
			for _, f := range it.Children {
				values[f.AttrValue("var")] = f.ChildText("value", dirNSData)
			}
		}
	}
	if values["jid"] != "alice@"+s.Domain || values[name] != "Alice Liddell" || values[dept] != "Sales" || values["email"] != "alice@example.com" {
		t.Fatalf("result values %v", values)
	}
	// A legacy result carries the legacy fields.
	_, el = dirSearch(t, a, "<last>Builder</last>")
	if it := el.Child("query", dirNSSearch).Child("item", dirNSSearch); it == nil || it.ChildText("first", dirNSSearch) != "Bob" {
		t.Fatalf("legacy result: %s", el)
	}

	// A user who blocks the searcher is left out of the results.
	bob := s.MustLogin(t, jid.MustParse("bob@"+s.Domain), prPassword, servertest.ClientOptions{Resource: "block"})
	pepCheckResult(t, pepIQ(t, bob, "<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='alice@%s'/></block></iq>", s.Domain))
	if got, _ := dirSearch(t, a, dirForm(ext+"=12")); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("bob blocks alice, her search found %v", got)
	}
}

func TestDirectoryPagingAndErrors(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Directory.MaxResults = 3 }))
	a := dirPeople(t, s)
	rsm := func(inner string) string { return "<set xmlns='" + dirNSRSM + "'>" + inner + "</set>" }
	count := func(el *wire.Element) string {
		set := el.Child("query", dirNSSearch).Child("set", dirNSRSM)
		if set == nil {
			return "no set"
		}
		index := ""
		if f := set.Child("first", dirNSRSM); f != nil {
			index = "@" + f.AttrValue("index") + ":"
		}
		return index + set.ChildText("first", dirNSRSM) + ".." + set.ChildText("last", dirNSRSM) + "/" + set.ChildText("count", dirNSRSM)
	}
	d := s.Domain
	tests := []struct {
		name      string
		content   string
		want      []string
		wantCount string
	}{
		{"bounded by max_results, counted", dirForm(), []string{"alice", "bob", "carol"}, "@0:alice@" + d + "..carol@" + d + "/4"},
		{"the client's max", dirForm() + rsm("<max>2</max>"), []string{"alice", "bob"}, "@0:alice@" + d + "..bob@" + d + "/4"},
		// XEP-0059 §2.1: the count is the whole set's, the index the
		// first item's place in it.
		{"the next page", dirForm() + rsm("<max>2</max><after>bob@"+d+"</after>"), []string{"carol", "dave"}, "@2:carol@" + d + "..dave@" + d + "/4"},
		{"after a name between", dirForm() + rsm("<max>1</max><after>bz@"+d+"</after>"), []string{"carol"}, "@2:carol@" + d + "..carol@" + d + "/4"},
		{"after the last", dirForm() + rsm("<after>dave@"+d+"</after>"), nil, "../4"},
		{"the count alone", "<last>e</last>" + rsm("<max>0</max>"), nil, "../2"},
		{"a legacy search pages too", "<first>b</first>" + rsm("<max>1</max>"), []string{"bob"}, "@0:bob@" + d + "..bob@" + d + "/1"},
		{"within the bound: no set", dirForm("{" + dirFields + "}user=o"), []string{"bob", "carol"}, "no set"},
		// XEP-0055 §2 and XEP-0059 §2.5: an empty <query/>, no set.
		{"no match, with a set", "<last>nobody</last>" + rsm("<max>5</max>"), nil, "no set"},
		{"no match, a form", dirForm("{" + dirFields + "}user=nobody"), nil, "no set"},
		{"instructions sent back are ignored", "<instructions>Fill in</instructions><nick>dee</nick>", []string{"dave"}, "no set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, el := dirSearch(t, a, tc.content)
			pepCheckResult(t, el)
			if !slices.Equal(got, tc.want) || count(el) != tc.wantCount {
				t.Fatalf("found %v with %s, want %v with %s: %s", got, count(el), tc.want, tc.wantCount, el)
			}
			if tc.want == nil && tc.wantCount == "no set" && len(el.Child("query", dirNSSearch).Children) != 0 {
				t.Fatalf("no match must be an empty <query/>: %s", el)
			}
		})
	}

	errs := []struct {
		name, content, typ, cond string
	}{
		{"unknown form field", dirForm("x-gender=male"), "modify", "bad-request"},
		{"unknown legacy field", "<gender>male</gender>", "modify", "bad-request"},
		{"another form type", "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>jabber:iq:register</value></field></x>", "modify", "bad-request"},
		{"a form that is not submitted", "<x xmlns='jabber:x:data' type='form'/>", "modify", "bad-request"},
		{"paging backwards", dirForm() + rsm("<before/>"), "cancel", "feature-not-implemented"},
		{"an index", dirForm() + rsm("<index>2</index>"), "cancel", "feature-not-implemented"},
		{"a negative max", dirForm() + rsm("<max>-1</max>"), "modify", "bad-request"},
		{"after another server's JID", dirForm() + rsm("<after>bob@example.org</after>"), "cancel", "item-not-found"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, el := dirSearch(t, a, tc.content)
			pepCheckError(t, el, tc.typ, tc.cond, "")
		})
	}
	// The session survives its errors.
	if got, _ := dirSearch(t, a, "<nick>dee</nick>"); !slices.Equal(got, []string{"dave"}) {
		t.Fatalf("after the errors: %v", got)
	}
}

func TestDirectorySearchOff(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Directory.Search = false }))
	alice := s.AddUser(t, "alice", prPassword)
	a := prLogin(t, s, alice, "pc")
	_, el := dirSearch(t, a, dirForm())
	pepCheckError(t, el, "cancel", "service-unavailable", "")
	// vCards still work.
	pepCheckResult(t, dirSetCard(t, a, dirCard("Alice", "", "", "", "", "")))
	if got := dirCardText(t, dirGetCard(t, a, ""), "FN"); got != "Alice" {
		t.Fatalf("FN = %q", got)
	}
}

// TestFederationVCardAndDirectory: a user of another server reads a local
// user's vCard (world-readable, XEP-0054 §3.2) and may not search the
// directory, which only the host's own users may (the search service is
// not offered to other servers' users: service-unavailable).
func TestFederationVCardAndDirectory(t *testing.T) {
	a, _, ac, bc := fedOnline(t)
	pepCheckResult(t, dirSetCard(t, ac, dirCard("Alice Liddell", "", "", "", "1234", "")))
	if got := dirCardText(t, dirGetCard(t, bc, "alice@"+a.Domain), "FN"); got != "Alice Liddell" {
		t.Fatalf("alice's FN read from b.test: %q", got)
	}
	pepCheckError(t, dirGetCard(t, bc, "nobody@"+a.Domain), "cancel", "service-unavailable", "")
	pepCheckError(t, pepIQ(t, bc, "<iq type='set' to='alice@%s'>%s</iq>", a.Domain, dirCard("Mallory", "", "", "", "", "")), "auth", "forbidden", "")
	el := pepIQ(t, bc, "<iq type='set' to='%s'><query xmlns='%s'><first>a</first></query></iq>", a.Domain, dirNSSearch)
	pepCheckError(t, el, "cancel", "service-unavailable", "")
}

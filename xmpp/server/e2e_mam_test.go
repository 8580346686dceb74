package server_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp/config"
	"switchboard/xmpp/server"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// End-to-end tests of the message archive over real sockets: XEP-0313
// Message Archive Management (urn:xmpp:mam:2) with XEP-0059 paging, the
// XEP-0359 stanza-ids the archive stamps, archiving preferences, the
// conversation list with unread counts that follow XEP-0333 displayed
// markers, the delete-conversation ad-hoc command (XEP-0050), offline
// storage and restarts. Retention is tested inside the package
// (mam_retention_test.go).
//
// Negative checks need no waiting: a session's stanzas are handled in
// order, and a message is archived (its id assigned, and every archive
// read flushes the writer first) and queued to its recipients before the
// next stanza of its sender is read. So once the sender's barrier (mtSync)
// is answered, its messages are in the archives and queued; a recipient's
// barrier answered after that returns all of them.
//
// Helpers are prefixed mt to stay clear of the other end-to-end files of
// this package.

const (
	mtPassword     = "pw"
	mtNS           = "urn:xmpp:mam:2"
	mtNSExt        = "urn:xmpp:mam:2#extended"
	mtNSRSM        = "http://jabber.org/protocol/rsm"
	mtNSData       = "jabber:x:data"
	mtNSSID        = "urn:xmpp:sid:0"
	mtNSForward    = "urn:xmpp:forward:0"
	mtNSDelay      = "urn:xmpp:delay"
	mtNSClient     = "jabber:client"
	mtNSStanzas    = "urn:ietf:params:xml:ns:xmpp-stanzas"
	mtNSConv       = "urn:switchboard:conversations:0"
	mtNSMarkers    = "urn:xmpp:chat-markers:0"
	mtNSCommands   = "http://jabber.org/protocol/commands"
	mtNSDiscoInfo  = "http://jabber.org/protocol/disco#info"
	mtNSDiscoItems = "http://jabber.org/protocol/disco#items"
	mtNSChatStates = "http://jabber.org/protocol/chatstates"
	mtNSHints      = "urn:xmpp:hints"
	mtNSXDataVal   = "http://jabber.org/protocol/xdata-validate"
	mtNodeDelete   = "urn:switchboard:mam:delete-conversation"

	// mtWait bounds every wait for something that must arrive.
	mtWait = 5 * time.Second
)

var mtSeq atomic.Uint64

// mtID returns a unique stanza id.
func mtID(prefix string) string { return prefix + strconv.FormatUint(mtSeq.Add(1), 10) }

// mtSend writes one stanza. The context is never done: mellium arms a
// goroutine per Send that, once the context is done, moves the write
// deadline and may fail a later write.
func mtSend(t testing.TB, c *servertest.Client, format string, args ...any) {
	t.Helper()
	xml := fmt.Sprintf(format, args...)
	if err := c.SendRaw(context.Background(), xml); err != nil {
		t.Fatalf("%s: send %s: %v", c.JID, xml, err)
	}
}

// mtExchange sends the IQ request iq, a format whose first verb is the id
// (args fill the others), and returns its answer and every element
// received before it.
func mtExchange(t testing.TB, c *servertest.Client, iq string, args ...any) (before []*wire.Element, res *wire.Element) {
	t.Helper()
	id := mtID("iq")
	mtSend(t, c, iq, append([]any{id}, args...)...)
	res = c.Next(t, mtWait, func(e *wire.Element) bool {
		if e.Name == "iq" && e.AttrValue("id") == id &&
			(e.AttrValue("type") == "result" || e.AttrValue("type") == "error") {
			return true
		}
		before = append(before, e)
		return false
	})
	return before, res
}

// mtResult sends an IQ request like mtExchange and returns its payload,
// failing unless the answer is a result.
func mtResult(t testing.TB, c *servertest.Client, iq string, args ...any) *wire.Element {
	t.Helper()
	_, res := mtExchange(t, c, iq, args...)
	if res.AttrValue("type") != "result" {
		t.Fatalf("%s: %s answered %s", c.JID, fmt.Sprintf(iq, append([]any{"…"}, args...)...), res)
	}
	return res.FirstChild()
}

// mtSync is a barrier: it pings the server and returns every element
// received before the answer.
func mtSync(t testing.TB, c *servertest.Client) []*wire.Element {
	t.Helper()
	before, res := mtExchange(t, c, "<iq type='get' id='%s' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	if res.AttrValue("type") != "result" {
		t.Fatalf("%s: barrier ping answered %s", c.JID, res)
	}
	return before
}

// mtLogin logs in a resource of user and sends its initial presence
// (priority 0). It returns the session and what arrived up to a barrier
// after the presence, the server's echo and stored offline messages
// included.
func mtLogin(t testing.TB, s *servertest.Server, user jid.JID, resource string) (*servertest.Client, []*wire.Element) {
	t.Helper()
	c := s.MustLogin(t, user, mtPassword, servertest.ClientOptions{Resource: resource})
	mtSend(t, c, "<presence/>")
	els := mtSync(t, c)
	if len(mtWhere(els, func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("from") == c.JID.String() && e.AttrValue("type") == ""
	})) == 0 {
		t.Fatalf("%s: no echo of its initial presence in %v", c.JID, els)
	}
	return c, els
}

// mtOnline is mtLogin for a session that expects nothing but the echo.
func mtOnline(t testing.TB, s *servertest.Server, user jid.JID, resource string) *servertest.Client {
	t.Helper()
	c, _ := mtLogin(t, s, user, resource)
	return c
}

// mtLogout closes the stream and waits for the server's closing tag,
// written after the session was unbound.
func mtLogout(t testing.TB, c *servertest.Client) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatalf("%s: close: %v", c.JID, err)
	}
	c.Closed(t, mtWait)
	c.Conn().Close()
}

// mtRestart shuts s down and starts a server with cfg on its data
// directory.
func mtRestart(t testing.TB, s *servertest.Server, cfg func(*config.Config)) *servertest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	c := servertest.Config(s.DataDir)
	if cfg != nil {
		cfg(&c)
	}
	return servertest.StartConfig(t, c)
}

// mtWhere returns the elements of els that match.
func mtWhere(els []*wire.Element, match func(*wire.Element) bool) []*wire.Element {
	var out []*wire.Element
	for _, e := range els {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// mtMessage sends a message of type typ ("" = none) to to with the inner
// XML and returns its id.
func mtMessage(t testing.TB, c *servertest.Client, typ, to, inner string) string {
	t.Helper()
	id := mtID("msg")
	attr := ""
	if typ != "" {
		attr = " type='" + typ + "'"
	}
	mtSend(t, c, "<message%s id='%s' to='%s'>%s</message>", attr, id, to, inner)
	return id
}

// mtChat sends a chat message with the body and returns its id.
func mtChat(t testing.TB, c *servertest.Client, to, body string) string {
	t.Helper()
	return mtMessage(t, c, "chat", to, "<body>"+body+"</body>")
}

// mtIsMessage matches the message with the id.
func mtIsMessage(id string) func(*wire.Element) bool {
	return func(e *wire.Element) bool { return e.Name == "message" && e.AttrValue("id") == id }
}

// mtReceive waits for the message with the id.
func mtReceive(t testing.TB, c *servertest.Client, id string) *wire.Element {
	t.Helper()
	return c.Next(t, mtWait, mtIsMessage(id))
}

// mtStanzaIDs returns the ids of el's XEP-0359 stanza-ids by by, compared
// as JIDs (as a client compares them).
func mtStanzaIDs(el *wire.Element, by string) []string {
	want := jid.MustParse(by)
	var out []string
	for _, c := range el.Children {
		if c.Name != "stanza-id" || c.Space != mtNSSID {
			continue
		}
		if j, err := jid.Parse(c.AttrValue("by")); err == nil && j.Equal(want) {
			out = append(out, c.AttrValue("id"))
		}
	}
	return out
}

// mtStanzaID returns the id of el's only stanza-id by by.
func mtStanzaID(t testing.TB, el *wire.Element, by string) string {
	t.Helper()
	ids := mtStanzaIDs(el, by)
	if len(ids) != 1 || ids[0] == "" {
		t.Fatalf("stanza-ids by %s: %q, want exactly one in %s", by, ids, el)
	}
	return ids[0]
}

// mtCommandError reports whether el is an error with the defined condition
// cond and the XEP-0050 §4.4 application condition app.
func mtCommandError(el *wire.Element, cond, app string) bool {
	e := el.Child("error", mtNSClient)
	return mtError(el) == cond && e.Child(app, mtNSCommands) != nil
}

// mtError returns the defined condition of an error stanza.
func mtError(el *wire.Element) string {
	if el.AttrValue("type") != "error" {
		return ""
	}
	e := el.Child("error", mtNSClient)
	if e == nil {
		return ""
	}
	for _, c := range e.Children {
		if c.Space == mtNSStanzas && c.Name != "text" {
			return c.Name
		}
	}
	return ""
}

// mtField renders a data form field with its values.
func mtField(name string, values ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<field var='%s'>", name)
	for _, v := range values {
		fmt.Fprintf(&b, "<value>%s</value>", v)
	}
	b.WriteString("</field>")
	return b.String()
}

// mtTime renders t as an XEP-0082 DateTime.
func mtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// mtQuery is an archive query (XEP-0313 §4).
type mtQuery struct {
	to       string   // the archive; "" = the user's own
	formType string   // FORM_TYPE; "" = urn:xmpp:mam:2
	fields   []string // mtField renderings; a form is sent only with fields
	rsm      string   // the content of the RSM <set/>; "" = no <set/>
	flip     bool     // <flip-page/>
}

func (q mtQuery) xml(iqID, queryID string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<iq type='set' id='%s'", iqID)
	if q.to != "" {
		fmt.Fprintf(&b, " to='%s'", q.to)
	}
	fmt.Fprintf(&b, "><query xmlns='%s' queryid='%s'>", mtNS, queryID)
	if len(q.fields) > 0 {
		ft := q.formType
		if ft == "" {
			ft = mtNS
		}
		fmt.Fprintf(&b, "<x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value></field>%s</x>",
			mtNSData, ft, strings.Join(q.fields, ""))
	}
	if q.rsm != "" {
		fmt.Fprintf(&b, "<set xmlns='%s'>%s</set>", mtNSRSM, q.rsm)
	}
	if q.flip {
		b.WriteString("<flip-page/>")
	}
	b.WriteString("</query></iq>")
	return b.String()
}

// mtPage is the answer to a query: the results in the order they arrived
// and the <fin/>.
type mtPage struct {
	results  []*wire.Element // the <result/> elements
	ids      []string        // their archive ids
	complete bool
	first    string
	last     string
	count    string // "" if absent
	index    string // <first index='…'>, "" if absent
	hasFirst bool
}

// forwarded returns the archived message of result i.
func (p mtPage) forwarded(i int) *wire.Element {
	return p.results[i].Child("forwarded", mtNSForward).Child("message", mtNSClient)
}

// bodies returns the bodies of the archived messages.
func (p mtPage) bodies() []string {
	var out []string
	for i := range p.results {
		out = append(out, p.forwarded(i).ChildText("body", mtNSClient))
	}
	return out
}

// messageIDs returns the stanza ids ('id' attributes) of the archived
// messages.
func (p mtPage) messageIDs() []string {
	var out []string
	for i := range p.results {
		out = append(out, p.forwarded(i).AttrValue("id"))
	}
	return out
}

// stamps returns the delay stamps of the results.
func (p mtPage) stamps() []string {
	var out []string
	for _, r := range p.results {
		out = append(out, r.Child("forwarded", mtNSForward).Child("delay", mtNSDelay).AttrValue("stamp"))
	}
	return out
}

// mtDo sends q and returns the IQ answer with the results that arrived
// before it, checking each result's envelope (XEP-0313 §4.2): a message
// from the archive to the querying resource, the queryid, a <forwarded/>
// with a <delay/> and the archived message.
func mtDo(t testing.TB, c *servertest.Client, q mtQuery) (*wire.Element, mtPage) {
	t.Helper()
	iqID, queryID := mtID("mam"), mtID("q")
	mtSend(t, c, "%s", q.xml(iqID, queryID))
	var page mtPage
	archive := c.JID.Bare().String()
	if q.to != "" {
		archive = q.to
	}
	res := c.Next(t, mtWait, func(e *wire.Element) bool {
		if e.Name == "iq" && e.AttrValue("id") == iqID {
			return true
		}
		r := e.Child("result", mtNS)
		if e.Name != "message" || r == nil {
			return false
		}
		if got := r.AttrValue("queryid"); got != queryID {
			t.Errorf("%s: result of query %q while waiting for %q: %s", c.JID, got, queryID, e)
			return false
		}
		if e.AttrValue("from") != archive || e.AttrValue("to") != c.JID.String() {
			t.Errorf("%s: result from %q to %q, want from %s to %s", c.JID, e.AttrValue("from"), e.AttrValue("to"), archive, c.JID)
		}
		fwd := r.Child("forwarded", mtNSForward)
		switch {
		case r.AttrValue("id") == "":
			t.Errorf("%s: result without id: %s", c.JID, e)
		case fwd == nil || fwd.Child("message", mtNSClient) == nil:
			t.Errorf("%s: result without a forwarded message: %s", c.JID, e)
		case fwd.Child("delay", mtNSDelay) == nil:
			t.Errorf("%s: result without delay: %s", c.JID, e)
		default:
			if _, err := time.Parse(time.RFC3339Nano, fwd.Child("delay", mtNSDelay).AttrValue("stamp")); err != nil {
				t.Errorf("%s: result delay stamp: %v", c.JID, err)
			}
			page.results = append(page.results, r)
			page.ids = append(page.ids, r.AttrValue("id"))
		}
		return false
	})
	if res.AttrValue("type") == "result" {
		fin := res.Child("fin", mtNS)
		if fin == nil {
			t.Fatalf("%s: query answered without <fin/>: %s", c.JID, res)
		}
		page.complete = fin.AttrValue("complete") == "true"
		set := fin.Child("set", mtNSRSM)
		if set == nil {
			t.Fatalf("%s: <fin/> without RSM <set/>: %s", c.JID, res)
		}
		if f := set.Child("first", mtNSRSM); f != nil {
			page.first, page.hasFirst = f.Text, true
			page.index = f.AttrValue("index")
		}
		page.last = set.ChildText("last", mtNSRSM)
		if cnt := set.Child("count", mtNSRSM); cnt != nil {
			page.count = cnt.Text
		}
	}
	return res, page
}

// mtRun runs q, failing unless it succeeds.
func mtRun(t testing.TB, c *servertest.Client, q mtQuery) mtPage {
	t.Helper()
	res, page := mtDo(t, c, q)
	if res.AttrValue("type") != "result" {
		t.Fatalf("%s: query %s answered %s", c.JID, q.xml("…", "…"), res)
	}
	return page
}

// mtCheckPage compares a page with the expected ids, in the order they
// should arrive (reversed for a flipped page), and the complete flag.
// <first/> and <last/> name the oldest and newest result whatever the
// order of transmission (XEP-0313 §4.3.2).
func mtCheckPage(t testing.TB, what string, p mtPage, want []string, flipped, complete bool) {
	t.Helper()
	if !slices.Equal(p.ids, want) {
		t.Errorf("%s: ids %v, want %v", what, p.ids, want)
	}
	if p.complete != complete {
		t.Errorf("%s: complete = %t, want %t", what, p.complete, complete)
	}
	if len(want) == 0 {
		if p.hasFirst || p.last != "" {
			t.Errorf("%s: empty page with first %q and last %q", what, p.first, p.last)
		}
		return
	}
	chron := want
	if flipped {
		chron = slices.Clone(want)
		slices.Reverse(chron)
	}
	if p.first != chron[0] || p.last != chron[len(chron)-1] {
		t.Errorf("%s: first %q, last %q, want %q, %q", what, p.first, p.last, chron[0], chron[len(chron)-1])
	}
}

// mtConv is an entry of the conversation list.
type mtConv struct {
	unread         int
	lastID, body   string
	lastTime, with string
	typ, lastBy    string // type='groupchat' and last-by of a room
	more           bool   // unread-more='true'
}

// mtConversations fetches the user's conversation list, newest first.
func mtConversations(t testing.TB, c *servertest.Client) []mtConv {
	t.Helper()
	q := mtResult(t, c, "<iq type='get' id='%s'><conversations xmlns='"+mtNSConv+"'/></iq>")
	if q == nil || q.Name != "conversations" || q.Space != mtNSConv {
		t.Fatalf("%s: conversation list answered %v", c.JID, q)
	}
	var out []mtConv
	for _, e := range q.Children {
		if e.Name != "conversation" || e.Space != mtNSConv {
			continue
		}
		n, err := strconv.Atoi(e.AttrValue("unread"))
		if err != nil {
			t.Fatalf("%s: conversation with bad unread count: %s", c.JID, e)
		}
		cv := mtConv{with: e.AttrValue("with"), unread: n, lastID: e.AttrValue("last-id"), lastTime: e.AttrValue("last-time"),
			typ: e.AttrValue("type"), lastBy: e.AttrValue("last-by"), more: e.AttrValue("unread-more") == "true"}
		if fwd := e.Child("forwarded", mtNSForward); fwd != nil {
			cv.body = fwd.Child("message", mtNSClient).ChildText("body", mtNSClient)
		}
		out = append(out, cv)
	}
	return out
}

// mtUnread returns the unread counts by contact.
func mtUnread(t testing.TB, c *servertest.Client) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, cv := range mtConversations(t, c) {
		out[cv.with] = cv.unread
	}
	return out
}

// mtPrefs is a preference set (XEP-0313 §6 / XEP-0441).
type mtPrefs struct {
	def           string
	always, never []string
}

func (p mtPrefs) xml() string {
	list := func(name string, jids []string) string {
		var b strings.Builder
		b.WriteString("<" + name + ">")
		for _, j := range jids {
			b.WriteString("<jid>" + j + "</jid>")
		}
		return b.String() + "</" + name + ">"
	}
	return fmt.Sprintf("<prefs xmlns='%s' default='%s'>%s%s</prefs>", mtNS, p.def, list("always", p.always), list("never", p.never))
}

// mtParsePrefs reads a <prefs/> element.
func mtParsePrefs(t testing.TB, e *wire.Element) mtPrefs {
	t.Helper()
	if e == nil || e.Name != "prefs" || e.Space != mtNS {
		t.Fatalf("not archiving preferences: %v", e)
	}
	p := mtPrefs{def: e.AttrValue("default")}
	for _, l := range []struct {
		name string
		dst  *[]string
	}{{"always", &p.always}, {"never", &p.never}} {
		if le := e.Child(l.name, mtNS); le != nil {
			for _, j := range le.Children {
				*l.dst = append(*l.dst, j.Text)
			}
		}
	}
	return p
}

func (p mtPrefs) equal(o mtPrefs) bool {
	return p.def == o.def && slices.Equal(p.always, o.always) && slices.Equal(p.never, o.never)
}

// mtGetPrefs fetches the user's preferences.
func mtGetPrefs(t testing.TB, c *servertest.Client) mtPrefs {
	t.Helper()
	return mtParsePrefs(t, mtResult(t, c, "<iq type='get' id='%s'><prefs xmlns='"+mtNS+"'/></iq>"))
}

// mtSetPrefs sets the user's preferences and checks the answer echoes
// them.
func mtSetPrefs(t testing.TB, c *servertest.Client, p mtPrefs) {
	t.Helper()
	got := mtParsePrefs(t, mtResult(t, c, "<iq type='set' id='%s'>"+p.xml()+"</iq>"))
	if !got.equal(p) {
		t.Fatalf("%s: prefs set answered %+v, want %+v", c.JID, got, p)
	}
}

// TestMAMArchiveBothSides covers XEP-0313 §3 and §5.1.1 with XEP-0359 §3:
// a chat or normal message with content is archived once as outgoing in
// the sender's archive and once as incoming in the recipient's; the
// recipient's copy carries the stanza-id of its archive, the id its
// archive answers with; a stanza-id that claims to be by the recipient's
// archive is removed, others are kept; chat states, messages with a
// no-store hint, headlines and errors are not archived.
func TestMAMArchiveBothSides(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	a := mtOnline(t, s, alice, "desk")
	b := mtOnline(t, s, bob, "phone")
	sid := func(by, id string) string {
		return fmt.Sprintf("<stanza-id xmlns='%s' by='%s' id='%s'/>", mtNSSID, by, id)
	}
	cases := []struct {
		name      string
		typ       string // message type; "" = none
		to        string // "" = bob's bare JID
		inner     string
		archived  bool              // in both archives
		delivered bool              // bob receives it
		others    map[string]string // stanza-ids by others that bob's copy keeps
	}{
		{name: "chat", typ: "chat", inner: "<body>hello</body>", archived: true, delivered: true},
		{name: "normal", typ: "normal", inner: "<body>a letter</body>", archived: true, delivered: true},
		{name: "no type", inner: "<body>plain</body>", archived: true, delivered: true},
		{name: "to the full JID", typ: "chat", to: b.JID.String(), inner: "<body>just you</body>", archived: true, delivered: true},
		{name: "store hint without body", typ: "chat", inner: "<store xmlns='" + mtNSHints + "'/><x xmlns='urn:example:payload'/>", archived: true, delivered: true},
		{name: "spoofed stanza-id", typ: "chat", inner: "<body>trust me</body>" + sid("bob@localhost", "spoofed-1"), archived: true, delivered: true},
		{name: "spoofed stanza-id in another case", typ: "chat", inner: "<body>trust me</body>" + sid("Bob@LocalHost", "spoofed-4"), archived: true, delivered: true},
		{name: "spoofed stanza-id to the full JID", typ: "chat", to: b.JID.String(), inner: "<body>trust me</body>" + sid("bob@localhost", "spoofed-2"), archived: true, delivered: true},
		{name: "stanza-id of another archive", typ: "chat", inner: "<body>mine</body>" + sid("alice@localhost", "alice-1"), archived: true, delivered: true,
			others: map[string]string{"alice@localhost": "alice-1"}},
		{name: "chat state only", typ: "chat", inner: "<composing xmlns='" + mtNSChatStates + "'/>", delivered: true},
		{name: "spoofed stanza-id on a chat state", typ: "chat", inner: "<paused xmlns='" + mtNSChatStates + "'/>" + sid("bob@localhost", "spoofed-3"), delivered: true},
		{name: "no-store hint", typ: "chat", inner: "<body>off the record</body><no-store xmlns='" + mtNSHints + "'/>", delivered: true},
		{name: "no-permanent-store hint", typ: "chat", inner: "<body>ephemeral</body><no-permanent-store xmlns='" + mtNSHints + "'/>", delivered: true},
		{name: "headline", typ: "headline", inner: "<body>news</body>", delivered: true},
		{name: "error", typ: "error", inner: "<body>oops</body><error type='cancel'><undefined-condition xmlns='" + mtNSStanzas + "'/></error>"},
	}
	start := time.Now().Truncate(time.Microsecond)
	var wantIDs []string           // message ids of the archived messages, in order
	bobSIDs := map[string]string{} // stanza-id on bob's copy by message id
	for _, tc := range cases {
		to := tc.to
		if to == "" {
			to = bob.String()
		}
		id := mtMessage(t, a, tc.typ, to, tc.inner)
		if tc.archived {
			wantIDs = append(wantIDs, id)
		}
		if !tc.delivered {
			continue
		}
		el := mtReceive(t, b, id)
		switch {
		case tc.archived:
			got := mtStanzaID(t, el, "bob@localhost")
			if strings.HasPrefix(got, "spoofed") {
				t.Errorf("%s: bob's copy kept the spoofed stanza-id: %s", tc.name, el)
			}
			bobSIDs[id] = got
		default:
			if ids := mtStanzaIDs(el, "bob@localhost"); len(ids) != 0 {
				t.Errorf("%s: bob's copy of a message that is not archived has stanza-ids %q: %s", tc.name, ids, el)
			}
		}
		for by, want := range tc.others {
			if got := mtStanzaIDs(el, by); !slices.Equal(got, []string{want}) {
				t.Errorf("%s: stanza-ids by %s = %q, want [%s]: %s", tc.name, by, got, want, el)
			}
		}
	}
	mtSync(t, a)
	end := time.Now()

	check := func(who string, c *servertest.Client) mtPage {
		t.Helper()
		p := mtRun(t, c, mtQuery{})
		if !slices.Equal(p.messageIDs(), wantIDs) {
			t.Fatalf("%s's archive holds messages %v, want %v", who, p.messageIDs(), wantIDs)
		}
		if !p.complete {
			t.Errorf("%s's archive: one page without complete='true'", who)
		}
		for i, st := range p.stamps() {
			ts, _ := time.Parse(time.RFC3339Nano, st)
			if ts.Before(start) || ts.After(end) {
				t.Errorf("%s's archive: message %s stamped %s, not within the test's %s .. %s", who, wantIDs[i], st, start, end)
			}
			fwd := p.forwarded(i)
			if fwd.AttrValue("from") != a.JID.String() {
				t.Errorf("%s's archive: message %s from %q, want %s", who, wantIDs[i], fwd.AttrValue("from"), a.JID)
			}
			if ids := mtStanzaIDs(fwd, "bob@localhost"); who == "bob" && len(ids) != 0 {
				t.Errorf("%s's archive: message %s carries stanza-ids by bob %q: %s", who, wantIDs[i], ids, fwd)
			}
		}
		return p
	}
	check("alice", a)
	pb := check("bob", b)
	for i, id := range wantIDs {
		if pb.ids[i] != bobSIDs[id] {
			t.Errorf("message %s: bob's archive id %q, but his copy carried stanza-id %q", id, pb.ids[i], bobSIDs[id])
		}
	}
	// Nothing else reached bob, alice got no stanza-ids for what she sent.
	for _, el := range mtSync(t, b) {
		if el.Name == "message" {
			t.Errorf("bob: unexpected %s", el)
		}
	}
}

// TestMAMQueryAfterDelivery: a client that got a message with its
// stanza-id can use that id in a query at once (XEP-0313 §4.1.3 and
// §4.3.1), although the record is committed in batches after delivery.
func TestMAMQueryAfterDelivery(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	a := mtOnline(t, s, alice, "desk")
	b := mtOnline(t, s, bob, "phone")
	for i := range 20 {
		body := "catch up " + strconv.Itoa(i)
		sid := mtStanzaID(t, mtReceive(t, b, mtChat(t, a, bob.String(), body)), "bob@localhost")
		switch i % 3 {
		case 0:
			p := mtRun(t, b, mtQuery{rsm: "<after>" + sid + "</after>"})
			mtCheckPage(t, "after the new id", p, nil, false, true)
		case 1:
			p := mtRun(t, b, mtQuery{fields: []string{mtField("ids", sid)}})
			mtCheckPage(t, "the new id", p, []string{sid}, false, true)
			if got := p.bodies(); !slices.Equal(got, []string{body}) {
				t.Errorf("the new id: bodies %q, want [%s]", got, body)
			}
		case 2:
			p := mtRun(t, b, mtQuery{fields: []string{mtField("after-id", sid)}})
			mtCheckPage(t, "after-id the new id", p, nil, false, true)
		}
	}
}

// TestMAMQueryTimeRanges covers the 'start', 'end' and 'with' filters
// (XEP-0313 §4.1.1, §4.1.2) over the wire, with times taken between
// messages: both bounds are inclusive, time zones and whole seconds are
// understood.
func TestMAMQueryTimeRanges(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	carol := s.AddUser(t, "carol", mtPassword)
	a := mtOnline(t, s, alice, "desk")
	// bob and carol stay offline: alice's archive does not depend on them.
	send := func(to jid.JID, body string) {
		mtChat(t, a, to.String(), body)
		mtSync(t, a)
	}
	send(bob, "m0")
	t0 := time.Now()
	send(bob, "m1")
	t1 := time.Now()
	send(carol, "m2")
	t2 := time.Now()
	send(bob, "m3")

	all := mtRun(t, a, mtQuery{})
	if got := all.bodies(); !slices.Equal(got, []string{"m0", "m1", "m2", "m3"}) {
		t.Fatalf("archive holds %q", got)
	}
	stamp := all.stamps()
	zone := time.FixedZone("IST", 5*3600+1800)
	cases := []struct {
		name   string
		fields []string
		want   []string
	}{
		{"all", nil, []string{"m0", "m1", "m2", "m3"}},
		{"start", []string{mtField("start", mtTime(t0))}, []string{"m1", "m2", "m3"}},
		{"end", []string{mtField("end", mtTime(t0))}, []string{"m0"}},
		{"start and end", []string{mtField("start", mtTime(t0)), mtField("end", mtTime(t2))}, []string{"m1", "m2"}},
		{"between two messages", []string{mtField("start", mtTime(t1)), mtField("end", mtTime(t2))}, []string{"m2"}},
		{"with", []string{mtField("with", bob.String())}, []string{"m0", "m1", "m3"}},
		{"with a full JID's account", []string{mtField("with", carol.String()+"/laptop")}, []string{"m2"}},
		{"with and start", []string{mtField("with", bob.String()), mtField("start", mtTime(t0))}, []string{"m1", "m3"}},
		{"with and end", []string{mtField("with", bob.String()), mtField("end", mtTime(t1))}, []string{"m0", "m1"}},
		{"start is inclusive", []string{mtField("start", stamp[1])}, []string{"m1", "m2", "m3"}},
		{"end is inclusive", []string{mtField("end", stamp[2])}, []string{"m0", "m1", "m2"}},
		{"one instant", []string{mtField("start", stamp[2]), mtField("end", stamp[2])}, []string{"m2"}},
		{"time zone offset", []string{mtField("start", t0.In(zone).Format(time.RFC3339Nano))}, []string{"m1", "m2", "m3"}},
		{"whole seconds", []string{mtField("start", t0.Add(-time.Hour).UTC().Format(time.RFC3339)),
			mtField("end", t2.Add(time.Hour).UTC().Format(time.RFC3339))}, []string{"m0", "m1", "m2", "m3"}},
		{"in the future", []string{mtField("start", mtTime(time.Now().Add(time.Hour)))}, nil},
		{"start after end", []string{mtField("start", mtTime(t2)), mtField("end", mtTime(t0))}, nil},
		{"nobody", []string{mtField("with", "dave@localhost")}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mtRun(t, a, mtQuery{fields: tc.fields})
			if got := p.bodies(); !slices.Equal(got, tc.want) {
				t.Errorf("bodies %q, want %q", got, tc.want)
			}
			if !p.complete {
				t.Error("complete is not true")
			}
		})
	}
}

// mtSeedRecord is a record archived before the server starts.
type mtSeedRecord struct {
	ago       time.Duration // its age when the server starts
	with      string
	dir       store.Direction
	body      string
	messageID string
}

// mtSeed archives recs (oldest first) in alice@localhost's archive in the
// data directory of cfg, each at its time, and returns the time the
// server "starts" and the records' ids. It runs the store's writer in a
// synctest bubble, whose fake clock starts at 2000-01-01 00:00 UTC and
// advances only while every goroutine of the bubble waits: each record
// is archived when that clock shows its time, as if a server had received
// the message then, with the same id and time a server would give it.
func mtSeed(t *testing.T, cfg config.Config, recs []mtSeedRecord) (now time.Time, ids []uint64) {
	t.Helper()
	ids = make([]uint64, len(recs))
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db, err := store.Open(ctx, cfg.DBPath(), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		w := db.Archive().NewWriter(store.WriterOptions{})
		w.Start(ctx)
		now = time.Now().Add(40 * 24 * time.Hour)
		for i, r := range recs {
			time.Sleep(time.Until(now.Add(-r.ago)))
			from, to := r.with+"/res", "alice@localhost"
			if r.dir == store.DirOut {
				from, to = "alice@localhost/desk", r.with
			}
			stanza := fmt.Sprintf("<message from='%s' to='%s' type='chat' id='%s'><body>%s</body></message>", from, to, r.messageID, r.body)
			ids[i], err = w.Append(store.ArchiveRecord{Archive: "alice@localhost", With: r.with, Direction: r.dir, Stanza: []byte(stanza)}, nil)
			if err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Until(now))
		if err := w.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	})
	return now, ids
}

// TestMAMQueryHistory runs the queries of a client's "yesterday / last 7
// days / last 30 days / everything" views over an archive that spans
// weeks (records made at their time by the store's writer, see mtSeed):
// the time filters with and without 'with', paging inside a time range,
// counts, delay stamps that are the archiving times, and the
// conversation list the writer kept.
func TestMAMQueryHistory(t *testing.T) {
	const day = 24 * time.Hour
	bob, carol := "bob@localhost", "carol@localhost"
	recs := []mtSeedRecord{
		{35 * day, bob, store.DirIn, "35 days ago", "h0"},
		{20 * day, carol, store.DirOut, "20 days ago", "h1"},
		{6 * day, bob, store.DirIn, "6 days ago", "h2"},
		{3 * day, carol, store.DirIn, "3 days ago", "h3"},
		{30 * time.Hour, bob, store.DirOut, "30 hours ago", "h4"},
		{12 * time.Hour, bob, store.DirIn, "12 hours ago", "h5"},
		{time.Hour, carol, store.DirIn, "an hour ago", "h6"},
	}
	cfg := servertest.Config(t.TempDir())
	now, ids := mtSeed(t, cfg, recs)
	s := servertest.StartConfig(t, cfg)
	alice := s.AddUser(t, "alice", mtPassword)
	a := mtOnline(t, s, alice, "desk")

	codec, err := server.ArchiveIDs(cfg.Server.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	idsOf := func(is ...int) []string {
		var out []string
		for _, i := range is {
			out = append(out, codec.Format(ids[i]))
		}
		return out
	}
	since := func(d time.Duration) string { return mtField("start", mtTime(now.Add(-d))) }
	cases := []struct {
		name     string
		q        mtQuery
		want     []int
		complete bool
		count    string // on every answer (XEP-0059 §2.2)
		index    string // <first index='…'> of a non-empty page
	}{
		{name: "yesterday", q: mtQuery{fields: []string{since(day)}}, want: []int{5, 6}, complete: true, count: "2", index: "0"},
		{name: "last 7 days", q: mtQuery{fields: []string{since(7 * day)}}, want: []int{2, 3, 4, 5, 6}, complete: true, count: "5", index: "0"},
		{name: "last 30 days", q: mtQuery{fields: []string{since(30 * day)}}, want: []int{1, 2, 3, 4, 5, 6}, complete: true, count: "6", index: "0"},
		{name: "all", q: mtQuery{}, want: []int{0, 1, 2, 3, 4, 5, 6}, complete: true, count: "7", index: "0"},
		{name: "yesterday with bob", q: mtQuery{fields: []string{since(day), mtField("with", bob)}}, want: []int{5}, complete: true, count: "1", index: "0"},
		{name: "last 7 days with carol", q: mtQuery{fields: []string{since(7 * day), mtField("with", carol)}}, want: []int{3, 6}, complete: true, count: "2", index: "0"},
		{name: "all with bob", q: mtQuery{fields: []string{mtField("with", bob)}}, want: []int{0, 2, 4, 5}, complete: true, count: "4", index: "0"},
		{name: "last 7 days before yesterday", q: mtQuery{fields: []string{since(7 * day), mtField("end", mtTime(now.Add(-day)))}}, want: []int{2, 3, 4}, complete: true, count: "3", index: "0"},
		{name: "last 30 days, newest page", q: mtQuery{fields: []string{since(30 * day)}, rsm: "<max>2</max><before/>"}, want: []int{5, 6}, count: "6", index: "4"},
		{name: "last 30 days, oldest page", q: mtQuery{fields: []string{since(30 * day)}, rsm: "<max>2</max>"}, want: []int{1, 2}, count: "6", index: "0"},
		{name: "last 30 days, next page", q: mtQuery{fields: []string{since(30 * day)}, rsm: "<max>2</max><after>" + idsOf(2)[0] + "</after>"}, want: []int{3, 4}, count: "6", index: "2"},
		{name: "last 30 days, page at index 3", q: mtQuery{fields: []string{since(30 * day)}, rsm: "<max>2</max><index>3</index>"}, want: []int{4, 5}, count: "6", index: "3"},
		{name: "all with bob, page at index 2", q: mtQuery{fields: []string{mtField("with", bob)}, rsm: "<max>2</max><index>2</index>"}, want: []int{4, 5}, complete: true, count: "4", index: "2"},
		{name: "last 30 days, count", q: mtQuery{fields: []string{since(30 * day)}, rsm: "<max>0</max>"}, count: "6"},
		{name: "yesterday with bob, count", q: mtQuery{fields: []string{since(day), mtField("with", bob)}, rsm: "<max>0</max>"}, count: "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mtRun(t, a, tc.q)
			mtCheckPage(t, tc.name, p, idsOf(tc.want...), false, tc.complete)
			if p.count != tc.count || p.index != tc.index {
				t.Errorf("count %q, index %q; want %q, %q", p.count, p.index, tc.count, tc.index)
			}
			for i, r := range tc.want {
				fwd := p.forwarded(i)
				if got := fwd.ChildText("body", mtNSClient); got != recs[r].body || fwd.AttrValue("id") != recs[r].messageID {
					t.Errorf("result %d: message %s %q, want %s %q", i, fwd.AttrValue("id"), got, recs[r].messageID, recs[r].body)
				}
				want := now.Add(-recs[r].ago).UTC()
				if got, err := time.Parse(time.RFC3339Nano, p.stamps()[i]); err != nil || !got.Equal(want) {
					t.Errorf("result %d: delay stamp %s, want %s", i, p.stamps()[i], mtTime(want))
				}
			}
		})
	}

	// The conversation list the writer kept: newest first; an outgoing
	// message resets the unread count.
	got := mtConversations(t, a)
	want := []mtConv{
		{with: carol, unread: 2, lastID: idsOf(6)[0], body: "an hour ago", lastTime: now.Add(-time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z")},
		{with: bob, unread: 1, lastID: idsOf(5)[0], body: "12 hours ago", lastTime: now.Add(-12 * time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z")},
	}
	if !slices.Equal(got, want) {
		t.Errorf("conversations\n\t%+v, want\n\t%+v", got, want)
	}

	// A message archived now gets a newer id and lands in "yesterday".
	mtChat(t, a, bob, "today")
	mtSync(t, a)
	p := mtRun(t, a, mtQuery{fields: []string{since(day)}})
	if len(p.ids) != 3 || p.bodies()[2] != "today" {
		t.Fatalf("yesterday after a new message: %q", p.bodies())
	}
	if n, ok := codec.Parse(p.ids[2]); !ok || n <= ids[len(ids)-1] {
		t.Errorf("new id %s is not above the newest seeded id %d", p.ids[2], ids[len(ids)-1])
	}
}

// TestMAMPaging pages through 25 messages with XEP-0059: forwards with
// <after/>, backwards with <before/> (empty for the last page), flipped
// pages (XEP-0313 §4.3.2), counts with max=0, the extended fields
// after-id, before-id and ids (§4.1.3), and the errors of bad queries.
func TestMAMPaging(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	s.AddUser(t, "carol", mtPassword)
	a := mtOnline(t, s, alice, "desk")
	var bodies []string
	for i := range 25 {
		bodies = append(bodies, fmt.Sprintf("m%02d", i))
		mtChat(t, a, bob.String(), bodies[i])
	}
	mtSync(t, a)
	all := mtRun(t, a, mtQuery{})
	if got := all.bodies(); !slices.Equal(got, bodies) {
		t.Fatalf("archive holds %q, want %q", got, bodies)
	}
	ids := all.ids
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("id %s twice in %v", id, ids)
		}
		seen[id] = true
	}
	r := func(from, to int) []string { return slices.Clone(ids[from:to]) }
	rev := func(s []string) []string { s = slices.Clone(s); slices.Reverse(s); return s }

	t.Run("forwards", func(t *testing.T) {
		var got []string
		after := ""
		for page := 0; ; page++ {
			rsm := "<max>10</max>"
			if after != "" {
				rsm += "<after>" + after + "</after>"
			}
			p := mtRun(t, a, mtQuery{rsm: rsm})
			last := page == 2
			mtCheckPage(t, fmt.Sprintf("page %d", page), p, r(page*10, min(page*10+10, 25)), false, last)
			// XEP-0059 §2.2: the count and the first item's index on
			// every page.
			if p.count != "25" || p.index != strconv.Itoa(page*10) {
				t.Errorf("page %d: count %q, index %q; want 25, %d", page, p.count, p.index, page*10)
			}
			got = append(got, p.ids...)
			if p.complete || page > 2 {
				break
			}
			after = p.last
		}
		if !slices.Equal(got, ids) {
			t.Errorf("paged through %v, want %v", got, ids)
		}
	})
	t.Run("backwards", func(t *testing.T) {
		var got []string
		before := ""
		for page := 0; ; page++ {
			p := mtRun(t, a, mtQuery{rsm: "<max>10</max><before>" + before + "</before>"})
			hi := 25 - page*10
			mtCheckPage(t, fmt.Sprintf("page %d", page), p, r(max(hi-10, 0), hi), false, page == 2)
			if p.count != "25" || p.index != strconv.Itoa(max(hi-10, 0)) {
				t.Errorf("page %d: count %q, index %q; want 25, %d", page, p.count, p.index, max(hi-10, 0))
			}
			got = append(slices.Clone(p.ids), got...)
			if p.complete || page > 2 {
				break
			}
			before = p.first
		}
		if !slices.Equal(got, ids) {
			t.Errorf("paged through %v, want %v", got, ids)
		}
	})

	cases := []struct {
		name     string
		q        mtQuery
		want     []string
		flipped  bool
		complete bool
		count    string // <count/>: present on every answer
		index    string // <first index='…'>: on every non-empty page
	}{
		{name: "flipped first page", q: mtQuery{rsm: "<max>10</max>", flip: true}, want: rev(r(0, 10)), flipped: true, count: "25", index: "0"},
		{name: "flipped last page", q: mtQuery{rsm: "<max>10</max><before/>", flip: true}, want: rev(r(15, 25)), flipped: true, count: "25", index: "15"},
		{name: "flipped complete page", q: mtQuery{rsm: "<max>10</max><after>" + ids[19] + "</after>", flip: true}, want: rev(r(20, 25)), flipped: true, complete: true, count: "25", index: "20"},
		{name: "after the newest", q: mtQuery{rsm: "<after>" + ids[24] + "</after>"}, complete: true, count: "25"},
		{name: "before the oldest", q: mtQuery{rsm: "<before>" + ids[0] + "</before>"}, complete: true, count: "25"},
		{name: "count", q: mtQuery{rsm: "<max>0</max>"}, count: "25"},
		{name: "count with bob", q: mtQuery{fields: []string{mtField("with", bob.String())}, rsm: "<max>0</max>"}, count: "25"},
		{name: "count with carol", q: mtQuery{fields: []string{mtField("with", "carol@localhost")}, rsm: "<max>0</max>"}, complete: true, count: "0"},
		{name: "count after-id", q: mtQuery{fields: []string{mtField("after-id", ids[19])}, rsm: "<max>0</max>"}, count: "5"},
		{name: "count without max=0", q: mtQuery{rsm: "<max>5</max>"}, want: r(0, 5), count: "25", index: "0"},
		{name: "count of a default page", q: mtQuery{fields: []string{mtField("with", bob.String())}}, want: r(0, 25), complete: true, count: "25", index: "0"},
		{name: "after-id", q: mtQuery{fields: []string{mtField("after-id", ids[19])}}, want: r(20, 25), complete: true, count: "5", index: "0"},
		{name: "before-id", q: mtQuery{fields: []string{mtField("before-id", ids[3])}}, want: r(0, 3), complete: true, count: "3", index: "0"},
		{name: "between after-id and before-id", q: mtQuery{fields: []string{mtField("after-id", ids[4]), mtField("before-id", ids[8])}}, want: r(5, 8), complete: true, count: "3", index: "0"},
		{name: "after-id with max", q: mtQuery{fields: []string{mtField("after-id", ids[4])}, rsm: "<max>3</max>"}, want: r(5, 8), count: "20", index: "0"},
		// XEP-0313 §9: before-id, unlike RSM <before/>, does not page backwards.
		{name: "before-id with max", q: mtQuery{fields: []string{mtField("before-id", ids[10])}, rsm: "<max>3</max>"}, want: r(0, 3), count: "10", index: "0"},
		{name: "before-id, last page", q: mtQuery{fields: []string{mtField("before-id", ids[10])}, rsm: "<max>3</max><before/>"}, want: r(7, 10), count: "10", index: "7"},
		{name: "before-id, paging on", q: mtQuery{fields: []string{mtField("before-id", ids[10])}, rsm: "<max>3</max><after>" + ids[5] + "</after>"}, want: r(6, 9), count: "10", index: "6"},
		{name: "before-id, last forward page", q: mtQuery{fields: []string{mtField("before-id", ids[10])}, rsm: "<max>3</max><after>" + ids[6] + "</after>"}, want: r(7, 10), complete: true, count: "10", index: "7"},
		{name: "ids", q: mtQuery{fields: []string{mtField("ids", ids[20], ids[2], ids[7])}}, want: []string{ids[2], ids[7], ids[20]}, complete: true, count: "3", index: "0"},
		{name: "ids with another filter", q: mtQuery{fields: []string{mtField("ids", ids[2], ids[7]), mtField("with", "carol@localhost")}}, complete: true, count: "0"},
		// XEP-0059 §2.5: a page by position; <first index='…'> repeats it.
		{name: "index", q: mtQuery{rsm: "<max>5</max><index>10</index>"}, want: r(10, 15), count: "25", index: "10"},
		{name: "index 0", q: mtQuery{rsm: "<max>5</max><index>0</index>"}, want: r(0, 5), count: "25", index: "0"},
		{name: "index, last page", q: mtQuery{rsm: "<max>10</max><index>20</index>"}, want: r(20, 25), complete: true, count: "25", index: "20"},
		{name: "index past the end", q: mtQuery{rsm: "<max>10</max><index>25</index>"}, complete: true, count: "25"},
		{name: "index within after-id", q: mtQuery{fields: []string{mtField("after-id", ids[4])}, rsm: "<max>3</max><index>2</index>"}, want: r(7, 10), count: "20", index: "2"},
		{name: "index of ids", q: mtQuery{fields: []string{mtField("ids", ids[20], ids[2], ids[7])}, rsm: "<index>1</index>"}, want: []string{ids[7], ids[20]}, complete: true, count: "3", index: "1"},
		{name: "index, flipped", q: mtQuery{rsm: "<max>3</max><index>4</index>", flip: true}, want: rev(r(4, 7)), flipped: true, count: "25", index: "4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mtRun(t, a, tc.q)
			mtCheckPage(t, tc.name, p, tc.want, tc.flipped, tc.complete)
			if p.count != tc.count || p.index != tc.index {
				t.Errorf("count %q, index %q; want %q, %q", p.count, p.index, tc.count, tc.index)
			}
		})
	}

	errs := []struct {
		name string
		q    mtQuery
		cond string
	}{
		{"unknown after", mtQuery{rsm: "<after>1</after>"}, "item-not-found"},
		{"malformed after", mtQuery{rsm: "<after>not-an-id</after>"}, "item-not-found"},
		{"unknown before", mtQuery{rsm: "<before>1</before>"}, "item-not-found"},
		{"unknown after-id", mtQuery{fields: []string{mtField("after-id", "1")}}, "item-not-found"},
		{"unknown before-id", mtQuery{fields: []string{mtField("before-id", "1")}}, "item-not-found"},
		{"unknown after-id with a known after", mtQuery{fields: []string{mtField("after-id", "1")}, rsm: "<after>" + ids[3] + "</after>"}, "item-not-found"},
		{"unknown id among ids", mtQuery{fields: []string{mtField("ids", ids[2], "1")}}, "item-not-found"},
		{"malformed start", mtQuery{fields: []string{mtField("start", "yesterday")}}, "bad-request"},
		{"malformed end", mtQuery{fields: []string{mtField("end", "2024-13-45T99:00:00Z")}}, "bad-request"},
		{"wrong FORM_TYPE", mtQuery{formType: "urn:xmpp:mam:1", fields: []string{mtField("with", bob.String())}}, "bad-request"},
		{"negative max", mtQuery{rsm: "<max>-1</max>"}, "bad-request"},
		{"malformed max", mtQuery{rsm: "<max>ten</max>"}, "bad-request"},
		{"malformed with", mtQuery{fields: []string{mtField("with", "@localhost")}}, "jid-malformed"},
		// XEP-0313 §4.1.5: an unknown field is feature-not-implemented.
		{"unknown field", mtQuery{fields: []string{mtField("{urn:example}full-text", "hello")}}, "feature-not-implemented"},
		{"RSM index with after", mtQuery{rsm: "<max>5</max><index>3</index><after>" + ids[3] + "</after>"}, "bad-request"},
		{"RSM index with before", mtQuery{rsm: "<max>5</max><index>3</index><before/>"}, "bad-request"},
		{"negative RSM index", mtQuery{rsm: "<index>-3</index>"}, "bad-request"},
		{"someone else's archive", mtQuery{to: bob.String()}, "forbidden"},
		{"the server's archive", mtQuery{to: "localhost"}, "service-unavailable"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			res, p := mtDo(t, a, tc.q)
			if got := mtError(res); got != tc.cond {
				t.Errorf("answered %s, want error %s", res, tc.cond)
			}
			if len(p.results) != 0 {
				t.Errorf("%d results before the error", len(p.results))
			}
		})
	}
}

// TestMAMArchiveService covers what else a user can ask of their archive:
// the disco features (XEP-0313 §8), the query form (§4.1.5), the metadata
// (§6), and that every request for someone else's archive is forbidden
// (§10.1).
func TestMAMArchiveService(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	a := mtOnline(t, s, alice, "desk")

	info := mtResult(t, a, "<iq type='get' id='%s' to='alice@localhost'><query xmlns='"+mtNSDiscoInfo+"'/></iq>")
	features := map[string]bool{}
	for _, f := range info.Children {
		if f.Name == "feature" {
			features[f.AttrValue("var")] = true
		}
	}
	for _, f := range []string{mtNS, mtNSExt, mtNSSID} {
		if !features[f] {
			t.Errorf("disco#info of the account lacks %s: %s", f, info)
		}
	}

	form := mtResult(t, a, "<iq type='get' id='%s'><query xmlns='"+mtNS+"'/></iq>").Child("x", mtNSData)
	if form == nil || form.AttrValue("type") != "form" {
		t.Fatalf("query form: %v", form)
	}
	fields := map[string]*wire.Element{}
	for _, f := range form.Children {
		if f.Name == "field" {
			fields[f.AttrValue("var")] = f
		}
	}
	for name, typ := range map[string]string{"FORM_TYPE": "hidden", "with": "jid-single", "start": "text-single", "end": "text-single",
		"after-id": "text-single", "before-id": "text-single", "ids": "list-multi"} {
		f := fields[name]
		switch {
		case f == nil:
			t.Errorf("query form lacks %s: %s", name, form)
		case f.AttrValue("type") != typ:
			t.Errorf("query form: %s has type %q, want %q", name, f.AttrValue("type"), typ)
		case f.Child("required", mtNSData) != nil:
			t.Errorf("query form: %s is required (§4.1)", name)
		}
	}
	// §4.1.5: the open list of ids is declared with XEP-0122.
	if ids := fields["ids"]; ids != nil {
		if v := ids.Child("validate", mtNSXDataVal); v == nil || v.Child("open", mtNSXDataVal) == nil {
			t.Errorf("query form: ids without <validate><open/></validate>: %s", ids)
		}
	}

	md := mtResult(t, a, "<iq type='get' id='%s'><metadata xmlns='"+mtNS+"'/></iq>")
	if len(md.Children) != 0 {
		t.Errorf("metadata of an empty archive: %s", md)
	}
	for i := range 3 {
		mtChat(t, a, bob.String(), "m"+strconv.Itoa(i))
	}
	mtSync(t, a)
	all := mtRun(t, a, mtQuery{})
	md = mtResult(t, a, "<iq type='get' id='%s'><metadata xmlns='"+mtNS+"'/></iq>")
	for _, e := range []struct {
		name string
		i    int
	}{{"start", 0}, {"end", 2}} {
		el := md.Child(e.name, mtNS)
		if el == nil || el.AttrValue("id") != all.ids[e.i] || el.AttrValue("timestamp") != all.stamps()[e.i] {
			t.Errorf("metadata %s: %v, want id %s timestamp %s", e.name, el, all.ids[e.i], all.stamps()[e.i])
		}
	}

	for _, tc := range []struct{ name, iq string }{
		{"query form", "<iq type='get' id='%s' to='bob@localhost'><query xmlns='" + mtNS + "'/></iq>"},
		{"query", "<iq type='set' id='%s' to='bob@localhost'><query xmlns='" + mtNS + "'/></iq>"},
		{"metadata", "<iq type='get' id='%s' to='bob@localhost'><metadata xmlns='" + mtNS + "'/></iq>"},
		{"get prefs", "<iq type='get' id='%s' to='bob@localhost'><prefs xmlns='" + mtNS + "'/></iq>"},
		{"set prefs", "<iq type='set' id='%s' to='bob@localhost'>" + mtPrefs{def: "never"}.xml() + "</iq>"},
		{"conversations", "<iq type='get' id='%s' to='bob@localhost'><conversations xmlns='" + mtNSConv + "'/></iq>"},
	} {
		t.Run("someone else's "+tc.name, func(t *testing.T) {
			_, res := mtExchange(t, a, tc.iq)
			if got := mtError(res); got != "forbidden" {
				t.Errorf("answered %s, want forbidden", res)
			}
		})
	}
	// bob's preferences are untouched.
	b := mtOnline(t, s, bob, "phone")
	if p := mtGetPrefs(t, b); p.def != "always" {
		t.Errorf("bob's prefs after alice's attempt: %+v", p)
	}
}

// TestMAMPreferences covers the archiving preferences (XEP-0313 §6 as in
// XEP-0441): the host default 'always'; 'never'; 'roster' (only contacts
// in the user's roster); the always and never lists overriding the
// default. Each side's preferences decide its own archive only, and a
// message a user does not archive reaches them without a stanza-id.
// Preferences survive a restart; users who set none follow the host's
// archive_default.
func TestMAMPreferences(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	carol := s.AddUser(t, "carol", mtPassword)
	dave := s.AddUser(t, "dave", mtPassword)
	a := mtOnline(t, s, alice, "desk")
	b := mtOnline(t, s, bob, "phone")
	c := mtOnline(t, s, carol, "laptop")
	// carol is in alice's roster (no subscription needed), bob is not.
	mtResult(t, a, "<iq type='set' id='%s'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query></iq>")
	mtSync(t, a)

	if p := mtGetPrefs(t, a); !p.equal(mtPrefs{def: "always"}) {
		t.Fatalf("default prefs %+v, want always with empty lists", p)
	}
	if _, res := mtExchange(t, a, "<iq type='set' id='%s'>"+mtPrefs{def: "sometimes"}.xml()+"</iq>"); mtError(res) != "bad-request" {
		t.Errorf("prefs with default='sometimes' answered %s, want bad-request", res)
	}

	// exchange sends one message each way between alice and peer and
	// reports which of them alice's archive and the peer's archive hold,
	// checking the stanza-ids on the delivered copies against that.
	archived := func(t *testing.T, c *servertest.Client, body string) bool {
		t.Helper()
		p := mtRun(t, c, mtQuery{})
		return slices.Contains(p.bodies(), body)
	}
	exchange := func(t *testing.T, peer *servertest.Client, tag string) (aliceOut, aliceIn, peerIn, peerOut bool) {
		t.Helper()
		out, in := tag+": alice to "+peer.JID.Localpart(), tag+": "+peer.JID.Localpart()+" to alice"
		toPeer := mtReceive(t, peer, mtChat(t, a, peer.JID.Bare().String(), out))
		toAlice := mtReceive(t, a, mtChat(t, peer, alice.String(), in))
		aliceOut, aliceIn = archived(t, a, out), archived(t, a, in)
		peerIn, peerOut = archived(t, peer, out), archived(t, peer, in)
		if got := len(mtStanzaIDs(toAlice, "alice@localhost")) == 1; got != aliceIn {
			t.Errorf("%s: alice's copy has a stanza-id: %t, archived: %t: %s", in, got, aliceIn, toAlice)
		}
		peerBare := peer.JID.Bare().String()
		if got := len(mtStanzaIDs(toPeer, peerBare)) == 1; got != peerIn {
			t.Errorf("%s: %s's copy has a stanza-id: %t, archived: %t: %s", out, peerBare, got, peerIn, toPeer)
		}
		return aliceOut, aliceIn, peerIn, peerOut
	}
	steps := []struct {
		name         string
		prefs        *mtPrefs // alice's; nil keeps them
		bob, carol   bool     // alice archives her conversation with them
		bobArchives  bool
		bobPrefs     *mtPrefs
		carolArchive bool
	}{
		{name: "default always", bob: true, carol: true, bobArchives: true, carolArchive: true},
		{name: "never", prefs: &mtPrefs{def: "never"}, bobArchives: true, carolArchive: true},
		{name: "roster", prefs: &mtPrefs{def: "roster"}, carol: true, bobArchives: true, carolArchive: true},
		{name: "roster, always bob", prefs: &mtPrefs{def: "roster", always: []string{"bob@localhost"}}, bob: true, carol: true, bobArchives: true, carolArchive: true},
		{name: "always, never carol", prefs: &mtPrefs{def: "always", never: []string{"carol@localhost"}}, bob: true, bobArchives: true, carolArchive: true},
		{name: "never, always carol", prefs: &mtPrefs{def: "never", always: []string{"carol@localhost"}}, carol: true, bobArchives: true, carolArchive: true},
		{name: "bob never", prefs: &mtPrefs{def: "always"}, bobPrefs: &mtPrefs{def: "never"}, bob: true, carol: true, carolArchive: true},
		{name: "bob roster", bobPrefs: &mtPrefs{def: "roster"}, bob: true, carol: true, carolArchive: true},
		{name: "final", prefs: &mtPrefs{def: "roster", always: []string{"bob@localhost"}, never: []string{"dave@localhost"}},
			bobPrefs: &mtPrefs{def: "always"}, bob: true, carol: true, bobArchives: true, carolArchive: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.prefs != nil {
				mtSetPrefs(t, a, *st.prefs)
			}
			if st.bobPrefs != nil {
				mtSetPrefs(t, b, *st.bobPrefs)
			}
			aOut, aIn, bIn, bOut := exchange(t, b, st.name)
			if aOut != st.bob || aIn != st.bob {
				t.Errorf("alice archived her messages with bob: out %t, in %t, want %t", aOut, aIn, st.bob)
			}
			if bIn != st.bobArchives || bOut != st.bobArchives {
				t.Errorf("bob archived his messages with alice: in %t, out %t, want %t", bIn, bOut, st.bobArchives)
			}
			aOut, aIn, cIn, cOut := exchange(t, c, st.name)
			if aOut != st.carol || aIn != st.carol {
				t.Errorf("alice archived her messages with carol: out %t, in %t, want %t", aOut, aIn, st.carol)
			}
			if cIn != st.carolArchive || cOut != st.carolArchive {
				t.Errorf("carol archived her messages with alice: in %t, out %t, want %t", cIn, cOut, st.carolArchive)
			}
		})
	}
	final := *steps[len(steps)-1].prefs
	for _, cl := range []*servertest.Client{a, b, c} {
		mtLogout(t, cl)
	}

	// After a restart with the host default 'never': stored preferences
	// hold, users without any follow the new default.
	s = mtRestart(t, s, func(cfg *config.Config) { cfg.Hosts[0].ArchiveDefault = "never" })
	a = mtOnline(t, s, alice, "desk")
	b = mtOnline(t, s, bob, "phone")
	c = mtOnline(t, s, carol, "laptop")
	d := mtOnline(t, s, dave, "tablet")
	if p := mtGetPrefs(t, a); !p.equal(final) {
		t.Errorf("alice's prefs after restart %+v, want %+v", p, final)
	}
	if p := mtGetPrefs(t, b); !p.equal(mtPrefs{def: "always"}) {
		t.Errorf("bob's prefs after restart %+v, want always", p)
	}
	if p := mtGetPrefs(t, d); p.def != "never" {
		t.Errorf("dave's prefs after restart with archive_default never: %+v", p)
	}
	aOut, aIn, bIn, bOut := exchange(t, b, "restarted")
	if !aOut || !aIn || !bIn || !bOut {
		t.Errorf("after restart alice with bob: alice out %t in %t, bob in %t out %t; want all archived", aOut, aIn, bIn, bOut)
	}
	aOut, aIn, cIn, cOut := exchange(t, c, "restarted")
	if !aOut || !aIn || cIn || cOut {
		t.Errorf("after restart alice with carol: alice out %t in %t, carol in %t out %t; want alice's archived, carol's not", aOut, aIn, cIn, cOut)
	}
	aOut, aIn, dIn, dOut := exchange(t, d, "restarted")
	if aOut || aIn || dIn || dOut {
		t.Errorf("after restart alice with dave: alice out %t in %t, dave in %t out %t; want none archived", aOut, aIn, dIn, dOut)
	}

	// An account's preferences go with it: the same name registered
	// again starts from the host default.
	mtLogout(t, a)
	if err := s.Accounts().Delete(t.Context(), s.Domain, "alice"); err != nil {
		t.Fatal(err)
	}
	s.AddUser(t, "alice", mtPassword)
	a = mtOnline(t, s, alice, "desk")
	if p := mtGetPrefs(t, a); !p.equal(mtPrefs{def: "never"}) {
		t.Errorf("prefs of the re-created account %+v, want the host default never", p)
	}
}

// TestMAMDeleteConversation covers the ad-hoc command (XEP-0050) that
// deletes one conversation from the requester's own archive: it is listed
// under the server's commands node, its first stage is a form, the
// submission deletes and completes with a note; the other party's archive
// keeps the conversation.
func TestMAMDeleteConversation(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	carol := s.AddUser(t, "carol", mtPassword)
	a := mtOnline(t, s, alice, "desk")
	b := mtOnline(t, s, bob, "phone")
	mtReceive(t, b, mtChat(t, a, bob.String(), "one"))
	mtReceive(t, a, mtChat(t, b, alice.String(), "two"))
	mtChat(t, a, bob.String(), "three")
	mtChat(t, a, carol.String(), "to carol")
	mtSync(t, a)

	items := mtResult(t, a, "<iq type='get' id='%s' to='localhost'><query xmlns='"+mtNSDiscoItems+"' node='"+mtNSCommands+"'/></iq>")
	var listed *wire.Element
	for _, it := range items.Children {
		if it.Name == "item" && it.AttrValue("node") == mtNodeDelete {
			listed = it
		}
	}
	if listed == nil || listed.AttrValue("jid") != "localhost" || listed.AttrValue("name") == "" {
		t.Fatalf("commands node lists %s, want %s on localhost with a name", items, mtNodeDelete)
	}

	execute := "<iq type='set' id='%s' to='localhost'><command xmlns='" + mtNSCommands + "' node='%s' action='execute'/></iq>"
	cmd := mtResult(t, a, execute, mtNodeDelete)
	session := cmd.AttrValue("sessionid")
	if cmd.AttrValue("status") != "executing" || session == "" || cmd.AttrValue("node") != mtNodeDelete {
		t.Fatalf("first stage: %s", cmd)
	}
	x := cmd.Child("x", mtNSData)
	if x == nil || x.AttrValue("type") != "form" {
		t.Fatalf("first stage without a form: %s", cmd)
	}
	hasWith := false
	for _, f := range x.Children {
		hasWith = hasWith || f.Name == "field" && f.AttrValue("var") == "with"
	}
	if !hasWith {
		t.Fatalf("form without a 'with' field: %s", x)
	}

	submit := "<iq type='set' id='%s' to='localhost'><command xmlns='" + mtNSCommands + "' node='%s' sessionid='%s' action='complete'>" +
		"<x xmlns='" + mtNSData + "' type='submit'>%s</x></command></iq>"
	_, res := mtExchange(t, a, submit, mtNodeDelete, session, "")
	if got := mtError(res); got != "bad-request" {
		t.Errorf("submission without 'with' answered %s, want bad-request", res)
	}
	cmd = mtResult(t, a, submit, mtNodeDelete, session, mtField("with", bob.String()))
	note := cmd.Child("note", mtNSCommands)
	if cmd.AttrValue("status") != "completed" || cmd.AttrValue("sessionid") != session || note == nil || !strings.Contains(note.Text, "3") {
		t.Errorf("submission answered %s, want completed with a note on 3 messages", cmd)
	}

	if p := mtRun(t, a, mtQuery{}); !slices.Equal(p.bodies(), []string{"to carol"}) {
		t.Errorf("alice's archive after deleting bob's conversation: %q", p.bodies())
	}
	if p := mtRun(t, a, mtQuery{fields: []string{mtField("with", bob.String())}}); len(p.ids) != 0 || !p.complete {
		t.Errorf("alice's archive with bob: %q", p.bodies())
	}
	// The counts follow the deletion (XEP-0059 <count/>).
	count := func(fields ...string) string { return mtRun(t, a, mtQuery{fields: fields, rsm: "<max>0</max>"}).count }
	if all, withBob := count(), count(mtField("with", bob.String())); all != "1" || withBob != "0" {
		t.Errorf("counts after the deletion: %s in all, %s with bob; want 1, 0", all, withBob)
	}
	for _, cv := range mtConversations(t, a) {
		if cv.with == bob.String() {
			t.Errorf("alice's conversation list still has bob: %+v", cv)
		}
	}
	if p := mtRun(t, b, mtQuery{}); !slices.Equal(p.bodies(), []string{"one", "two", "three"}) {
		t.Errorf("bob's archive: %q, want his whole conversation", p.bodies())
	}
	// The conversation starts again.
	mtChat(t, a, bob.String(), "four")
	mtSync(t, a)
	if p := mtRun(t, a, mtQuery{fields: []string{mtField("with", bob.String())}}); !slices.Equal(p.bodies(), []string{"four"}) || p.count != "1" {
		t.Errorf("alice's archive with bob after a new message: %q, count %s", p.bodies(), p.count)
	}
	if all := count(); all != "2" {
		t.Errorf("count after a new message: %s, want 2", all)
	}

	// XEP-0050 §4.4: a finished session is gone, and so is a cancelled
	// one; a session is its opener's alone.
	if _, res := mtExchange(t, a, submit, mtNodeDelete, session, mtField("with", bob.String())); !mtCommandError(res, "bad-request", "bad-sessionid") {
		t.Errorf("submission to a completed session answered %s, want bad-request with bad-sessionid", res)
	}
	cancel := "<iq type='set' id='%s' to='localhost'><command xmlns='" + mtNSCommands + "' node='%s' sessionid='%s' action='cancel'/></iq>"
	session = mtResult(t, a, execute, mtNodeDelete).AttrValue("sessionid")
	if _, res := mtExchange(t, b, submit, mtNodeDelete, session, mtField("with", alice.String())); !mtCommandError(res, "bad-request", "bad-sessionid") {
		t.Errorf("bob's submission to alice's session answered %s, want bad-request with bad-sessionid", res)
	}
	if again := mtResult(t, a, "<iq type='set' id='%s' to='localhost'><command xmlns='"+mtNSCommands+"' node='%s' sessionid='%s' action='execute'/></iq>", mtNodeDelete, session); again.AttrValue("sessionid") != session || again.AttrValue("status") != "executing" {
		t.Errorf("the form asked for again answered %s, want the same session executing", again)
	}
	if c := mtResult(t, a, cancel, mtNodeDelete, session); c.AttrValue("status") != "canceled" || c.AttrValue("sessionid") != session {
		t.Errorf("cancel answered %s", c)
	}
	if _, res := mtExchange(t, a, submit, mtNodeDelete, session, mtField("with", carol.String())); !mtCommandError(res, "bad-request", "bad-sessionid") {
		t.Errorf("submission to a cancelled session answered %s, want bad-request with bad-sessionid", res)
	}
	if p := mtRun(t, a, mtQuery{}); len(p.ids) != 2 {
		t.Errorf("alice's archive after the refused submissions: %q, want both messages", p.bodies())
	}
	for _, tc := range []struct{ action, app string }{
		{"prev", "bad-action"},
		{"rewind", "malformed-action"},
	} {
		if _, res := mtExchange(t, a, "<iq type='set' id='%s' to='localhost'><command xmlns='"+mtNSCommands+"' node='%s' action='%s'/></iq>", mtNodeDelete, tc.action); !mtCommandError(res, "bad-request", tc.app) {
			t.Errorf("action %s answered %s, want bad-request with %s", tc.action, res, tc.app)
		}
	}
	if _, res := mtExchange(t, a, "<iq type='set' id='%s' to='localhost'><command xmlns='"+mtNSCommands+"' node='%s' action='cancel'/></iq>", mtNodeDelete); !mtCommandError(res, "bad-request", "bad-sessionid") {
		t.Errorf("cancel without a session answered %s, want bad-request with bad-sessionid", res)
	}
	if _, res := mtExchange(t, a, execute, "urn:example:no-such-command"); mtError(res) != "item-not-found" {
		t.Errorf("unknown command answered %s, want item-not-found", res)
	}
}

// TestMAMUnreadAcrossDevices covers the conversation list's unread
// counts with two devices of one user: messages are archived once however
// many resources get them; a XEP-0333 displayed marker the user sends
// from one device marks the conversation read up to that message on every
// device; a reply marks it all read.
func TestMAMUnreadAcrossDevices(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	carol := s.AddUser(t, "carol", mtPassword)
	desk := mtOnline(t, s, alice, "desk")
	phone := mtOnline(t, s, alice, "phone")
	b := mtOnline(t, s, bob, "pc")
	c := mtOnline(t, s, carol, "laptop")

	fromBob := func(body string) (id, sid string) {
		t.Helper()
		id = mtChat(t, b, alice.String(), body)
		sid = mtStanzaID(t, mtReceive(t, desk, id), "alice@localhost")
		if got := mtStanzaID(t, mtReceive(t, phone, id), "alice@localhost"); got != sid {
			t.Fatalf("message %s: stanza-id %s on the desk, %s on the phone", id, sid, got)
		}
		return id, sid
	}
	displayed := func(dev *servertest.Client, to, id string) {
		t.Helper()
		mtSend(t, dev, "<message to='%s' id='%s'><displayed xmlns='%s' id='%s'/></message>", to, mtID("mark"), mtNSMarkers, id)
		mtSync(t, dev)
	}
	unread := func(want int) {
		t.Helper()
		for _, dev := range []*servertest.Client{desk, phone} {
			if got := mtUnread(t, dev)[bob.String()]; got != want {
				t.Errorf("%s: unread with bob %d, want %d", dev.JID, got, want)
			}
		}
	}

	var ids, sids []string
	for _, body := range []string{"one", "two", "three"} {
		id, sid := fromBob(body)
		ids, sids = append(ids, id), append(sids, sid)
	}
	mtSync(t, b)
	if p := mtRun(t, desk, mtQuery{fields: []string{mtField("with", bob.String())}}); !slices.Equal(p.ids, sids) {
		t.Errorf("alice's archive with bob %v, want each message once: %v", p.ids, sids)
	}
	unread(3)
	convs := mtConversations(t, phone)
	if len(convs) != 1 || convs[0].with != bob.String() || convs[0].lastID != sids[2] || convs[0].body != "three" {
		t.Errorf("alice's conversations %+v, want bob's with last id %s", convs, sids[2])
	}

	// A marker to someone else changes nothing.
	displayed(phone, carol.String(), "whatever")
	unread(3)
	// The phone displays the newest message: read everywhere.
	mtSync(t, c)
	displayed(phone, bob.String(), ids[2])
	unread(0)
	// The marker went to bob and is not archived on either side.
	mtSync(t, b)
	if p := mtRun(t, b, mtQuery{}); len(p.ids) != 3 {
		t.Errorf("bob's archive holds %d messages, want his 3", len(p.ids))
	}

	// Two more; the desk displays the first of them: one stays unread.
	id4, _ := fromBob("four")
	fromBob("five")
	unread(2)
	displayed(desk, bob.String(), id4)
	unread(1)
	// A marker naming the archive id works as well.
	_, sid6 := fromBob("six")
	fromBob("seven")
	unread(3)
	displayed(phone, bob.String(), sid6)
	unread(1)
	// Replying reads the conversation.
	mtReceive(t, b, mtChat(t, desk, bob.String(), "reply"))
	unread(0)
	if got := mtUnread(t, b)[alice.String()]; got != 1 {
		t.Errorf("bob: unread with alice %d, want 1", got)
	}
}

// TestMAMOfflineNoDuplicates: messages stored offline are archived once,
// with the stanza-id they are delivered with, so that a client that also
// queries the archive can tell them apart; a client that does not gets
// them once.
func TestMAMOfflineNoDuplicates(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	a := mtOnline(t, s, alice, "desk")
	ids := []string{mtChat(t, a, bob.String(), "while you were out"), mtChat(t, a, bob.String(), "call me")}
	mtSync(t, a)

	b, els := mtLogin(t, s, bob, "phone")
	got := mtWhere(els, func(e *wire.Element) bool { return e.Name == "message" })
	if len(got) != 2 {
		t.Fatalf("bob got %d messages at login, want 2: %v", len(got), got)
	}
	var sids []string
	for i, el := range got {
		if el.AttrValue("id") != ids[i] {
			t.Errorf("offline message %d: id %q, want %q", i, el.AttrValue("id"), ids[i])
		}
		if el.Child("delay", mtNSDelay) == nil {
			t.Errorf("offline message %d without delay: %s", i, el)
		}
		sids = append(sids, mtStanzaID(t, el, "bob@localhost"))
	}
	p := mtRun(t, b, mtQuery{fields: []string{mtField("with", alice.String())}})
	mtCheckPage(t, "bob's archive", p, sids, false, true)
	if !slices.Equal(p.messageIDs(), ids) {
		t.Errorf("bob's archive holds messages %v, want %v", p.messageIDs(), ids)
	}

	mtLogout(t, b)
	_, els = mtLogin(t, s, bob, "phone")
	if got := mtWhere(els, func(e *wire.Element) bool { return e.Name == "message" }); len(got) != 0 {
		t.Errorf("bob's second login got %v", got)
	}
}

// TestMAMRestart: the archive, its ids and the conversation list survive
// a restart; ids given after it are above the old ones.
func TestMAMRestart(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	a := mtOnline(t, s, alice, "desk")
	b := mtOnline(t, s, bob, "phone")
	for _, body := range []string{"one", "two", "three"} {
		mtReceive(t, b, mtChat(t, a, bob.String(), body))
	}
	mtSync(t, a)
	before := mtRun(t, b, mtQuery{})
	convBefore := mtConversations(t, b)
	mtLogout(t, a)
	mtLogout(t, b)

	s = mtRestart(t, s, nil)
	a = mtOnline(t, s, alice, "desk")
	b = mtOnline(t, s, bob, "phone")
	after := mtRun(t, b, mtQuery{})
	if !slices.Equal(after.ids, before.ids) || !slices.Equal(after.bodies(), before.bodies()) || !slices.Equal(after.stamps(), before.stamps()) {
		t.Errorf("after restart the archive holds %v %q %v, want %v %q %v",
			after.ids, after.bodies(), after.stamps(), before.ids, before.bodies(), before.stamps())
	}
	if got := mtConversations(t, b); !slices.Equal(got, convBefore) {
		t.Errorf("conversations after restart %+v, want %+v", got, convBefore)
	}
	sid := mtStanzaID(t, mtReceive(t, b, mtChat(t, a, bob.String(), "four")), "bob@localhost")
	codec, err := server.ArchiveIDs(s.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	newID, ok := codec.Parse(sid)
	if !ok {
		t.Fatalf("stanza-id %q is not one of this server's", sid)
	}
	for _, id := range before.ids {
		if old, _ := codec.Parse(id); newID <= old {
			t.Errorf("new id %d is not above old id %d", newID, old)
		}
	}
	if p := mtRun(t, b, mtQuery{rsm: "<after>" + before.last + "</after>"}); !slices.Equal(p.ids, []string{sid}) {
		t.Errorf("after the old last id: %v, want [%s]", p.ids, sid)
	}
}

// mtSentCarbon waits for the <sent/> carbon (XEP-0280) of the message id
// on c, checks its envelope (from the account to c) and returns the
// message it carries.
func mtSentCarbon(t testing.TB, c *servertest.Client, id string) *wire.Element {
	t.Helper()
	e := c.Next(t, mtWait, func(e *wire.Element) bool {
		sent := e.Child("sent", ftNSCarbons)
		return e.Name == "message" && sent != nil && sent.Child("forwarded", mtNSForward).Child("message", mtNSClient).AttrValue("id") == id
	})
	if account := c.JID.Bare().String(); e.AttrValue("from") != account || e.AttrValue("to") != c.JID.String() {
		t.Errorf("carbon from %q to %q, want from %s to %s", e.AttrValue("from"), e.AttrValue("to"), account, c.JID)
	}
	return e.Child("sent", ftNSCarbons).Child("forwarded", mtNSForward).Child("message", mtNSClient)
}

// TestMAMSentCarbonStanzaID covers XEP-0280 <sent/> copies with XEP-0359:
// the copy another device of the sender gets carries the stanza-id of the
// sender's archive, the id that device then finds in the archive, so it
// can tell the archived message from the carbon it already shows; the
// message the recipient gets carries only the recipient's archive's id; a
// stanza-id that the sending client put in, claiming to be by its own
// archive, is neither archived nor copied; a sent message the archive
// does not keep is copied without a stanza-id.
func TestMAMSentCarbonStanzaID(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	carol := s.AddUser(t, "carol", mtPassword)
	desk := mtOnline(t, s, alice, "desk")
	phone := mtOnline(t, s, alice, "phone")
	b := mtOnline(t, s, bob, "pc")
	mtResult(t, phone, "<iq type='set' id='%s'><enable xmlns='"+ftNSCarbons+"'/></iq>")
	mtSetPrefs(t, desk, mtPrefs{def: "always", never: []string{carol.String()}})

	id := mtChat(t, desk, bob.String(), "hello from the desk")
	fwd := mtSentCarbon(t, phone, id)
	sid := mtStanzaID(t, fwd, alice.String())
	delivered := mtReceive(t, b, id)
	if got := mtStanzaIDs(delivered, alice.String()); len(got) != 0 {
		t.Errorf("bob got alice's archive id %v: %s", got, delivered)
	}
	bobSID := mtStanzaID(t, delivered, bob.String())
	if p := mtRun(t, phone, mtQuery{fields: []string{mtField("ids", sid)}}); !slices.Equal(p.ids, []string{sid}) || !slices.Equal(p.messageIDs(), []string{id}) {
		t.Errorf("alice's archive by the carbon's stanza-id: ids %v of messages %v, want [%s] of [%s]", p.ids, p.messageIDs(), sid, id)
	}
	if p := mtRun(t, b, mtQuery{}); !slices.Equal(p.ids, []string{bobSID}) {
		t.Errorf("bob's archive %v, want [%s]", p.ids, bobSID)
	}

	// A stanza-id the client claims for its own archive is dropped.
	forged := mtMessage(t, desk, "chat", bob.String(),
		"<body>forged</body><stanza-id xmlns='"+mtNSSID+"' by='"+alice.String()+"' id='made-up'/>")
	fwd = mtSentCarbon(t, phone, forged)
	sid2 := mtStanzaID(t, fwd, alice.String())
	if sid2 == "made-up" || sid2 == sid {
		t.Errorf("carbon of the forged message carries stanza-id %q", sid2)
	}
	p := mtRun(t, phone, mtQuery{fields: []string{mtField("ids", sid2)}})
	if len(p.results) != 1 || len(mtStanzaIDs(p.forwarded(0), alice.String())) != 0 {
		t.Errorf("archived forged message: %v", p.results)
	}

	// Not archived (preferences, or a chat state): copied without an id.
	for _, tc := range []struct{ to, inner string }{
		{carol.String(), "<body>never archived</body>"},
		{bob.String(), "<composing xmlns='" + mtNSChatStates + "'/>"},
	} {
		id := mtMessage(t, desk, "chat", tc.to, tc.inner)
		if got := mtStanzaIDs(mtSentCarbon(t, phone, id), alice.String()); len(got) != 0 {
			t.Errorf("carbon of an unarchived message %s carries stanza-ids %v", tc.inner, got)
		}
	}
	// The sending resource gets no copy of its own messages.
	for _, e := range mtSync(t, desk) {
		if e.Child("sent", ftNSCarbons) != nil {
			t.Errorf("the sender got a carbon of its own message: %s", e)
		}
	}
}

// TestMAMCarbonsAndBlocking covers the archive's interplay with message
// carbons and blocking: a message delivered to one resource is archived
// once and its carbon copies to the other resources carry the same
// stanza-id (XEP-0313 §3.3, XEP-0280); a message the recipient blocks is
// not in the recipient's archive (XEP-0313 §7.1), and a message the user
// could not send to someone they block is not in their archive.
func TestMAMCarbonsAndBlocking(t *testing.T) {
	const nsBlocking = "urn:xmpp:blocking"
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	desk := mtOnline(t, s, alice, "desk")
	phone := mtOnline(t, s, alice, "phone")
	b := mtOnline(t, s, bob, "pc")
	mtResult(t, desk, "<iq type='set' id='%s'><enable xmlns='"+ftNSCarbons+"'/></iq>")

	id := mtChat(t, b, phone.JID.String(), "just the phone")
	sid := mtStanzaID(t, mtReceive(t, phone, id), alice.String())
	carbon := desk.Next(t, mtWait, func(e *wire.Element) bool {
		return e.Name == "message" && e.Child("received", ftNSCarbons) != nil
	})
	fwd := carbon.Child("received", ftNSCarbons).Child("forwarded", mtNSForward).Child("message", mtNSClient)
	if fwd == nil || fwd.AttrValue("id") != id {
		t.Fatalf("carbon copy %s, want message %s", carbon, id)
	}
	if got := mtStanzaID(t, fwd, alice.String()); got != sid {
		t.Errorf("carbon copy's stanza-id %s, the delivered copy's %s", got, sid)
	}
	if p := mtRun(t, desk, mtQuery{}); !slices.Equal(p.ids, []string{sid}) {
		t.Errorf("alice's archive %v, want [%s] once", p.ids, sid)
	}

	mtResult(t, desk, "<iq type='set' id='%s'><block xmlns='"+nsBlocking+"'><item jid='bob@localhost'/></block></iq>")
	mtSync(t, phone)
	mtChat(t, b, alice.String(), "blocked on the way in")
	mtSync(t, b)
	mtChat(t, desk, bob.String(), "blocked on the way out")
	mtSync(t, desk)
	if p := mtRun(t, desk, mtQuery{}); !slices.Equal(p.ids, []string{sid}) {
		t.Errorf("alice's archive after blocking bob: %q, want only the first message", p.bodies())
	}
	if got := mtUnread(t, phone)[bob.String()]; got != 1 {
		t.Errorf("alice: unread with bob %d, want 1", got)
	}
}

// mtJoin enters room with nick from c and waits for the room's subject
// message, the end of the join (XEP-0045 §7.2.16).
func mtJoin(t testing.TB, c *servertest.Client, room, nick string) {
	t.Helper()
	mtSend(t, c, "<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>", room, nick)
	c.Next(t, mtWait, func(e *wire.Element) bool {
		return e.Name == "message" && e.AttrValue("type") == "groupchat" && e.Child("subject", mtNSClient) != nil
	})
}

// mtGroupchat posts body to room from c and returns the room's stanza-id
// of the message, as c gets it reflected.
func mtGroupchat(t testing.TB, c *servertest.Client, room, body string) string {
	t.Helper()
	id := mtMessage(t, c, "groupchat", room, "<body>"+body+"</body>")
	return mtStanzaID(t, mtReceive(t, c, id), room)
}

// mtConvWith returns the entry of the list with with, if any.
func mtConvWith(t testing.TB, c *servertest.Client, with string) (mtConv, bool) {
	t.Helper()
	for _, cv := range mtConversations(t, c) {
		if cv.with == with {
			return cv, true
		}
	}
	return mtConv{}, false
}

// TestMAMRoomConversations covers rooms in the conversation list: a room
// the user entered is listed (type='groupchat') with its last message and
// the room's stanza-id of it; unread counts what others said since the
// user's displayed marker, sent in the room from any joined device, or
// since the user's own last message, and stops at 99 with unread-more;
// private messages from the room's occupants join the room's entry; a
// user who never entered the room does not list it; the delete
// conversation command removes it until the user enters again; a
// destroyed room leaves the list. Groupchat messages are not archived in
// the occupants' own archives.
func TestMAMRoomConversations(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	carol := s.AddUser(t, "carol", mtPassword)
	const room = "team@conference.localhost"
	desk := mtOnline(t, s, alice, "desk")
	phone := mtOnline(t, s, alice, "phone")
	b := mtOnline(t, s, bob, "pc")
	c := mtOnline(t, s, carol, "laptop")

	mtJoin(t, desk, room, "Alice")
	// An instant room (XEP-0045 §10.1.2), open to others.
	mtResult(t, desk, "<iq type='set' id='%s' to='"+room+"'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>")
	mtJoin(t, phone, room, "Alice")
	mtJoin(t, b, room, "Bob")

	cv, ok := mtConvWith(t, desk, room)
	if !ok || cv.typ != "groupchat" || cv.unread != 0 || cv.lastID != "" {
		t.Fatalf("alice's list after entering the room: %+v, %v; want the room, nothing unread, no last message", cv, ok)
	}
	if _, ok := mtConvWith(t, c, room); ok {
		t.Fatal("carol, who never entered the room, lists it")
	}

	var sids []string
	for i := range 3 {
		sids = append(sids, mtGroupchat(t, b, room, fmt.Sprintf("bob %d", i)))
	}
	cv, _ = mtConvWith(t, desk, room)
	if cv.unread != 3 || cv.lastID != sids[2] || cv.lastBy != room || cv.body != "bob 2" || cv.more {
		t.Fatalf("after 3 messages from bob: %+v; want 3 unread, last %s by the room, body 'bob 2'", cv, sids[2])
	}
	if cv2, _ := mtConvWith(t, b, room); cv2.unread != 0 {
		t.Errorf("bob's own messages are unread for him: %+v", cv2)
	}
	// The room's messages are the room's: not in alice's archive.
	if p := mtRun(t, desk, mtQuery{fields: []string{mtField("with", room)}}); len(p.ids) != 0 {
		t.Errorf("groupchat messages in alice's own archive: %q", p.bodies())
	}

	// A displayed marker from the phone, naming the room's stanza-id of
	// bob's second message, is seen from the desk.
	// (The room reflects markers: once the phone has it back, the room
	// has recorded it.)
	mtReceive(t, phone, mtMessage(t, phone, "groupchat", room, "<displayed xmlns='"+mtNSMarkers+"' id='"+sids[1]+"'/>"))
	if cv, _ = mtConvWith(t, desk, room); cv.unread != 1 {
		t.Errorf("after a marker on bob's second message: %d unread, want 1", cv.unread)
	}
	// A marker naming something else changes nothing.
	mtReceive(t, phone, mtMessage(t, phone, "groupchat", room, "<displayed xmlns='"+mtNSMarkers+"' id='not-an-id'/>"))
	if cv, _ = mtConvWith(t, desk, room); cv.unread != 1 {
		t.Errorf("after a marker with an unknown id: %d unread, want 1", cv.unread)
	}
	// Alice's own message reads the room.
	own := mtGroupchat(t, desk, room, "alice here")
	if cv, _ = mtConvWith(t, desk, room); cv.unread != 0 || cv.lastID != own || cv.body != "alice here" {
		t.Errorf("after alice's own message: %+v, want nothing unread, last %s", cv, own)
	}

	// A busy room: the count stops at 99, "99+".
	for i := range 119 {
		mtMessage(t, b, "groupchat", room, fmt.Sprintf("<body>flood %d</body>", i))
	}
	mtGroupchat(t, b, room, "flood 119") // the room has taken them all
	if cv, _ = mtConvWith(t, desk, room); cv.unread != 99 || !cv.more || cv.body != "flood 119" {
		t.Errorf("after 120 messages: %+v, want 99 unread and more, last 'flood 119'", cv)
	}

	// A private message from an occupant is part of the room's entry.
	// The room sends it to both of Alice's sessions (one occupant); her
	// archive keeps one record, whose stanza-id both copies carry.
	pm := mtMessage(t, b, "chat", room+"/Alice", "<body>psst</body>")
	deskIDs, phoneIDs := mtStanzaIDs(mtReceive(t, desk, pm), alice.String()), mtStanzaIDs(mtReceive(t, phone, pm), alice.String())
	if len(deskIDs) != 1 || !slices.Equal(deskIDs, phoneIDs) {
		t.Errorf("stanza-ids of the two copies of a private message: %v and %v, want one and the same", deskIDs, phoneIDs)
	}
	// Sent without an id, the two copies get one of the room's and are
	// still one record.
	// (Written to the connection: the client library adds ids.)
	if _, err := fmt.Fprintf(b.Conn(), "<message type='chat' to='%s/Alice'><body>psst, no id</body></message>", room); err != nil {
		t.Fatal(err)
	}
	isNoID := func(e *wire.Element) bool {
		return e.Name == "message" && e.ChildText("body", "jabber:client") == "psst, no id"
	}
	deskCopy, phoneCopy := desk.Next(t, mtWait, isNoID), phone.Next(t, mtWait, isNoID)
	if id := deskCopy.AttrValue("id"); id == "" || phoneCopy.AttrValue("id") != id {
		t.Errorf("ids of the two copies of an id-less private message: %q and %q, want one and the same", id, phoneCopy.AttrValue("id"))
	}
	deskIDs, phoneIDs = mtStanzaIDs(deskCopy, alice.String()), mtStanzaIDs(phoneCopy, alice.String())
	if len(deskIDs) != 1 || !slices.Equal(deskIDs, phoneIDs) {
		t.Errorf("stanza-ids of the two copies of an id-less private message: %v and %v, want one and the same", deskIDs, phoneIDs)
	}
	if p := mtRun(t, desk, mtQuery{fields: []string{mtField("with", room+"/Bob")}}); len(p.ids) != 2 {
		t.Errorf("alice's archive has %d records with %s/Bob, want 2 (the two private messages): %q", len(p.ids), room, p.bodies())
	}
	mtSync(t, b)
	list := mtConversations(t, desk)
	n := 0
	for _, e := range list {
		if e.with == room {
			n++
			cv = e
		}
	}
	if n != 1 || cv.unread != 99+2 || !cv.more || cv.body != "psst, no id" || cv.lastBy != alice.String() || list[0].with != room {
		t.Errorf("after two private messages from the room: %d entries, %+v; want one, first, 101 unread and more, last 'psst, no id' by alice's archive", n, cv)
	}

	// Delete conversation: the room leaves the list until alice enters
	// it again.
	execute := "<iq type='set' id='%s' to='localhost'><command xmlns='" + mtNSCommands + "' node='%s' action='execute'/></iq>"
	session := mtResult(t, desk, execute, mtNodeDelete).AttrValue("sessionid")
	submit := "<iq type='set' id='%s' to='localhost'><command xmlns='" + mtNSCommands + "' node='%s' sessionid='%s' action='complete'>" +
		"<x xmlns='" + mtNSData + "' type='submit'>%s</x></command></iq>"
	if note := mtResult(t, desk, submit, mtNodeDelete, session, mtField("with", room)).Child("note", mtNSCommands); note == nil || !strings.Contains(note.Text, "removed the room") {
		t.Errorf("delete conversation with the room answered %v", note)
	}
	if _, ok := mtConvWith(t, desk, room); ok {
		t.Error("the room is still listed after deleting the conversation")
	}
	mtSend(t, desk, "<presence to='%s/Alice' type='unavailable'/>", room)
	mtSync(t, desk)
	mtJoin(t, desk, room, "Alice")
	if cv, ok = mtConvWith(t, desk, room); !ok || cv.unread != 0 {
		t.Errorf("after entering again: %+v, %v; want the room, nothing unread", cv, ok)
	}

	// A destroyed room leaves the list; bob's private messages to the
	// room's occupant stay a one-to-one conversation of his.
	mtResult(t, desk, "<iq type='set' id='%s' to='"+room+"'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>")
	if cv, ok := mtConvWith(t, b, room); ok && (cv.typ == "groupchat" || cv.body != "psst, no id") {
		t.Errorf("bob's list after the room was destroyed: %+v; want only his private message", cv)
	}
}

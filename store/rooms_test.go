package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullRoom returns a room of service with every field set.
func fullRoom(jid string) Room {
	return Room{
		JID:                       jid,
		Kind:                      RoomKindIssue,
		Name:                      "TEST-123: login fails",
		Description:               "Chat about the issue TEST-123",
		Public:                    true,
		Persistent:                true,
		MembersOnly:               true,
		Moderated:                 true,
		PasswordProtected:         true,
		AllowInvites:              true,
		ParticipantsChangeSubject: true,
		AllowPM:                   true,
		Password:                  "s3cret",
		MaxUsers:                  300,
		WhoIs:                     RoomWhoIsAnyone,
		HistoryLength:             20,
		Subject:                   "Fix by Friday",
		SubjectBy:                 "juliet",
		SubjectByJID:              "juliet@example.org",
		SubjectSet:                codecTime.Add(time.Hour),
		Affiliations: map[string]string{
			"juliet@example.org": AffiliationOwner,
			"romeo@example.net":  AffiliationAdmin,
			"nurse@example.org":  AffiliationMember,
			"tybalt@example.com": AffiliationOutcast,
			"example.com":        AffiliationOutcast,
		},
		Nicks:    map[string]string{"juliet@example.org": "Juliet", "romeo@example.net": "Romeo"},
		Access:   []string{"user@example.org", "group:Capulets", "domain:example.net", "group:Capulets"},
		IssueKey: "TEST-123",
		Created:  codecTime,
		Creator:  "juliet@example.org",
	}
}

// minimalRoom returns a room with only the required fields set.
func minimalRoom(jid string) Room {
	return Room{JID: jid, Kind: RoomKindRoom, WhoIs: RoomWhoIsModerators, Created: codecTime}
}

func TestRoomsRoundTrip(t *testing.T) {
	maxed := fullRoom("max@conference.example.org")
	maxed.Name = strings.Repeat("n", MaxRoomNameLen)
	maxed.Description = strings.Repeat("d", MaxRoomTextLen)
	maxed.Password = strings.Repeat("p", MaxRoomNameLen)
	maxed.Subject = strings.Repeat("s", MaxRoomTextLen)
	maxed.SubjectBy = strings.Repeat("b", MaxRoomNameLen)
	maxed.IssueKey = strings.Repeat("k", MaxRoomNameLen)
	maxed.Creator = strings.Repeat("c", maxJID)
	maxed.Nicks = map[string]string{strings.Repeat("j", maxJID): strings.Repeat("n", MaxRoomNameLen)}
	maxed.MaxUsers, maxed.HistoryLength = 1<<40, 1<<20

	company := minimalRoom("everyone@conference.example.org")
	company.Kind, company.MembersOnly = RoomKindCompany, true

	tests := []struct {
		name string
		put  Room
		want Room // JID is set from put
	}{
		{"every field", fullRoom("issue@conference.example.org"), fullRoom("issue@conference.example.org")},
		{"minimal, nil maps", minimalRoom("lobby@conference.example.org"), minimalRoom("lobby@conference.example.org")},
		{"empty maps read back nil", func() Room {
			r := minimalRoom("lobby@conference.example.org")
			r.Affiliations, r.Nicks, r.Access = map[string]string{}, map[string]string{}, []string{}
			return r
		}(), minimalRoom("lobby@conference.example.org")},
		{"company without creator", company, company},
		{"every limit reached", maxed, maxed},
		{"subject set in other zone", func() Room {
			r := minimalRoom("lobby@conference.example.org")
			r.SubjectSet = codecTime.In(time.FixedZone("X", 3600))
			r.Created = time.Date(2025, 3, 4, 5, 6, 7, 891011999, time.UTC)
			return r
		}(), func() Room {
			r := minimalRoom("lobby@conference.example.org")
			r.SubjectSet = codecTime // UTC, microseconds
			return r
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			rooms := openTest(t).Rooms()
			if err := rooms.Put(ctx, tc.put); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, err := rooms.Get(ctx, tc.put.JID)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Get = %+v\nwant  %+v", got, tc.want)
			}
			service := tc.put.JID[strings.IndexByte(tc.put.JID, '@')+1:]
			list, err := rooms.List(ctx, service)
			if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], tc.want) {
				t.Fatalf("List = %+v, %v", list, err)
			}
		})
	}
}

func TestRoomsReplace(t *testing.T) {
	ctx := t.Context()
	rooms := openTest(t).Rooms()
	const jid = "issue@conference.example.org"
	if err := rooms.Put(ctx, fullRoom(jid)); err != nil {
		t.Fatal(err)
	}
	// Put replaces the whole record: fields left zero are cleared.
	want := minimalRoom(jid)
	want.Affiliations = map[string]string{"romeo@example.net": AffiliationOwner}
	if err := rooms.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := rooms.Get(ctx, jid)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Get after replace = %+v, %v\nwant %+v", got, err, want)
	}
	if n, err := rooms.Count(ctx, "conference.example.org"); err != nil || n != 1 {
		t.Fatalf("Count after replace = %d, %v", n, err)
	}
}

func TestRoomsZeroCreated(t *testing.T) {
	ctx := t.Context()
	rooms := openTest(t).Rooms()
	const jid = "lobby@conference.example.org"
	r := minimalRoom(jid)
	r.Created = time.Time{}
	before := time.Now().Add(-time.Second)
	if err := rooms.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := rooms.Get(ctx, jid)
	if err != nil || got.Created.Before(before) || time.Since(got.Created) > time.Minute || got.Created.Location() != time.UTC {
		t.Fatalf("new room with zero Created: %+v, %v; want about now in UTC", got, err)
	}
	created := got.Created

	// A later Put with zero Created keeps the creation time.
	r.Name = "Lobby"
	if err := rooms.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err = rooms.Get(ctx, jid)
	if err != nil || got.Name != "Lobby" || !got.Created.Equal(created) {
		t.Fatalf("update with zero Created: %+v, %v; want Created %v", got, err, created)
	}

	// An explicit Created replaces it.
	r.Created = codecTime
	if err := rooms.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err = rooms.Get(ctx, jid); err != nil || !got.Created.Equal(codecTime) {
		t.Fatalf("explicit Created: %+v, %v", got, err)
	}
}

func TestRoomsInvalid(t *testing.T) {
	const jid = "lobby@conference.example.org"
	with := func(f func(*Room)) Room {
		r := fullRoom(jid)
		f(&r)
		return r
	}
	many := func(n int, value string) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			m[fmt.Sprintf("u%d@example.org", i)] = value
		}
		return m
	}
	tests := []struct {
		name string
		room Room
	}{
		{"empty JID", with(func(r *Room) { r.JID = "" })},
		{"no localpart", with(func(r *Room) { r.JID = "conference.example.org" })},
		{"empty localpart", with(func(r *Room) { r.JID = "@conference.example.org" })},
		{"empty service", with(func(r *Room) { r.JID = "lobby@" })},
		{"resource", with(func(r *Room) { r.JID = "lobby@conference.example.org/nick" })},
		{"slash in localpart", with(func(r *Room) { r.JID = "lo/bby@conference.example.org" })},
		{"two @", with(func(r *Room) { r.JID = "a@b@conference.example.org" })},
		{"localpart too long", with(func(r *Room) { r.JID = strings.Repeat("l", maxJIDPart+1) + "@conference.example.org" })},
		{"service too long", with(func(r *Room) { r.JID = "lobby@" + strings.Repeat("s", maxJIDPart+1) })},
		{"empty kind", with(func(r *Room) { r.Kind = "" })},
		{"unknown kind", with(func(r *Room) { r.Kind = "chat" })},
		{"empty whois", with(func(r *Room) { r.WhoIs = "" })},
		{"unknown whois", with(func(r *Room) { r.WhoIs = "participants" })},
		{"negative max users", with(func(r *Room) { r.MaxUsers = -1 })},
		{"negative history", with(func(r *Room) { r.HistoryLength = -1 })},
		{"name too long", with(func(r *Room) { r.Name = strings.Repeat("n", MaxRoomNameLen+1) })},
		{"description too long", with(func(r *Room) { r.Description = strings.Repeat("d", MaxRoomTextLen+1) })},
		{"password too long", with(func(r *Room) { r.Password = strings.Repeat("p", MaxRoomNameLen+1) })},
		{"subject too long", with(func(r *Room) { r.Subject = strings.Repeat("s", MaxRoomTextLen+1) })},
		{"subject nick too long", with(func(r *Room) { r.SubjectBy = strings.Repeat("b", MaxRoomNameLen+1) })},
		{"issue key too long", with(func(r *Room) { r.IssueKey = strings.Repeat("k", MaxRoomNameLen+1) })},
		{"creator too long", with(func(r *Room) { r.Creator = strings.Repeat("c", maxJID+1) })},
		{"affiliation none", with(func(r *Room) { r.Affiliations["x@y"] = "none" })},
		{"unknown affiliation", with(func(r *Room) { r.Affiliations["x@y"] = "Owner" })},
		{"empty affiliated JID", with(func(r *Room) { r.Affiliations[""] = AffiliationMember })},
		{"affiliated JID too long", with(func(r *Room) { r.Affiliations[strings.Repeat("j", maxJID+1)] = AffiliationMember })},
		{"empty nick", with(func(r *Room) { r.Nicks["x@y"] = "" })},
		{"nick too long", with(func(r *Room) { r.Nicks["x@y"] = strings.Repeat("n", MaxRoomNameLen+1) })},
		{"empty nick JID", with(func(r *Room) { r.Nicks[""] = "n" })},
		{"empty access entry", with(func(r *Room) { r.Access = append(r.Access, "") })},
		{"too many affiliations", with(func(r *Room) { r.Affiliations = many(MaxRoomAffiliations+1, AffiliationMember) })},
		{"too many nicks", with(func(r *Room) { r.Nicks = many(MaxRoomNicks+1, "n") })},
		{"too many access entries", with(func(r *Room) { r.Access = make([]string, MaxRoomAccess+1) })},
		{"record too large", with(func(r *Room) {
			// Every field within its limit, the whole over MaxRoomRecordLen.
			r.Access = make([]string, MaxRoomAccess)
			for i := range r.Access {
				r.Access[i] = fmt.Sprintf("%04d", i) + strings.Repeat("a", maxJID-4)
			}
		})},
	}
	ctx := t.Context()
	rooms := openTest(t).Rooms()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := rooms.Put(ctx, tc.room); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Put = %v, want ErrInvalid", err)
			}
		})
	}
	if n, err := rooms.Count(ctx, ""); err != nil || n != 0 {
		t.Fatalf("rooms stored by rejected Puts: %d, %v", n, err)
	}
	for _, bad := range []string{"", "conference.example.org", "lobby@", "lobby@conference.example.org/nick"} {
		if _, err := rooms.Get(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Get(%q) = %v, want ErrInvalid", bad, err)
		}
		if err := rooms.Delete(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Delete(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("s", maxJIDPart+1)} {
		if _, err := rooms.List(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("List(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := rooms.Count(ctx, strings.Repeat("s", maxJIDPart+1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Count(too long) = %v, want ErrInvalid", err)
	}
}

func TestRoomsListIsolation(t *testing.T) {
	ctx := t.Context()
	rooms := openTest(t).Rooms()
	// "conference.x" is a byte prefix of "conference.xa", and localparts
	// are chosen so that plain concatenation would mix them up.
	jids := []string{
		"b@conference.x", "a@conference.x", "ab@conference.x", "a.b@conference.x",
		"a@conference.xa", "xa@conference.x", "z@x", "a@conference.x.y",
	}
	for _, j := range jids {
		if err := rooms.Put(ctx, minimalRoom(j)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		service string
		want    []string
	}{
		{"conference.x", []string{"a.b@conference.x", "a@conference.x", "ab@conference.x", "b@conference.x", "xa@conference.x"}},
		{"conference.xa", []string{"a@conference.xa"}},
		{"conference.x.y", []string{"a@conference.x.y"}},
		{"x", []string{"z@x"}},
		{"conference", nil},
		{"conference.y", nil},
	}
	for _, tc := range tests {
		t.Run(tc.service, func(t *testing.T) {
			list, err := rooms.List(ctx, tc.service)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range list {
				got = append(got, r.JID)
				if !reflect.DeepEqual(r, minimalRoom(r.JID)) {
					t.Errorf("listed room %+v", r)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("List(%q) = %q, want %q", tc.service, got, tc.want)
			}
			if n, err := rooms.Count(ctx, tc.service); err != nil || n != len(tc.want) {
				t.Fatalf("Count(%q) = %d, %v; want %d", tc.service, n, err, len(tc.want))
			}
		})
	}
	if n, err := rooms.Count(ctx, ""); err != nil || n != len(jids) {
		t.Fatalf(`Count("") = %d, %v; want %d`, n, err, len(jids))
	}
}

func TestRoomsDelete(t *testing.T) {
	ctx := t.Context()
	rooms := openTest(t).Rooms()
	const jid = "lobby@conference.x"
	if err := rooms.Delete(ctx, jid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete of absent room = %v, want ErrNotFound", err)
	}
	for _, j := range []string{jid, "lobby@conference.xa", "lobby2@conference.x"} {
		if err := rooms.Put(ctx, fullRoom(j)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rooms.Delete(ctx, jid); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := rooms.Get(ctx, jid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := rooms.Delete(ctx, jid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	for _, j := range []string{"lobby@conference.xa", "lobby2@conference.x"} {
		if _, err := rooms.Get(ctx, j); err != nil {
			t.Fatalf("other room %s after Delete: %v", j, err)
		}
	}
}

func TestRoomsPersistAndSurviveUserDelete(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	juliet := testUser("example.org", "juliet")
	if err := db.Users().Create(ctx, juliet); err != nil {
		t.Fatal(err)
	}
	want := map[string]Room{}
	for _, j := range []string{"issue@conference.example.org", "lobby@conference.example.org", "a@muc.example.net"} {
		r := fullRoom(j)
		if err := db.Rooms().Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		want[j] = r
	}
	// The creator and owner's account goes; the rooms stay.
	if _, err := db.Users().Delete(ctx, "example.org", "juliet"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, path, Options{ReadOnly: true})
	got := map[string]Room{}
	for _, service := range []string{"conference.example.org", "muc.example.net"} {
		list, err := db.Rooms().List(ctx, service)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			got[r.JID] = r
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rooms after reopen = %+v\nwant %+v", got, want)
	}
	r, err := db.Rooms().Get(ctx, "issue@conference.example.org")
	if err != nil || !reflect.DeepEqual(r, want["issue@conference.example.org"]) {
		t.Fatalf("Get after reopen = %+v, %v", r, err)
	}
}

func TestRoomCodec(t *testing.T) {
	for _, r := range []Room{fullRoom(""), minimalRoom("")} {
		r.JID = ""
		got := checkStrictCodec(t, encodeRoom(nil, r), decodeRoom)
		if !reflect.DeepEqual(got, r) {
			t.Errorf("decode(encode(%+v)) = %+v", r, got)
		}
	}

	// Map iteration order does not leak into the encoding.
	r := fullRoom("")
	r.Affiliations = make(map[string]string)
	for i := range 200 {
		r.Affiliations[fmt.Sprintf("u%d@example.org", i)] = AffiliationMember
	}
	enc := encodeRoom(nil, r)
	for range 20 {
		r.Affiliations = maps.Clone(r.Affiliations)
		if again := encodeRoom(nil, r); !bytes.Equal(again, enc) {
			t.Fatal("encoding of the same room differs between calls")
		}
	}

	// Hand-built records that break one rule each.
	room := func(kind, whois byte, tail ...byte) []byte {
		b := []byte{roomCodecV1, kind, whois, 0xff}
		b = append(b, 0, 0, 0, 0, 0, 0, 0) // name … subject nick
		b = appendVarint(b, 0)             // subject set
		b = append(b, tail...)
		return b
	}
	end := append([]byte{0}, appendVarint(nil, 0)...) // issue key, created
	end = append(end, 0)                              // creator
	valid := room(1, 1, append([]byte{0, 0, 0}, end...)...)
	if _, err := decodeRoom(valid); err != nil {
		t.Fatalf("hand-built record: %v", err)
	}
	// Version 2 adds the subject setter's JID at the end; version 1
	// records (valid) are still read.
	v2 := appendString(append([]byte{roomCodecV2}, valid[1:]...), "juliet@example.org")
	if got, err := decodeRoom(v2); err != nil || got.SubjectByJID != "juliet@example.org" {
		t.Fatalf("version 2 record: %+v, %v", got, err)
	}
	affs := func(pairs ...string) []byte {
		b := appendUvarint(nil, uint64(len(pairs)/2))
		for i := 0; i < len(pairs); i += 2 {
			b = appendString(b, pairs[i])
			b = append(b, pairs[i+1][0])
		}
		return append(append(b, 0, 0), end...) // no nicks, no access
	}
	for name, rec := range map[string][]byte{
		"unknown version":       append([]byte{3}, valid[1:]...),
		"kind 0":                room(0, 1, append([]byte{0, 0, 0}, end...)...),
		"kind 4":                room(4, 1, append([]byte{0, 0, 0}, end...)...),
		"whois 0":               room(1, 0, append([]byte{0, 0, 0}, end...)...),
		"whois 3":               room(1, 3, append([]byte{0, 0, 0}, end...)...),
		"affiliation 0":         room(1, 1, affs("a@x", "\x00")...),
		"affiliation 5":         room(1, 1, affs("a@x", "\x05")...),
		"affiliations unorder":  room(1, 1, affs("b@x", "\x01", "a@x", "\x01")...),
		"affiliations dup":      room(1, 1, affs("a@x", "\x01", "a@x", "\x02")...),
		"empty affiliated JID":  room(1, 1, affs("", "\x01")...),
		"count beyond input":    room(1, 1, append(appendUvarint(nil, 1000), end...)...),
		"count beyond limit":    room(1, 1, append(appendUvarint(nil, MaxRoomAffiliations+1), bytes.Repeat([]byte{0}, MaxRoomAffiliations+10)...)...),
		"v2 without the setter": append([]byte{roomCodecV2}, valid[1:]...),
	} {
		if _, err := decodeRoom(rec); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decode = %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzRoomCodec(f *testing.F) {
	full := fullRoom("")
	full.JID = ""
	f.Add(encodeRoom(nil, full))
	f.Add(encodeRoom(nil, minimalRoom("")))
	f.Add(encodeRoom(nil, Room{Kind: RoomKindCompany, WhoIs: RoomWhoIsAnyone, Nicks: map[string]string{"a@b": "a"}}))
	f.Add([]byte{roomCodecV1, 1, 1, 0})
	f.Add([]byte{roomCodecV2, 1, 1, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || data[0] != roomCodecV1 {
			fuzzCodec(t, data, decodeRoom, encodeRoom)
			return
		}
		// A version 1 record is written back as version 2, the same
		// room with no subject setter.
		v, err := decodeRoom(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		v2 := encodeRoom(nil, v)
		fuzzCodec(t, v2, decodeRoom, encodeRoom)
		if again, err := decodeRoom(v2); err != nil || !reflect.DeepEqual(again, v) || v.SubjectByJID != "" {
			t.Fatalf("version 1 %+v read back from version 2 as %+v, %v", v, again, err)
		}
	})
}

func BenchmarkRoomsGet(b *testing.B) {
	ctx := b.Context()
	rooms := openTest(b).Rooms()
	const jid = "big@conference.example.org"
	r := fullRoom(jid)
	r.Affiliations = make(map[string]string, 1000)
	for i := range 1000 {
		r.Affiliations[fmt.Sprintf("user%04d@example.org", i)] = AffiliationMember
	}
	if err := rooms.Put(ctx, r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := rooms.Get(ctx, jid)
		if err != nil || len(got.Affiliations) != 1000 {
			b.Fatalf("Get = %d affiliations, %v", len(got.Affiliations), err)
		}
	}
}

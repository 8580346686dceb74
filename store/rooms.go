package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// The first byte of every value in rooms: the codec version. Version 2
// adds SubjectByJID at the end; version 1 records are still read.
const (
	roomCodecV1 = 1
	roomCodecV2 = 2
)

// Room kinds (Room.Kind).
const (
	RoomKindRoom    = "room"
	RoomKindCompany = "company"
	RoomKindIssue   = "issue"
)

// Who may see occupants' real JIDs (Room.WhoIs, XEP-0045 muc#roomconfig_whois).
const (
	RoomWhoIsModerators = "moderators"
	RoomWhoIsAnyone     = "anyone"
)

// Affiliations (values of Room.Affiliations, XEP-0045 §5.2). "none" is
// not stored: a JID without an entry has no affiliation.
const (
	AffiliationOwner   = "owner"
	AffiliationAdmin   = "admin"
	AffiliationMember  = "member"
	AffiliationOutcast = "outcast"
)

// Limits on a Room; Put fails with ErrInvalid beyond them.
const (
	// MaxRoomTextLen bounds Description and Subject, in bytes.
	MaxRoomTextLen = 65535
	// MaxRoomNameLen bounds Name, Password, SubjectBy, IssueKey and each
	// reserved nick, in bytes (the RFC 7622 limit on a resourcepart).
	MaxRoomNameLen = 1023
	// MaxRoomAffiliations bounds the entries of Room.Affiliations.
	MaxRoomAffiliations = 100_000
	// MaxRoomNicks bounds the entries of Room.Nicks.
	MaxRoomNicks = 100_000
	// MaxRoomAccess bounds the entries of Room.Access.
	MaxRoomAccess = 10_000
	// MaxRoomRecordLen bounds the encoded record, in bytes: the whole
	// record is rewritten by every Put and read by every Get, so the
	// per-field limits alone (100,000 JIDs of up to 3 KiB) would allow
	// records far too large for that.
	MaxRoomRecordLen = 16 << 20
)

// Room is the stored state of a persistent multi-user chat room (XEP-0045
// 1.34): its configuration, subject, affiliations and reserved nicks.
// Occupants and roles are not stored; they live in the room while it runs.
type Room struct {
	// JID is the room's bare JID "room@service", already normalised by
	// the caller; the store compares bytes. It is the key, not part of
	// the value: Get and List set it.
	JID string
	// Kind is RoomKindRoom, RoomKindCompany or RoomKindIssue.
	Kind string

	Name, Description string

	Public, Persistent, MembersOnly, Moderated, PasswordProtected bool
	AllowInvites, ParticipantsChangeSubject, AllowPM              bool

	// Password is the room password, stored as given: XEP-0045 sends it
	// in the clear to join and shows it to owners in the configuration
	// form, so it cannot be hashed.
	Password string
	// MaxUsers is the occupant limit; 0 means no limit.
	MaxUsers int
	// WhoIs is RoomWhoIsModerators or RoomWhoIsAnyone.
	WhoIs string
	// HistoryLength is how many messages a joining occupant gets by
	// default.
	HistoryLength int

	// Subject is the room subject; SubjectBy the nick that set it,
	// SubjectByJID that occupant's bare JID (for its XEP-0421 occupant
	// id; empty if unknown) and SubjectSet when (zero if never set).
	// SubjectSet is stored with microsecond precision, read back in UTC.
	Subject, SubjectBy, SubjectByJID string
	SubjectSet                       time.Time

	// Affiliations maps a bare JID, or a domain, to one of the
	// Affiliation constants. Empty maps read back as nil.
	Affiliations map[string]string
	// Nicks maps a bare JID to its registered (reserved) nick. Empty
	// maps read back as nil.
	Nicks map[string]string
	// Access is the access list of a private room: "user@host",
	// "group:NAME" or "domain:example.org" entries, kept in order and
	// not interpreted by the store. Empty lists read back as nil.
	Access []string

	// IssueKey names the issue of a room of kind RoomKindIssue
	// ("TEST-123").
	IssueKey string

	// Created is when the room was created. Put stores a zero Created as
	// the stored room's creation time, or the current time for a new
	// room. Stored with microsecond precision, read back in UTC.
	Created time.Time
	// Creator is the bare JID of the creator; empty for rooms the server
	// created itself.
	Creator string
}

// Rooms is the sub-store of persistent multi-user chat rooms (bucket
// "rooms", keyed lp(service) ‖ localpart). Rooms are not per-account
// data: Users.Delete leaves them alone, even those the user created or
// owns. Get it from DB.Rooms.
type Rooms struct {
	db *DB
}

// splitRoomJID splits a room's bare JID at the '@' into the localpart and
// the service domain. A JID without a localpart, with a resource or with
// an over-long part is rejected with ErrInvalid.
func splitRoomJID(jid string) (service, local string, err error) {
	local, service, ok := strings.Cut(jid, "@")
	switch {
	case !ok || local == "":
		return "", "", fmt.Errorf("room JID %q has no localpart: %w", jid, ErrInvalid)
	case strings.ContainsRune(jid, '/'):
		return "", "", fmt.Errorf("room JID %q has a resource: %w", jid, ErrInvalid)
	case strings.ContainsRune(service, '@'):
		return "", "", fmt.Errorf("room JID %q has more than one '@': %w", jid, ErrInvalid)
	}
	if err := validateJIDPart("room service", service); err != nil {
		return "", "", err
	}
	if err := validateJIDPart("room localpart", local); err != nil {
		return "", "", err
	}
	return service, local, nil
}

// roomKey returns lp(service) ‖ local.
func roomKey(service, local string) []byte {
	k := make([]byte, 0, maxVarintLen+len(service)+len(local))
	k = appendString(k, service)
	return append(k, local...)
}

// Validate checks every field but JID (which is the key), as Put does:
// a room that fails it cannot be stored. It wraps ErrInvalid.
func (r Room) Validate() error {
	if roomKindCode(r.Kind) == 0 {
		return fmt.Errorf("room kind %q unknown: %w", r.Kind, ErrInvalid)
	}
	if roomWhoIsCode(r.WhoIs) == 0 {
		return fmt.Errorf("room whois %q unknown: %w", r.WhoIs, ErrInvalid)
	}
	for _, f := range []struct {
		what string
		s    string
		max  int
	}{
		{"name", r.Name, MaxRoomNameLen},
		{"description", r.Description, MaxRoomTextLen},
		{"password", r.Password, MaxRoomNameLen},
		{"subject", r.Subject, MaxRoomTextLen},
		{"subject nick", r.SubjectBy, MaxRoomNameLen},
		{"issue key", r.IssueKey, MaxRoomNameLen},
		{"creator", r.Creator, maxJID},
		{"subject setter", r.SubjectByJID, maxJID},
	} {
		if len(f.s) > f.max {
			return fmt.Errorf("room %s of %d bytes exceeds %d: %w", f.what, len(f.s), f.max, ErrInvalid)
		}
	}
	switch {
	case r.MaxUsers < 0:
		return fmt.Errorf("room max users %d: %w", r.MaxUsers, ErrInvalid)
	case r.HistoryLength < 0:
		return fmt.Errorf("room history length %d: %w", r.HistoryLength, ErrInvalid)
	case len(r.Affiliations) > MaxRoomAffiliations:
		return fmt.Errorf("%d room affiliations exceed %d: %w", len(r.Affiliations), MaxRoomAffiliations, ErrInvalid)
	case len(r.Nicks) > MaxRoomNicks:
		return fmt.Errorf("%d reserved nicks exceed %d: %w", len(r.Nicks), MaxRoomNicks, ErrInvalid)
	case len(r.Access) > MaxRoomAccess:
		return fmt.Errorf("%d access entries exceed %d: %w", len(r.Access), MaxRoomAccess, ErrInvalid)
	}
	for j, aff := range r.Affiliations {
		if err := validateJID("affiliated JID", j); err != nil {
			return err
		}
		if affiliationCode(aff) == 0 {
			return fmt.Errorf("affiliation %q of %s unknown: %w", aff, j, ErrInvalid)
		}
	}
	for j, nick := range r.Nicks {
		if err := validateJID("nick owner JID", j); err != nil {
			return err
		}
		if nick == "" || len(nick) > MaxRoomNameLen {
			return fmt.Errorf("nick of %s must be 1 to %d bytes, got %d: %w", j, MaxRoomNameLen, len(nick), ErrInvalid)
		}
	}
	for _, a := range r.Access {
		if err := validateJID("access entry", a); err != nil {
			return err
		}
	}
	return nil
}

// Put stores room, replacing any room with the same JID. It fails with
// ErrInvalid for a bad JID or a field beyond the limits.
func (r *Rooms) Put(ctx context.Context, room Room) error {
	service, local, err := splitRoomJID(room.JID)
	if err != nil {
		return fmt.Errorf("store: put room: %w", err)
	}
	if err := room.Validate(); err != nil {
		return fmt.Errorf("store: put room %s: %w", room.JID, err)
	}
	key := roomKey(service, local)
	var val []byte
	if !room.Created.IsZero() {
		if val, err = encodeRoomChecked(room); err != nil {
			return fmt.Errorf("store: put room %s: %w", room.JID, err)
		}
	}
	err = r.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketRooms)
		if err != nil {
			return err
		}
		if val == nil {
			// Keep the stored creation time, or start it now.
			room.Created = time.Now()
			if old := b.Get(key); old != nil {
				prev, err := decodeRoom(old)
				if err != nil {
					return err
				}
				room.Created = prev.Created
			}
			if val, err = encodeRoomChecked(room); err != nil {
				return err
			}
		}
		return b.Put(key, val)
	})
	if err != nil {
		return fmt.Errorf("store: put room %s: %w", room.JID, err)
	}
	return nil
}

// Get returns the room with the given bare JID, or ErrNotFound.
func (r *Rooms) Get(ctx context.Context, jid string) (Room, error) {
	service, local, err := splitRoomJID(jid)
	if err != nil {
		return Room{}, fmt.Errorf("store: get room: %w", err)
	}
	var room Room
	err = r.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketRooms)
		if err != nil {
			return err
		}
		v := b.Get(roomKey(service, local))
		if v == nil {
			return ErrNotFound
		}
		room, err = decodeRoom(v)
		return err
	})
	if err != nil {
		return Room{}, fmt.Errorf("store: get room %s: %w", jid, err)
	}
	room.JID = jid
	return room, nil
}

// Delete removes the room, or fails with ErrNotFound. It removes only the
// room record: the room's message archive stays (Archive.DeleteArchive).
func (r *Rooms) Delete(ctx context.Context, jid string) error {
	service, local, err := splitRoomJID(jid)
	if err != nil {
		return fmt.Errorf("store: delete room: %w", err)
	}
	key := roomKey(service, local)
	err = r.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketRooms)
		if err != nil {
			return err
		}
		if !hasKey(b, key) {
			return ErrNotFound
		}
		return b.Delete(key)
	})
	if err != nil {
		return fmt.Errorf("store: delete room %s: %w", jid, err)
	}
	return nil
}

// List returns the rooms of one MUC service domain sorted by JID (nil if
// none). It seeks to the service's keys; other services are not read.
func (r *Rooms) List(ctx context.Context, service string) ([]Room, error) {
	if err := validateJIDPart("room service", service); err != nil {
		return nil, fmt.Errorf("store: list rooms: %w", err)
	}
	var rooms []Room
	prefix := lp(service)
	err := r.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketRooms)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			local := k[len(prefix):]
			if len(local) == 0 {
				return fmt.Errorf("%w: room key %x without localpart", ErrCorrupt, k)
			}
			jid := string(local) + "@" + service
			room, err := decodeRoom(v)
			if err != nil {
				return fmt.Errorf("room %s: %w", jid, err)
			}
			room.JID = jid
			rooms = append(rooms, room)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list rooms of %s: %w", service, err)
	}
	// Keys order by localpart, which is not quite JID order: "a" sorts
	// before "a.b" but "a@s" after "a.b@s", as '.' < '@'.
	slices.SortFunc(rooms, func(a, b Room) int { return strings.Compare(a.JID, b.JID) })
	return rooms, nil
}

// Count returns the number of rooms of one service, or of every service
// if service is "". It reads keys only.
func (r *Rooms) Count(ctx context.Context, service string) (int, error) {
	var prefix []byte
	if service != "" {
		if err := validateJIDPart("room service", service); err != nil {
			return 0, fmt.Errorf("store: count rooms: %w", err)
		}
		prefix = lp(service)
	}
	n, err := r.db.countKeys(ctx, bucketRooms, prefix)
	if err != nil {
		return 0, fmt.Errorf("store: count rooms of %q: %w", service, err)
	}
	return n, nil
}

// Enumerations are stored as one byte each; 0 is never valid, so a
// zero-filled record does not decode. The code functions return 0 for an
// unknown name, the name functions "" for an unknown code.

func roomKindCode(s string) byte {
	switch s {
	case RoomKindRoom:
		return 1
	case RoomKindCompany:
		return 2
	case RoomKindIssue:
		return 3
	}
	return 0
}

func roomKindName(c byte) string {
	switch c {
	case 1:
		return RoomKindRoom
	case 2:
		return RoomKindCompany
	case 3:
		return RoomKindIssue
	}
	return ""
}

func roomWhoIsCode(s string) byte {
	switch s {
	case RoomWhoIsModerators:
		return 1
	case RoomWhoIsAnyone:
		return 2
	}
	return 0
}

func roomWhoIsName(c byte) string {
	switch c {
	case 1:
		return RoomWhoIsModerators
	case 2:
		return RoomWhoIsAnyone
	}
	return ""
}

func affiliationCode(s string) byte {
	switch s {
	case AffiliationOwner:
		return 1
	case AffiliationAdmin:
		return 2
	case AffiliationMember:
		return 3
	case AffiliationOutcast:
		return 4
	}
	return 0
}

func affiliationName(c byte) string {
	switch c {
	case 1:
		return AffiliationOwner
	case 2:
		return AffiliationAdmin
	case 3:
		return AffiliationMember
	case 4:
		return AffiliationOutcast
	}
	return ""
}

// Room flag bits.
const (
	roomFlagPublic = 1 << iota
	roomFlagPersistent
	roomFlagMembersOnly
	roomFlagModerated
	roomFlagPasswordProtected
	roomFlagAllowInvites
	roomFlagParticipantsChangeSubject
	roomFlagAllowPM
)

// encodeRoomChecked encodes a validated room and enforces
// MaxRoomRecordLen.
func encodeRoomChecked(room Room) ([]byte, error) {
	val := encodeRoom(nil, room)
	if len(val) > MaxRoomRecordLen {
		return nil, fmt.Errorf("room record of %d bytes exceeds %d: %w", len(val), MaxRoomRecordLen, ErrInvalid)
	}
	return val, nil
}

// encodeRoom appends the value encoding of a validated room (everything
// but JID, which is the key):
//
//	byte     codec version (2; 1 lacks SubjectByJID)
//	byte     Kind: 1 room, 2 company, 3 issue
//	byte     WhoIs: 1 moderators, 2 anyone
//	byte     flags: 0x01 Public, 0x02 Persistent, 0x04 MembersOnly,
//	         0x08 Moderated, 0x10 PasswordProtected, 0x20 AllowInvites,
//	         0x40 ParticipantsChangeSubject, 0x80 AllowPM
//	bytes    Name
//	bytes    Description
//	bytes    Password
//	uvarint  MaxUsers
//	uvarint  HistoryLength
//	bytes    Subject
//	bytes    SubjectBy
//	varint   SubjectSet, Unix microseconds
//	uvarint  n, then n × (bytes(JID) ‖ affiliation byte: 1 owner, 2 admin,
//	         3 member, 4 outcast), JIDs strictly increasing
//	uvarint  n, then n × (bytes(JID) ‖ bytes(nick)), JIDs strictly increasing
//	uvarint  n, then n × bytes(access entry), in order
//	bytes    IssueKey
//	varint   Created, Unix microseconds
//	bytes    Creator
//	bytes    SubjectByJID (version 2)
//
// Maps are written sorted by key, so equal rooms encode to equal bytes.
func encodeRoom(dst []byte, room Room) []byte {
	kind, whois := roomKindCode(room.Kind), roomWhoIsCode(room.WhoIs)
	var flags byte
	for _, f := range []struct {
		set bool
		bit byte
	}{
		{room.Public, roomFlagPublic},
		{room.Persistent, roomFlagPersistent},
		{room.MembersOnly, roomFlagMembersOnly},
		{room.Moderated, roomFlagModerated},
		{room.PasswordProtected, roomFlagPasswordProtected},
		{room.AllowInvites, roomFlagAllowInvites},
		{room.ParticipantsChangeSubject, roomFlagParticipantsChangeSubject},
		{room.AllowPM, roomFlagAllowPM},
	} {
		if f.set {
			flags |= f.bit
		}
	}
	dst = append(dst, roomCodecV2, kind, whois, flags)
	dst = appendString(dst, room.Name)
	dst = appendString(dst, room.Description)
	dst = appendString(dst, room.Password)
	dst = appendUvarint(dst, uint64(room.MaxUsers))
	dst = appendUvarint(dst, uint64(room.HistoryLength))
	dst = appendString(dst, room.Subject)
	dst = appendString(dst, room.SubjectBy)
	dst = appendVarint(dst, room.SubjectSet.UnixMicro())

	dst = appendUvarint(dst, uint64(len(room.Affiliations)))
	for _, j := range sortedKeys(room.Affiliations) {
		dst = appendString(dst, j)
		dst = append(dst, affiliationCode(room.Affiliations[j]))
	}
	dst = appendUvarint(dst, uint64(len(room.Nicks)))
	for _, j := range sortedKeys(room.Nicks) {
		dst = appendString(dst, j)
		dst = appendString(dst, room.Nicks[j])
	}
	dst = appendUvarint(dst, uint64(len(room.Access)))
	for _, a := range room.Access {
		dst = appendString(dst, a)
	}

	dst = appendString(dst, room.IssueKey)
	dst = appendVarint(dst, room.Created.UnixMicro())
	dst = appendString(dst, room.Creator)
	return appendString(dst, room.SubjectByJID)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// decodeRoom decodes a rooms value. JID is left empty; empty maps and
// lists are nil. Besides the layout it checks everything Put checks, so a
// decoded room can be stored again. The result does not alias v.
func decodeRoom(v []byte) (Room, error) {
	if len(v) > MaxRoomRecordLen {
		return Room{}, fmt.Errorf("%w: room record of %d bytes", ErrCorrupt, len(v))
	}
	d := decoder{buf: v}
	ver := d.byte()
	if d.err == nil && ver != roomCodecV1 && ver != roomCodecV2 {
		return Room{}, fmt.Errorf("%w: room codec version %d unknown", ErrCorrupt, ver)
	}
	var room Room
	kind, whois := d.byte(), d.byte()
	room.Kind, room.WhoIs = roomKindName(kind), roomWhoIsName(whois)
	if d.err == nil && (room.Kind == "" || room.WhoIs == "") {
		d.fail(fmt.Errorf("%w: room kind %d or whois %d unknown", ErrCorrupt, kind, whois))
	}
	flags := d.byte()
	room.Public = flags&roomFlagPublic != 0
	room.Persistent = flags&roomFlagPersistent != 0
	room.MembersOnly = flags&roomFlagMembersOnly != 0
	room.Moderated = flags&roomFlagModerated != 0
	room.PasswordProtected = flags&roomFlagPasswordProtected != 0
	room.AllowInvites = flags&roomFlagAllowInvites != 0
	room.ParticipantsChangeSubject = flags&roomFlagParticipantsChangeSubject != 0
	room.AllowPM = flags&roomFlagAllowPM != 0

	room.Name = d.string()
	room.Description = d.string()
	room.Password = d.string()
	room.MaxUsers = d.int()
	room.HistoryLength = d.int()
	room.Subject = d.string()
	room.SubjectBy = d.string()
	subjectSet := d.varint()

	if n := d.count("room affiliations", MaxRoomAffiliations); n > 0 {
		room.Affiliations = make(map[string]string, n)
		prev := ""
		for i := range n {
			j := d.string()
			code := d.byte()
			if d.err != nil {
				break
			}
			if i > 0 && j <= prev {
				d.fail(fmt.Errorf("%w: room affiliations not in strictly increasing order", ErrCorrupt))
				break
			}
			aff := affiliationName(code)
			if aff == "" {
				d.fail(fmt.Errorf("%w: affiliation %d", ErrCorrupt, code))
				break
			}
			room.Affiliations[j], prev = aff, j
		}
	}
	if n := d.count("room nicks", MaxRoomNicks); n > 0 {
		room.Nicks = make(map[string]string, n)
		prev := ""
		for i := range n {
			j, nick := d.string(), d.string()
			if d.err != nil {
				break
			}
			if i > 0 && j <= prev {
				d.fail(fmt.Errorf("%w: room nicks not in strictly increasing order", ErrCorrupt))
				break
			}
			room.Nicks[j], prev = nick, j
		}
	}
	if n := d.count("room access entries", MaxRoomAccess); n > 0 {
		room.Access = make([]string, 0, n)
		for range n {
			room.Access = append(room.Access, d.string())
		}
	}

	room.IssueKey = d.string()
	created := d.varint()
	room.Creator = d.string()
	if ver == roomCodecV2 {
		room.SubjectByJID = d.string()
	}
	if err := d.done(); err != nil {
		return Room{}, fmt.Errorf("room: %w", err)
	}
	room.SubjectSet = time.UnixMicro(subjectSet).UTC()
	room.Created = time.UnixMicro(created).UTC()
	if err := room.Validate(); err != nil {
		return Room{}, fmt.Errorf("%w: room: %v", ErrCorrupt, err)
	}
	return room, nil
}

// count reads the length of a list of at most limit entries. Each entry
// takes at least one byte, so a count beyond the remaining input is
// rejected before anything is allocated.
func (d *decoder) count(what string, limit int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(limit) || n > uint64(len(d.buf)) {
		d.fail(fmt.Errorf("%w: %d %s in %d bytes (at most %d)", ErrCorrupt, n, what, len(d.buf), limit))
		return 0
	}
	return int(n)
}

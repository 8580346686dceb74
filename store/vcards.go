package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"
)

// Codec versions: the first byte of every value in vcard and
// vcard_profile.
const (
	vcardCodecV1   = 1
	profileCodecV1 = 1
)

// Profile is what the user directory searches in an account's vCard: a
// few fields taken from it when it is stored.
type Profile struct {
	FullName string // FN
	Given    string // N/GIVEN
	Family   string // N/FAMILY
	Nick     string // NICKNAME
	OrgUnit  string // ORG/ORGUNIT, the department
	Emails   []string
	Phones   []string // TEL/NUMBER: extensions and phone numbers
}

// IsZero reports whether p holds nothing.
func (p Profile) IsZero() bool {
	return p.FullName == "" && p.Given == "" && p.Family == "" && p.Nick == "" &&
		p.OrgUnit == "" && len(p.Emails) == 0 && len(p.Phones) == 0
}

// VCards is the vCard sub-store (XEP-0054): bucket "vcard", keyed
// lp(owner), holds each account's vCard as XML; bucket "vcard_profile",
// keyed like users (lp(host) ‖ local), its Profile, so that a directory
// search reads small records in the users' order. Get it from DB.VCards.
type VCards struct {
	db *DB
}

// Set replaces owner's vCard with the serialised vCard element and its
// profile; an empty vcard removes both. It returns ErrNotFound if owner is
// not an account, so that a session outliving its account's removal
// stores nothing a later account of the same name would inherit.
func (v *VCards) Set(ctx context.Context, owner string, vcard []byte, p Profile) error {
	return v.Update(ctx, owner, func([]byte) ([]byte, Profile, error) { return vcard, p, nil })
}

// Update replaces owner's vCard with what edit makes of the stored one
// (nil when there is none), in one transaction: a change made meanwhile is
// not lost. edit may return an error to change nothing. An empty result
// removes the vCard and its profile. It returns ErrNotFound if owner is
// not an account.
func (v *VCards) Update(ctx context.Context, owner string, edit func(old []byte) ([]byte, Profile, error)) error {
	host, local, err := splitOwner(owner)
	if err != nil {
		return fmt.Errorf("store: set vcard: %w", err)
	}
	err = v.db.update(ctx, func(tx *bbolt.Tx) error {
		if ok, err := accountExists(tx, owner); err != nil {
			return err
		} else if !ok {
			return ErrNotFound
		}
		b, err := bucket(tx, bucketVCard)
		if err != nil {
			return err
		}
		var old []byte
		if val := b.Get(lp(owner)); val != nil {
			if old, err = decodeVCard(val); err != nil {
				return err
			}
		}
		vcard, p, err := edit(old)
		if err != nil {
			return err
		}
		if len(vcard) == 0 {
			return deleteVCardOwner(tx, owner)
		}
		if err := b.Put(lp(owner), append([]byte{vcardCodecV1}, vcard...)); err != nil {
			return err
		}
		pb, err := bucket(tx, bucketVCardProfile)
		if err != nil {
			return err
		}
		if p.IsZero() {
			return pb.Delete(userKey(host, local))
		}
		return pb.Put(userKey(host, local), encodeProfile(nil, p))
	})
	if err != nil {
		return fmt.Errorf("store: set vcard of %s: %w", owner, err)
	}
	return nil
}

// decodeVCard returns a copy of the vCard in a stored value.
func decodeVCard(val []byte) ([]byte, error) {
	return decodeVersionedBytes(val, vcardCodecV1, "vcard")
}

// Get returns owner's vCard as stored by Set, or ErrNotFound. The result
// does not alias the database.
func (v *VCards) Get(ctx context.Context, owner string) ([]byte, error) {
	if err := validateJID("owner", owner); err != nil {
		return nil, fmt.Errorf("store: get vcard: %w", err)
	}
	var out []byte
	err := v.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketVCard)
		if err != nil {
			return err
		}
		val := b.Get(lp(owner))
		if val == nil {
			return ErrNotFound
		}
		out, err = decodeVCard(val)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: get vcard of %s: %w", owner, err)
	}
	return out, nil
}

// Directory calls fn with each account of host, in the byte order of
// localparts, and its profile (zero without a vCard, or when the stored profile cannot be
// decoded: that is logged, and the walk goes on), until fn returns false.
// All calls happen within one read transaction: fn must not use the store.
func (v *VCards) Directory(ctx context.Context, host string, fn func(local string, p Profile) bool) error {
	if err := validateJIDPart("host", host); err != nil {
		return fmt.Errorf("store: directory: %w", err)
	}
	prefix := lp(host)
	err := v.db.view(ctx, func(tx *bbolt.Tx) error {
		users, err := bucket(tx, bucketUsers)
		if err != nil {
			return err
		}
		profiles, err := bucket(tx, bucketVCardProfile)
		if err != nil {
			return err
		}
		c := users.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			var p Profile
			if val := profiles.Get(k); val != nil {
				if p, err = decodeProfile(val); err != nil {
					// One damaged record must not take the whole
					// directory down; its user is listed by name.
					v.db.log.Error("store: directory profile unreadable", "host", host, "local", string(k[len(prefix):]), "err", err)
					p = Profile{}
				}
			}
			if !fn(string(k[len(prefix):]), p) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: directory of %s: %w", host, err)
	}
	return nil
}

// deleteVCardOwner removes owner's vCard and profile.
func deleteVCardOwner(tx *bbolt.Tx, owner string) error {
	host, local, err := splitOwner(owner)
	if err != nil {
		return err
	}
	b, err := bucket(tx, bucketVCard)
	if err != nil {
		return err
	}
	if err := b.Delete(lp(owner)); err != nil {
		return err
	}
	pb, err := bucket(tx, bucketVCardProfile)
	if err != nil {
		return err
	}
	return pb.Delete(userKey(host, local))
}

// splitOwner validates a bare JID local@host and returns its parts.
func splitOwner(owner string) (host, local string, err error) {
	if err := validateJID("owner", owner); err != nil {
		return "", "", err
	}
	local, host, ok := strings.Cut(owner, "@")
	if !ok || local == "" || host == "" {
		return "", "", fmt.Errorf("%w: owner %q is not local@host", ErrInvalid, owner)
	}
	return host, local, nil
}

// encodeProfile appends:
//
//	byte    codec version (1)
//	bytes   FullName, Given, Family, Nick, OrgUnit
//	uvarint n, then n bytes: Emails
//	uvarint n, then n bytes: Phones
func encodeProfile(dst []byte, p Profile) []byte {
	dst = append(dst, profileCodecV1)
	for _, s := range []string{p.FullName, p.Given, p.Family, p.Nick, p.OrgUnit} {
		dst = appendString(dst, s)
	}
	for _, list := range [][]string{p.Emails, p.Phones} {
		dst = appendUvarint(dst, uint64(len(list)))
		for _, s := range list {
			dst = appendString(dst, s)
		}
	}
	return dst
}

// decodeProfile decodes a profile value; empty lists decode as nil.
func decodeProfile(v []byte) (Profile, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != profileCodecV1 {
		return Profile{}, fmt.Errorf("%w: profile codec version %d unknown", ErrCorrupt, ver)
	}
	var p Profile
	for _, s := range []*string{&p.FullName, &p.Given, &p.Family, &p.Nick, &p.OrgUnit} {
		*s = d.string()
	}
	for _, list := range []*[]string{&p.Emails, &p.Phones} {
		n := d.uvarint()
		if d.err == nil && n > uint64(len(d.buf)) {
			// Every entry takes at least one byte: a count beyond the
			// rest is corrupt, not a reason to allocate.
			return Profile{}, fmt.Errorf("%w: profile list of %d entries in %d bytes", ErrCorrupt, n, len(d.buf))
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			*list = append(*list, d.string())
		}
	}
	if err := d.done(); err != nil {
		return Profile{}, fmt.Errorf("profile: %w", err)
	}
	return p, nil
}

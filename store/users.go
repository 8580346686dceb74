package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// maxJIDPart is the RFC 7622 §3.2/§3.3 limit on a domainpart or localpart,
// in bytes.
const maxJIDPart = 1023

// maxJID is the longest JID in bytes: three RFC 7622 parts of maxJIDPart
// bytes plus the '@' and '/' separators. Owners, contacts and blocked JIDs
// are checked against it.
const maxJID = 3*maxJIDPart + 2

// userCodecV1 is the first byte of every value in the users bucket.
const userCodecV1 = 1

// ScramCredential is what RFC 5802 §3 recommends a server keep for one hash
// function: the salt, the iteration count, StoredKey = H(ClientKey) and
// ServerKey. Neither the password nor the salted password is stored.
//
// The zero value means "no credential for this hash". A set credential has a
// non-empty salt, Iterations > 0, and keys of the hash's output size.
type ScramCredential struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// IsZero reports whether c is the zero credential ("not set").
func (c ScramCredential) IsZero() bool {
	return len(c.Salt) == 0 && c.Iterations == 0 && len(c.StoredKey) == 0 && len(c.ServerKey) == 0
}

// validate checks c for a hash with keyLen-byte output. It reports whether
// c is set.
func (c ScramCredential) validate(name string, keyLen int) (bool, error) {
	if c.IsZero() {
		return false, nil
	}
	switch {
	case len(c.Salt) == 0:
		return false, fmt.Errorf("%s credential: empty salt: %w", name, ErrInvalid)
	case c.Iterations <= 0:
		return false, fmt.Errorf("%s credential: iterations %d: %w", name, c.Iterations, ErrInvalid)
	case len(c.StoredKey) != keyLen || len(c.ServerKey) != keyLen:
		return false, fmt.Errorf("%s credential: keys must be %d bytes, got %d and %d: %w",
			name, keyLen, len(c.StoredKey), len(c.ServerKey), ErrInvalid)
	}
	return true, nil
}

// validateCredentials requires at least one credential and both to be
// either zero or complete.
func validateCredentials(sha1Cred, sha256Cred ScramCredential) error {
	set1, err := sha1Cred.validate("SCRAM-SHA-1", sha1.Size)
	if err != nil {
		return err
	}
	set256, err := sha256Cred.validate("SCRAM-SHA-256", sha256.Size)
	if err != nil {
		return err
	}
	if !set1 && !set256 {
		return fmt.Errorf("no credential: %w", ErrInvalid)
	}
	return nil
}

// User is one account. Host and Local are the domainpart and localpart,
// already normalised (PRECIS) by the caller; the store compares bytes.
type User struct {
	Host, Local string
	SHA1        ScramCredential
	SHA256      ScramCredential
	// Created is stored with microsecond precision and read back in UTC.
	Created time.Time
}

// Users is the sub-store of user accounts (bucket "users"). Get it from
// DB.Users.
type Users struct {
	db *DB
}

// validateJIDPart checks a domainpart or localpart for use in a key.
func validateJIDPart(what, s string) error {
	if s == "" || len(s) > maxJIDPart {
		return fmt.Errorf("%s must be 1 to %d bytes, got %d: %w", what, maxJIDPart, len(s), ErrInvalid)
	}
	return nil
}

// validateJID checks a JID string (bare, full or domain, as given) for use
// in a key.
func validateJID(what, s string) error {
	if s == "" || len(s) > maxJID {
		return fmt.Errorf("%s must be 1 to %d bytes, got %d: %w", what, maxJID, len(s), ErrInvalid)
	}
	return nil
}

func validateUserKey(host, local string) error {
	if err := validateJIDPart("host", host); err != nil {
		return err
	}
	return validateJIDPart("localpart", local)
}

// Create stores a new user. It fails with ErrExists if host/local already
// exists and with ErrInvalid for empty parts or incomplete credentials. A
// zero Created is set to the current time.
func (u *Users) Create(ctx context.Context, user User) error {
	if err := validateUserKey(user.Host, user.Local); err != nil {
		return fmt.Errorf("store: create user: %w", err)
	}
	if err := validateCredentials(user.SHA1, user.SHA256); err != nil {
		return fmt.Errorf("store: create user %s@%s: %w", user.Local, user.Host, err)
	}
	if user.Created.IsZero() {
		user.Created = time.Now()
	}
	val, err := encodeUser(nil, user)
	if err != nil {
		return fmt.Errorf("store: create user %s@%s: %w", user.Local, user.Host, err)
	}
	key := userKey(user.Host, user.Local)
	err = u.db.updateBatched(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketUsers)
		if err != nil {
			return err
		}
		if b.Get(key) != nil {
			return refuse(ErrExists)
		}
		return b.Put(key, val)
	})
	if err != nil {
		return fmt.Errorf("store: create user %s@%s: %w", user.Local, user.Host, err)
	}
	return nil
}

// SetCredentials replaces both SCRAM credentials of an existing user (pass a
// zero ScramCredential to drop one hash; at least one must remain). It fails
// with ErrNotFound if the user does not exist.
func (u *Users) SetCredentials(ctx context.Context, host, local string, sha1Cred, sha256Cred ScramCredential) error {
	if err := validateUserKey(host, local); err != nil {
		return fmt.Errorf("store: set credentials: %w", err)
	}
	if err := validateCredentials(sha1Cred, sha256Cred); err != nil {
		return fmt.Errorf("store: set credentials %s@%s: %w", local, host, err)
	}
	key := userKey(host, local)
	err := u.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketUsers)
		if err != nil {
			return err
		}
		old := b.Get(key)
		if old == nil {
			return ErrNotFound
		}
		user, err := decodeUser(old)
		if err != nil {
			return err
		}
		user.SHA1, user.SHA256 = sha1Cred, sha256Cred
		val, err := encodeUser(nil, user)
		if err != nil {
			return err
		}
		return b.Put(key, val)
	})
	if err != nil {
		return fmt.Errorf("store: set credentials %s@%s: %w", local, host, err)
	}
	return nil
}

// Get returns the user with its credentials, or ErrNotFound.
func (u *Users) Get(ctx context.Context, host, local string) (User, error) {
	if err := validateUserKey(host, local); err != nil {
		return User{}, fmt.Errorf("store: get user: %w", err)
	}
	var user User
	err := u.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketUsers)
		if err != nil {
			return err
		}
		v := b.Get(userKey(host, local))
		if v == nil {
			return ErrNotFound
		}
		user, err = decodeUser(v)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("store: get user %s@%s: %w", local, host, err)
	}
	user.Host, user.Local = host, local
	return user, nil
}

// Exists reports whether the user exists.
func (u *Users) Exists(ctx context.Context, host, local string) (bool, error) {
	if err := validateUserKey(host, local); err != nil {
		return false, fmt.Errorf("store: user exists: %w", err)
	}
	var ok bool
	err := u.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketUsers)
		if err != nil {
			return err
		}
		ok = b.Get(userKey(host, local)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: user exists %s@%s: %w", local, host, err)
	}
	return ok, nil
}

// Delete removes the user, or fails with ErrNotFound. In the same
// transaction it removes everything the sub-stores keep for the account
// local@host: roster items, tombstones and version, pending subscription
// requests, offline messages, blocklist, last activity, presence override,
// the message archive with its conversations, the rooms it follows, its
// personal eventing nodes, its vCard with its directory profile, its
// private XML, its push services and its uploads' quota index (the slots
// and files stay until they expire).
// It also releases the other accounts' rosters and requests from it
// (releaseContacts), so that an account created later under the same
// name inherits none of their subscriptions, pending requests or
// pre-approvals; it returns what that changed, for a running server to
// tell those accounts (XEP-0077 §3.2) once the delete is committed.
func (u *Users) Delete(ctx context.Context, host, local string) ([]Released, error) {
	if err := validateUserKey(host, local); err != nil {
		return nil, fmt.Errorf("store: delete user: %w", err)
	}
	key := userKey(host, local)
	var released []Released
	err := u.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketUsers)
		if err != nil {
			return err
		}
		if b.Get(key) == nil {
			return ErrNotFound
		}
		if released, err = releaseContacts(tx, local+"@"+host); err != nil {
			return err
		}
		if err := deleteAccountData(tx, u.db.archive, local+"@"+host); err != nil {
			return err
		}
		return b.Delete(key)
	})
	if err != nil {
		return nil, fmt.Errorf("store: delete user %s@%s: %w", local, host, err)
	}
	return released, nil
}

// Released is what deleting an account changed for one other owner: its
// roster item for the account, and its pending request from it.
type Released struct {
	// Owner is the bare JID whose roster or requests changed.
	Owner string
	// Before is Owner's item for the deleted account as it was (Contact
	// empty if Owner had none).
	Before RosterItem
	// After is the item as it is now (subscription none, no pending
	// request, no pre-approval), and Version Owner's roster version
	// after the change; both zero if the item did not change.
	After   RosterItem
	Version uint64
	// RequestDropped reports that Owner's pending subscription request
	// from the deleted account was removed.
	RequestDropped bool
}

// releaseContacts ends every subscription between owner, an account being
// deleted, and the rosters of others: each item for owner gets
// subscription none, no pending request and no pre-approval (keeping its
// name and groups), which is what the unsubscribe and unsubscribed of RFC
// 6121 §3.2–§3.3 leave, and each pending request from owner is dropped.
// It scans the roster and request buckets whole: an item for owner need
// not have a counterpart in owner's own roster (a pre-approval, RFC 6121
// §3.4, or a roster edited while the other side was not told). Deleting
// an account is rare; the scan compares key suffixes only.
func releaseContacts(tx *bbolt.Tx, owner string) ([]Released, error) {
	suffix := []byte(owner)
	// ownerOf returns the owner of a key lp(owner) ‖ contact whose
	// contact is the deleted account, or "".
	ownerOf := func(k []byte) string {
		if !bytes.HasSuffix(k, suffix) {
			return ""
		}
		o, rest, err := readBytes(k)
		if err != nil || len(rest) != len(suffix) || string(o) == owner {
			return ""
		}
		return string(o)
	}
	// Every owner concerned, and whether its request from the account
	// is dropped. Keys are collected before anything is written.
	dropped := map[string]bool{}
	items, err := bucket(tx, bucketRoster)
	if err != nil {
		return nil, err
	}
	c := items.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if o := ownerOf(k); o != "" {
			dropped[o] = false
		}
	}
	reqs, err := bucket(tx, bucketSubRequests)
	if err != nil {
		return nil, err
	}
	c = reqs.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if o := ownerOf(k); o != "" {
			dropped[o] = true
		}
	}
	var out []Released
	for _, o := range slices.Sorted(maps.Keys(dropped)) {
		r := Released{Owner: o, RequestDropped: dropped[o]}
		if r.RequestDropped {
			if err := reqs.Delete(append(lp(o), owner...)); err != nil {
				return nil, err
			}
		}
		rt, err := openRosterTx(tx, o)
		if err != nil {
			return nil, err
		}
		after, ver, changed, err := rt.update(owner, func(item *RosterItem, exists bool) (UpdateOp, error) {
			if !exists {
				return UpdateKeep, nil
			}
			r.Before = *item
			item.Subscription, item.Ask, item.Approved = SubNone, false, false
			return UpdatePut, nil
		})
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", o, err)
		}
		if changed {
			r.After, r.Version = after, ver
		}
		if changed || r.RequestDropped {
			out = append(out, r)
		}
	}
	return out, nil
}

// deleteAccountData removes every record that a sub-store keys by owner
// (the bare JID local@host). Add each new per-account sub-store here.
func deleteAccountData(tx *bbolt.Tx, a *Archive, owner string) error {
	for _, del := range []func(*bbolt.Tx, string) error{
		deleteRosterOwner,
		deleteSubRequestsOwner,
		deleteOfflineOwner,
		deleteBlocklistOwner,
		deleteActivityOwner,
		deletePresenceOverrideOwner,
		a.deleteOwner,
		deleteArchivePrefsOwner,
		deleteRoomInboxOwner,
		deletePEPOwner,
		deleteVCardOwner,
		deletePrivateOwner,
		deletePushOwner,
		deleteUploadsOwner,
	} {
		if err := del(tx, owner); err != nil {
			return err
		}
	}
	return nil
}

// List returns the localparts of host's users in byte order (nil if none).
// host must not be empty; use ListAll for every host.
func (u *Users) List(ctx context.Context, host string) ([]string, error) {
	if err := validateJIDPart("host", host); err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	var locals []string
	prefix := lp(host)
	err := u.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketUsers)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			locals = append(locals, string(k[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list users of %s: %w", host, err)
	}
	return locals, nil
}

// ListAll returns every user of every host, sorted by host then localpart
// (byte order). Credentials are left zero: this is for listings, not for
// authentication; use Get for one user's credentials.
func (u *Users) ListAll(ctx context.Context) ([]User, error) {
	var users []User
	err := u.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketUsers)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			host, local, err := parseUserKey(k)
			if err != nil {
				return err
			}
			user, err := decodeUser(v)
			if err != nil {
				return fmt.Errorf("user %s@%s: %w", local, host, err)
			}
			users = append(users, User{Host: host, Local: local, Created: user.Created})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list all users: %w", err)
	}
	// Keys group by host but order hosts by length first (lp encoding);
	// present them in plain byte order.
	slices.SortFunc(users, func(a, b User) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Local, b.Local))
	})
	return users, nil
}

// Count returns the number of users of host, or of all hosts if host is "".
func (u *Users) Count(ctx context.Context, host string) (int, error) {
	var prefix []byte
	if host != "" {
		if err := validateJIDPart("host", host); err != nil {
			return 0, fmt.Errorf("store: count users: %w", err)
		}
		prefix = lp(host)
	}
	n, err := u.db.countKeys(ctx, bucketUsers, prefix)
	if err != nil {
		return 0, fmt.Errorf("store: count users of %q: %w", host, err)
	}
	return n, nil
}

// accountExists reports whether owner (local@host) is an account, inside
// tx.
func accountExists(tx *bbolt.Tx, owner string) (bool, error) {
	users, err := bucket(tx, bucketUsers)
	if err != nil {
		return false, err
	}
	local, host, ok := strings.Cut(owner, "@")
	return ok && users.Get(userKey(host, local)) != nil, nil
}

// userKey returns lp(host) ‖ local.
func userKey(host, local string) []byte {
	k := make([]byte, 0, maxVarintLen+len(host)+len(local))
	k = appendString(k, host)
	return append(k, local...)
}

// parseUserKey is the inverse of userKey. Both parts must be non-empty.
func parseUserKey(k []byte) (host, local string, err error) {
	h, rest, err := readBytes(k)
	if err != nil {
		return "", "", fmt.Errorf("user key: %w", err)
	}
	if len(h) == 0 || len(rest) == 0 {
		return "", "", fmt.Errorf("%w: user key with empty host or localpart", ErrCorrupt)
	}
	return string(h), string(rest), nil
}

// encodeUser appends the value encoding of user (everything but Host and
// Local, which are in the key):
//
//	byte    codec version (1)
//	cred    SCRAM-SHA-1
//	cred    SCRAM-SHA-256
//	varint  Created, Unix microseconds
//
// where cred = bytes(salt) uvarint(iterations) bytes(StoredKey)
// bytes(ServerKey) and bytes(x) = uvarint(len(x)) ‖ x.
func encodeUser(dst []byte, user User) ([]byte, error) {
	dst = append(dst, userCodecV1)
	var err error
	if dst, err = appendCredential(dst, user.SHA1); err != nil {
		return nil, err
	}
	if dst, err = appendCredential(dst, user.SHA256); err != nil {
		return nil, err
	}
	return appendVarint(dst, user.Created.UnixMicro()), nil
}

func appendCredential(dst []byte, c ScramCredential) ([]byte, error) {
	if c.Iterations < 0 {
		return nil, fmt.Errorf("negative iteration count %d: %w", c.Iterations, ErrInvalid)
	}
	dst = appendBytes(dst, c.Salt)
	dst = appendUvarint(dst, uint64(c.Iterations))
	dst = appendBytes(dst, c.StoredKey)
	return appendBytes(dst, c.ServerKey), nil
}

// decodeUser decodes a users-bucket value. Host and Local are left empty.
// The result does not alias v.
func decodeUser(v []byte) (User, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != userCodecV1 {
		return User{}, fmt.Errorf("%w: user codec version %d unknown", ErrCorrupt, ver)
	}
	var user User
	user.SHA1 = d.credential()
	user.SHA256 = d.credential()
	micros := d.varint()
	if err := d.done(); err != nil {
		return User{}, fmt.Errorf("user: %w", err)
	}
	user.Created = time.UnixMicro(micros).UTC()
	return user, nil
}

func (d *decoder) credential() ScramCredential {
	var c ScramCredential
	c.Salt = d.bytes()
	c.Iterations = d.int()
	c.StoredKey = d.bytes()
	c.ServerKey = d.bytes()
	return c
}

package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"
)

// uploadCodecV1 is the first byte of every value in uploads and
// uploads_owner.
const uploadCodecV1 = 1

// UploadIDLen is the length of an upload slot id: 32 lowercase hex digits
// (128 bits).
const UploadIDLen = 32

// Limits of an upload record's fields (ErrInvalid beyond them).
const (
	// MaxUploadName bounds a file name, in bytes.
	MaxUploadName = 1024
	// MaxUploadContentType bounds a content type, in bytes.
	MaxUploadContentType = 255
)

// UploadState is the state of an upload slot.
type UploadState uint8

// Upload states (0 is invalid).
const (
	// UploadReserved: the slot was handed out, no file was stored yet.
	UploadReserved UploadState = 1
	// UploadDone: the file was stored and is served.
	UploadDone UploadState = 2
)

// Upload is an XEP-0363 upload slot and, once used, the file's record.
type Upload struct {
	// ID is the slot id (UploadIDLen lowercase hex digits).
	ID string
	// Owner is the bare JID of the account that requested the slot.
	Owner string
	// Name is the file name (sanitised by the caller).
	Name string
	// Size is the file's size in bytes.
	Size int64
	// ContentType is the declared media type; "" if none was declared.
	ContentType string
	// Created is when the slot was reserved (microseconds, UTC); a zero
	// Created is stored as the current time.
	Created time.Time
	// State is UploadReserved or UploadDone.
	State UploadState
}

// Uploads keeps XEP-0363 upload slots and the records of uploaded files
// (bucket uploads: slot id → record). Each account's slots are also
// indexed in uploads_owner (lp(owner) ‖ id → version ‖ uvarint(size)),
// which answers Used, the quota check, with one prefix seek that reads
// no record. Expired reads the whole uploads bucket: it runs once an hour
// for the cleanup, and a time index would cost every reservation a third
// write. Get it from DB.Uploads.
type Uploads struct {
	db *DB
}

// ValidUploadID reports whether id has the form of a slot id.
func ValidUploadID(id string) bool {
	if len(id) != UploadIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func validateUpload(up Upload) error {
	switch {
	case !ValidUploadID(up.ID):
		return fmt.Errorf("slot id %q is not %d lowercase hex digits: %w", up.ID, UploadIDLen, ErrInvalid)
	case up.Name == "" || len(up.Name) > MaxUploadName:
		return fmt.Errorf("file name must be 1 to %d bytes, got %d: %w", MaxUploadName, len(up.Name), ErrInvalid)
	case len(up.ContentType) > MaxUploadContentType:
		return fmt.Errorf("content type longer than %d bytes: %w", MaxUploadContentType, ErrInvalid)
	case up.Size < 0:
		return fmt.Errorf("negative size %d: %w", up.Size, ErrInvalid)
	}
	return validateJID("owner", up.Owner)
}

// Reserve stores a new slot in state UploadReserved. quota > 0 bounds the
// sizes of the owner's slots together, this one included: beyond it
// Reserve fails with ErrQuota (checked in the same transaction as the
// write, so concurrent requests cannot overshoot it). An existing id is
// ErrExists.
func (u *Uploads) Reserve(ctx context.Context, up Upload, quota int64) error {
	if up.Created.IsZero() {
		up.Created = time.Now()
	}
	up.State = UploadReserved
	if err := validateUpload(up); err != nil {
		return fmt.Errorf("store: reserve upload: %w", err)
	}
	err := u.db.update(ctx, func(tx *bbolt.Tx) error {
		b, idx, err := uploadBuckets(tx)
		if err != nil {
			return err
		}
		if hasKey(b, []byte(up.ID)) {
			return ErrExists
		}
		if quota > 0 {
			used, err := usedBy(idx, up.Owner)
			if err != nil {
				return err
			}
			if charge := max(up.Size, UploadMinCharge); used > quota || charge > quota-used {
				return fmt.Errorf("%w: %d of %d bytes used", ErrQuota, used, quota)
			}
		}
		if err := b.Put([]byte(up.ID), encodeUpload(nil, up)); err != nil {
			return err
		}
		return idx.Put(uploadOwnerKey(up.Owner, up.ID), encodeUploadSize(nil, up.Size))
	})
	if err != nil {
		return fmt.Errorf("store: reserve upload %s for %s: %w", up.ID, up.Owner, err)
	}
	return nil
}

// Get returns the slot id, or ErrNotFound.
func (u *Uploads) Get(ctx context.Context, id string) (Upload, error) {
	var up Upload
	err := u.db.view(ctx, func(tx *bbolt.Tx) error {
		b, _, err := uploadBuckets(tx)
		if err != nil {
			return err
		}
		up, err = getUpload(b, id)
		return err
	})
	if err != nil {
		return Upload{}, fmt.Errorf("store: get upload %q: %w", id, err)
	}
	return up, nil
}

// MarkUploaded moves slot id from UploadReserved to UploadDone, setting
// its content type to contentType if none was declared. It fails with
// ErrNotFound for an unknown id and ErrExists for a slot already used.
func (u *Uploads) MarkUploaded(ctx context.Context, id, contentType string) error {
	if len(contentType) > MaxUploadContentType {
		return fmt.Errorf("store: mark upload %q: content type longer than %d bytes: %w", id, MaxUploadContentType, ErrInvalid)
	}
	err := u.db.update(ctx, func(tx *bbolt.Tx) error {
		b, _, err := uploadBuckets(tx)
		if err != nil {
			return err
		}
		up, err := getUpload(b, id)
		if err != nil {
			return err
		}
		if up.State != UploadReserved {
			return ErrExists
		}
		up.State = UploadDone
		if up.ContentType == "" {
			up.ContentType = contentType
		}
		return b.Put([]byte(id), encodeUpload(nil, up))
	})
	if err != nil {
		return fmt.Errorf("store: mark upload %q: %w", id, err)
	}
	return nil
}

// Delete removes slot id and its index entry; ErrNotFound if absent. A
// record that does not decode goes too, with the index entries that end in
// its id (a scan of the index: such a record names no owner).
func (u *Uploads) Delete(ctx context.Context, id string) error {
	err := u.db.update(ctx, func(tx *bbolt.Tx) error {
		b, idx, err := uploadBuckets(tx)
		if err != nil {
			return err
		}
		up, err := getUpload(b, id)
		switch {
		case errors.Is(err, ErrNotFound):
			return err
		case err == nil:
			err = idx.Delete(uploadOwnerKey(up.Owner, id))
		default:
			err = deleteIDSuffix(idx, id)
		}
		if err != nil {
			return err
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("store: delete upload %q: %w", id, err)
	}
	return nil
}

// deleteUploadsOwner removes owner's quota index (Users.Delete): a later
// account of the same name starts with nothing used. The slots and
// their files stay, and are served, until they expire: links to them are
// in other users' conversations and archives.
func deleteUploadsOwner(tx *bbolt.Tx, owner string) error {
	idx, err := bucket(tx, bucketUploadsOwner)
	if err != nil {
		return err
	}
	return deletePrefix(idx, lp(owner))
}

// deleteIDSuffix deletes the index entries of slot id, whoever's.
func deleteIDSuffix(idx *bbolt.Bucket, id string) error {
	var keys [][]byte
	c := idx.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) > len(id) && string(k[len(k)-len(id):]) == id {
			keys = append(keys, bytes.Clone(k))
		}
	}
	for _, k := range keys {
		if err := idx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Used returns the bytes of owner's slots, used or not.
func (u *Uploads) Used(ctx context.Context, owner string) (int64, error) {
	if err := validateJID("owner", owner); err != nil {
		return 0, fmt.Errorf("store: upload usage: %w", err)
	}
	var used int64
	err := u.db.view(ctx, func(tx *bbolt.Tx) error {
		_, idx, err := uploadBuckets(tx)
		if err != nil {
			return err
		}
		used, err = usedBy(idx, owner)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: upload usage of %s: %w", owner, err)
	}
	return used, nil
}

// Expired returns up to max slots to clean up: uploaded files created
// before doneBefore and slots still reserved created before
// reservedBefore (a zero time selects none of that state). It scans the
// uploads bucket; a record that does not decode is returned with only its
// ID set, so that the caller can Delete it.
func (u *Uploads) Expired(ctx context.Context, doneBefore, reservedBefore time.Time, max int) ([]Upload, error) {
	var out []Upload
	err := u.db.view(ctx, func(tx *bbolt.Tx) error {
		b, _, err := uploadBuckets(tx)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			up, err := decodeUpload(v)
			if err != nil {
				u.db.log.Error("store: corrupt upload record", "id", string(k), "err", err)
				out = append(out, Upload{ID: string(k)})
				continue
			}
			up.ID = string(k)
			before := reservedBefore
			if up.State == UploadDone {
				before = doneBefore
			}
			if !before.IsZero() && up.Created.Before(before) {
				out = append(out, up)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: expired uploads: %w", err)
	}
	return out, nil
}

// getUpload reads slot id from the uploads bucket: ErrNotFound if absent,
// ErrCorrupt if it does not decode.
func getUpload(b *bbolt.Bucket, id string) (Upload, error) {
	v := b.Get([]byte(id))
	if v == nil {
		return Upload{}, ErrNotFound
	}
	up, err := decodeUpload(v)
	up.ID = id
	return up, err
}

func uploadBuckets(tx *bbolt.Tx) (records, owners *bbolt.Bucket, err error) {
	if records, err = bucket(tx, bucketUploads); err != nil {
		return nil, nil, err
	}
	owners, err = bucket(tx, bucketUploadsOwner)
	return records, owners, err
}

func uploadOwnerKey(owner, id string) []byte { return append(lp(owner), id...) }

// UploadMinCharge is what each upload counts towards its owner's quota at
// least: empty or tiny files are not free, so a quota also bounds how many
// records and files an account can create.
const UploadMinCharge = 4096

// usedBy sums the charges (sizes, at least UploadMinCharge) in owner's
// index entries.
func usedBy(idx *bbolt.Bucket, owner string) (int64, error) {
	prefix := lp(owner)
	var used int64
	c := idx.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		n, err := decodeVersionedUvarint(v, uploadCodecV1, "upload size")
		if err != nil {
			return 0, err
		}
		n = max(n, UploadMinCharge)
		if n > math.MaxInt64-uint64(used) {
			return math.MaxInt64, nil
		}
		used += int64(n)
	}
	return used, nil
}

func encodeUploadSize(dst []byte, size int64) []byte {
	return appendUvarint(append(dst, uploadCodecV1), uint64(size))
}

// encodeUpload appends (the id is the key):
//
//	byte    codec version (1)
//	byte    state
//	bytes   owner
//	bytes   name
//	uvarint size
//	bytes   content type
//	varint  created, Unix microseconds
func encodeUpload(dst []byte, up Upload) []byte {
	dst = append(dst, uploadCodecV1, byte(up.State))
	dst = appendString(dst, up.Owner)
	dst = appendString(dst, up.Name)
	dst = appendUvarint(dst, uint64(up.Size))
	dst = appendString(dst, up.ContentType)
	return appendVarint(dst, up.Created.UnixMicro())
}

// decodeUpload decodes an uploads value (ID left empty). The result does
// not alias v.
func decodeUpload(v []byte) (Upload, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != uploadCodecV1 {
		return Upload{}, fmt.Errorf("%w: upload codec version %d unknown", ErrCorrupt, ver)
	}
	up := Upload{State: UploadState(d.byte())}
	up.Owner = d.string()
	up.Name = d.string()
	size := d.uvarint()
	up.ContentType = d.string()
	up.Created = time.UnixMicro(d.varint()).UTC()
	if err := d.done(); err != nil {
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	if up.State != UploadReserved && up.State != UploadDone {
		return Upload{}, fmt.Errorf("%w: upload state %d unknown", ErrCorrupt, up.State)
	}
	if size > math.MaxInt64 {
		return Upload{}, fmt.Errorf("%w: upload size %d out of range", ErrCorrupt, size)
	}
	up.Size = int64(size)
	return up, nil
}

package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// This file holds the byte-level building blocks shared by every sub-store:
// length-prefixed strings for keys (lp), big-endian uint64 for ordered ids
// (be64), and a small append/decode pair for values.
//
// All variable-length integers are encoded canonically (minimal length) and
// the decoder rejects non-minimal forms, so a successful decode followed by an
// encode reproduces the input byte for byte. Decoders never panic: every
// length is checked against the remaining input before it is used.

// maxVarintLen is the longest uvarint encoding of a uint64.
const maxVarintLen = binary.MaxVarintLen64

// appendUvarint appends the canonical uvarint encoding of v.
func appendUvarint(dst []byte, v uint64) []byte {
	return binary.AppendUvarint(dst, v)
}

// appendVarint appends the canonical zig-zag varint encoding of v.
func appendVarint(dst []byte, v int64) []byte {
	return binary.AppendVarint(dst, v)
}

// appendBytes appends b as a uvarint length followed by the bytes.
func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// appendString is appendBytes for a string.
func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendBE64 appends v as 8 big-endian bytes, so that byte order equals
// numeric order (ids and timestamps in keys).
func appendBE64(dst []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, v)
}

// idKey returns a new key: prefix ‖ be64(id), in one allocation (prefix
// is left as it is).
func idKey(prefix []byte, id uint64) []byte {
	return appendBE64(append(make([]byte, 0, len(prefix)+8), prefix...), id)
}

// lp returns the length-prefixed encoding of s: uvarint(len(s)) ‖ s.
//
// Because uvarint is a prefix-free code, lp(a) is a prefix of lp(b) ‖ x only
// when a == b. Keys that start with lp(owner) therefore group by owner with
// no risk that owner "x" matches keys of owner "xa".
func lp(s string) []byte {
	return appendString(make([]byte, 0, len(s)+maxVarintLen), s)
}

// be64 returns v as 8 big-endian bytes.
func be64(v uint64) []byte {
	return appendBE64(make([]byte, 0, 8), v)
}

// readUvarint decodes a canonical uvarint from the start of src and returns
// the value and the number of bytes read.
func readUvarint(src []byte) (uint64, int, error) {
	v, n := binary.Uvarint(src)
	switch {
	case n == 0:
		return 0, 0, fmt.Errorf("%w: truncated varint", ErrCorrupt)
	case n < 0:
		return 0, 0, fmt.Errorf("%w: varint overflows 64 bits", ErrCorrupt)
	case n > 1 && src[n-1] == 0:
		// A minimal encoding never ends in a zero continuation group.
		return 0, 0, fmt.Errorf("%w: non-canonical varint", ErrCorrupt)
	}
	return v, n, nil
}

// readVarint decodes a canonical zig-zag varint from the start of src.
func readVarint(src []byte) (int64, int, error) {
	u, n, err := readUvarint(src)
	if err != nil {
		return 0, 0, err
	}
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x, n, nil
}

// readBytes splits a length-prefixed byte string off the front of src. The
// returned b aliases src (no copy); callers that keep it beyond a bbolt
// transaction must copy it.
func readBytes(src []byte) (b, rest []byte, err error) {
	l, n, err := readUvarint(src)
	if err != nil {
		return nil, nil, err
	}
	src = src[n:]
	if l > uint64(len(src)) {
		return nil, nil, fmt.Errorf("%w: length %d exceeds remaining %d bytes", ErrCorrupt, l, len(src))
	}
	return src[:l:l], src[l:], nil
}

// readBE64 splits a big-endian uint64 off the front of src.
func readBE64(src []byte) (uint64, []byte, error) {
	if len(src) < 8 {
		return 0, nil, fmt.Errorf("%w: truncated be64", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(src), src[8:], nil
}

// decoder reads a value encoded with the append helpers. The first error is
// sticky: later reads return zero values, and done reports it. Bytes and
// strings it returns are copies, safe to keep after the transaction ends.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.buf = nil
}

// byte reads one raw byte.
func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.fail(fmt.Errorf("%w: truncated", ErrCorrupt))
		return 0
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n, err := readUvarint(d.buf)
	if err != nil {
		d.fail(err)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n, err := readVarint(d.buf)
	if err != nil {
		d.fail(err)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// int reads a uvarint that must fit in a non-negative int.
func (d *decoder) int() int {
	v := d.uvarint()
	if v > math.MaxInt {
		d.fail(fmt.Errorf("%w: integer %d out of range", ErrCorrupt, v))
		return 0
	}
	return int(v)
}

// bytes reads a length-prefixed byte string and returns a copy of it, or nil
// when it is empty.
func (d *decoder) bytes() []byte {
	if d.err != nil {
		return nil
	}
	b, rest, err := readBytes(d.buf)
	if err != nil {
		d.fail(err)
		return nil
	}
	d.buf = rest
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// string reads a length-prefixed string.
func (d *decoder) string() string {
	if d.err != nil {
		return ""
	}
	b, rest, err := readBytes(d.buf)
	if err != nil {
		d.fail(err)
		return ""
	}
	d.buf = rest
	return string(b)
}

func (d *decoder) be64() uint64 {
	if d.err != nil {
		return 0
	}
	v, rest, err := readBE64(d.buf)
	if err != nil {
		d.fail(err)
		return 0
	}
	d.buf = rest
	return v
}

// done returns the first decoding error, or an error if input remains.
func (d *decoder) done() error {
	if d.err != nil {
		return d.err
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.buf))
	}
	return nil
}

// decodeVersionedUvarint decodes version ‖ uvarint(n), the value of the
// records that hold one number (counters, the archive's last id); what
// names the record in errors.
// decodeVersionedBytes returns a copy of what follows the version byte of
// v, a value that must hold something after it.
func decodeVersionedBytes(v []byte, version byte, what string) ([]byte, error) {
	if len(v) < 2 || v[0] != version {
		return nil, fmt.Errorf("%w: %s value", ErrCorrupt, what)
	}
	return bytes.Clone(v[1:]), nil
}

func decodeVersionedUvarint(v []byte, version byte, what string) (uint64, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != version {
		return 0, fmt.Errorf("%w: %s codec version %d unknown", ErrCorrupt, what, ver)
	}
	n := d.uvarint()
	if err := d.done(); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return n, nil
}

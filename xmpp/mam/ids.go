package mam

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
)

// IDCodec turns archive ids (microsecond timestamps, which tell when a
// message was archived and how busy an archive is) into the opaque,
// stable ids clients see: XEP-0359 §5 requires that nothing can be
// inferred from them. An id is encrypted with AES under a key derived from
// the server's secret; the 64-bit zero tail of the block rejects ids this
// server did not issue.
type IDCodec struct {
	block cipher.Block
}

// NewIDCodec derives the codec's key from a server secret.
func NewIDCodec(secret []byte) IDCodec {
	sum := sha256.Sum256(append([]byte("switchboard archive ids\x00"), secret...))
	block, err := aes.NewCipher(sum[:16])
	if err != nil {
		panic("mam: AES with a 16-byte key: " + err.Error()) // cannot happen
	}
	return IDCodec{block: block}
}

// Format returns the opaque form of an archive id.
func (c IDCodec) Format(id uint64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], id)
	c.block.Encrypt(b[:], b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Parse returns the archive id of an opaque id, or false.
func (c IDCodec) Parse(s string) (uint64, bool) {
	if len(s) != 22 {
		return 0, false
	}
	var b [16]byte
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(s)); err != nil || n != 16 {
		return 0, false
	}
	c.block.Decrypt(b[:], b[:])
	if binary.BigEndian.Uint64(b[8:]) != 0 {
		return 0, false
	}
	id := binary.BigEndian.Uint64(b[:8])
	return id, id > 0
}

package ws

import (
	"encoding/binary"
)

// Opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close status codes (RFC 6455 §7.4.1).
const (
	closeNormal          = 1000
	closeProtocolError   = 1002
	closeUnsupportedData = 1003
	closeNoStatus        = 1005 // never sent: "no code in the frame"
	closeInvalidPayload  = 1007
	closeTooBig          = 1009
)

// maxControlPayload bounds a control frame's payload (RFC 6455 §5.5).
const maxControlPayload = 125

// frame is the header of the frame being read.
type frame struct {
	op     byte
	fin    bool
	mask   [4]byte
	remain int64 // payload bytes not read yet
	pos    int   // payload bytes read, for the mask's phase
	active bool  // the header was read; the payload is being read
}

// unmask XORs b, which starts pos bytes into a frame's payload, with the
// frame's masking key (RFC 6455 §5.3).
func unmask(b []byte, mask [4]byte, pos int) {
	for i := range b {
		b[i] ^= mask[(pos+i)&3]
	}
}

// appendFrameHeader appends the header of an unmasked, final frame of n
// payload bytes (RFC 6455 §5.2): a server never masks (§5.1).
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return b
}

// appendCloseFrame appends a Close frame with status code (none if code is
// closeNoStatus).
func appendCloseFrame(b []byte, code uint16) []byte {
	if code == closeNoStatus {
		return appendFrameHeader(b, opClose, 0)
	}
	b = appendFrameHeader(b, opClose, 2)
	return binary.BigEndian.AppendUint16(b, code)
}

// sendableCode reports whether a Close frame may carry code (RFC 6455
// §7.4): the defined codes but those reserved for reporting, and the
// ranges of libraries and applications.
func sendableCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

package ws

import (
	"bytes"

	"switchboard/xmpp/wire"
)

// appendText appends s as one text message.
func appendText(b []byte, s string) []byte {
	b = appendFrameHeader(b, opText, len(s))
	return append(b, s...)
}

// appendOpen appends the <open/> that stands for the stream header h
// (RFC 7395, "Stream Initiation"): its attributes but the namespace
// declarations.
func appendOpen(b []byte, h []byte) []byte {
	_, _, attrs := wire.SplitStartTag(h)
	open := append(make([]byte, 0, len(h)), "<open xmlns='"+NSFraming+"'"...)
	for _, a := range attrs {
		if string(a.Name) == "xmlns" || bytes.HasPrefix(a.Name, []byte("xmlns:")) {
			continue
		}
		open = append(open, ' ')
		open = append(open, a.Name...)
		open = append(open, '=', a.Quote)
		open = append(open, a.Value...)
		open = append(open, a.Quote)
	}
	open = append(open, "/>"...)
	b = appendFrameHeader(b, opText, len(open))
	return append(b, open...)
}

// appendElement appends the top-level element e as one text message,
// declaring the namespace it took from the stream header
// (wire.InheritedDecl).
func appendElement(b []byte, e []byte) []byte {
	at, decl := wire.InheritedDecl(e)
	b = appendFrameHeader(b, opText, len(e)+len(decl))
	b = append(b, e[:at]...)
	b = append(b, decl...)
	return append(b, e[at:]...)
}

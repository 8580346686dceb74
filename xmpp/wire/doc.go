// Package wire reads and writes the XML of XMPP streams.
//
// XMPP uses a restricted subset of XML 1.0 (RFC 6120 §11): no comments,
// processing instructions (other than the XML declaration at the start of a
// stream), DTDs or entity references beyond the five predefined entities and
// character references. This package implements exactly that subset, without
// encoding/xml, so that the server can
//
//   - frame top-level elements of a stream incrementally, enforcing a byte limit
//     per stanza (RFC 6120 §13.12) and a nesting limit before anything is
//     parsed (Decoder);
//   - parse a complete element into an immutable tree whose strings point into
//     the element's own bytes (Parse), resolving XML namespaces;
//   - write a parsed element again by re-emitting its start tag and copying its
//     inner bytes verbatim, so that routing a stanza costs one start tag, not a
//     re-encoding of the payload (Element.AppendXML); a constructed element
//     sent to many recipients is serialised once and then written the same
//     way (Element.Frozen).
//
// Errors carry the stream error condition that RFC 6120 §4.9.3 names for them
// (not-well-formed, restricted-xml, invalid-namespace, policy-violation, ...).
//
// Parsed elements are immutable: their strings alias the element's Raw bytes.
// Derive modified copies with the With* methods. SetAttr is the exception,
// for an element nothing else holds yet (the one a Decoder just returned).
package wire

// Package xmpptest has test doubles and builders for the modules' tests:
// a router that records what it is given, stanzas parsed from XML, a
// clock advanced by hand, a check of a handler's refusal (HandlerError)
// and a canonical form for comparing XML (Canonical).
package xmpptest

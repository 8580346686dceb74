// Package xmpptest has test doubles and builders for the modules' tests:
// a router that records what it is given, stanzas parsed from XML, and a
// clock advanced by hand.
package xmpptest

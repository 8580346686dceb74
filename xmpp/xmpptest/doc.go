// Package xmpptest has test doubles and builders for the modules' tests:
// a router that records what it is given, and stanzas parsed from XML.
package xmpptest

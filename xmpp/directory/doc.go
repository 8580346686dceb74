// Package directory is the user directory of each host: XEP-0055 Jabber
// Search (1.3) on the host's domain, over the host's accounts and the
// profiles their vCards hold (package vcard). Only the host's own users may
// search it (others get forbidden; other servers' users are not served).
//
// A get answers the legacy fields (first, last, nick, email; §2) and a data
// form (§3, XEP-0004) with FORM_TYPE jabber:iq:search: the four registered
// fields and, named in Clark notation as XEP-0068 §3.1 asks of fields that
// are not the XSF's, {urn:switchboard:directory:0} name (full, given or
// family name, nickname or user name), user (user name), department and
// extension (any phone number; digits are compared alone, so "12" finds
// "+1 (212) 555"). A set searches with either; every field given must
// match, case-insensitively, anywhere in the value ('*' is ignored, as
// some clients send it as a wildcard); no field at all lists everyone.
// Results come back in the form the request used: legacy <item jid/>
// elements, or a data form result with <reported/> fields. No match at all
// is an empty <query/> (§2), whichever form was used. A user who blocks
// the searcher (XEP-0191) is left out.
//
// The number of entries answered is bounded; XEP-0059 result set
// management pages forward: <max/>, <after/> with the last entry's JID,
// and <count/> and <first index/> over the whole result set (§2.1).
// <before/> and <index/> are not supported (feature-not-implemented).
// Each search walks the host's whole directory (the accounts in order,
// with their stored profiles), which is what the count needs.
package directory

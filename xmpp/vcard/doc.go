// Package vcard serves XEP-0054 vcard-temp (1.3): each account's vCard,
// stored by the server and answered on the account's behalf (RFC 6121
// §8.5.2.1.3). The owner sets it with an IQ set without 'to' or to its
// own bare JID (§2; another user's is forbidden), and reads it back, empty
// when none was set (§3.1); anyone may read another account's (§3.2; the
// blocking module's filter keeps blocked entities out), and a missing
// vCard and a missing account both answer service-unavailable (§3.2, as
// of 1.3). A vCard larger than the configured bound is refused with
// not-acceptable; an empty <vCard/> removes the stored one. The server has
// no vCard of its own: a request to its domain is service-unavailable, as
// §3.2 answers for any entity without one.
//
// With the accounts' personal eventing nodes (Deps.Avatars), the module
// converts avatars (XEP-0398, avatar.go): the XEP-0084 avatar is the
// vCard's photo for readers its access model admits, a vCard's photo is
// published as the avatar, and available presence carries the avatar's
// hash (XEP-0153).
//
// Setting a vCard also records its profile (full name, given and family
// name, nickname, department, email addresses and phone numbers) for the
// user directory (package directory, XEP-0055).
package vcard

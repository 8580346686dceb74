// Package blocking implements XEP-0191 Blocking Command (1.3): users block
// and unblock JIDs (a full JID, a bare JID, a domain or domain/resource);
// the server then drops everything a blocked entity sends the user —
// answering messages and IQs with service-unavailable, dropping presence —
// and refuses the user's own stanzas to it with not-acceptable and
// <blocked xmlns='urn:xmpp:blocking:errors'/>. Blocking sends the blocked
// entity the user's unavailable presence (§3.3); changes are pushed to the
// user's resources that fetched the list.
package blocking

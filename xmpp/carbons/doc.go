// Package carbons implements XEP-0280 Message Carbons (1.0.1): a resource
// that enabled carbons receives a copy of every eligible message its
// account sends from another resource (<sent/>) or receives at another
// resource (<received/>), wrapped in XEP-0297 Stanza Forwarding, so that a
// conversation shows on all of a user's devices.
package carbons

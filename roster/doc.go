// Package roster implements contact lists and presence subscriptions
// ("friends" and "friend requests"): roster get, set and remove with pushes
// to interested resources and the error cases of RFC 6121 §2.3.3 and
// §2.5.3; roster versioning (XEP-0237 1.3) with incremental pushes; the
// subscription state machine of RFC 6121 §3 and Appendix A, including
// pre-approval (§3.4) and server-answered requests; and pending inbound
// requests kept until answered and re-delivered at every login. Once a
// subscription the user approved (or pre-approved) is in effect, the
// SubscriptionApproved hook runs (personal eventing sends the new
// subscriber the last items, XEP-0163 §4.3.4).
//
// The state machine is the pure functions Outbound and Inbound, tested
// row by row against the Appendix A tables; the module applies them inside
// one store transaction per stanza.
package roster

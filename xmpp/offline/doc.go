// Package offline stores messages for users with no available resource
// and delivers them at their next available presence: XEP-0160 Best
// Practices for Handling Offline Messages (1.0.1), stamped with XEP-0203
// Delayed Delivery (2.0), honouring XEP-0334 Message Processing Hints
// (no-store, store) and a per-user quota.
//
// An account's stored messages are delivered one delivery at a time, so
// that they reach the client in the order they were stored; a delivery
// asked for while one runs is served by it when it ends. Messages a
// session refuses (it went away) are put back under their ids, before
// anything stored since, and offered once to the account's best other
// available resource.
package offline

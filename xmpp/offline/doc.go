// Package offline stores messages for users with no available resource
// and delivers them at their next available presence: XEP-0160 Best
// Practices for Handling Offline Messages (1.0.1), stamped with XEP-0203
// Delayed Delivery (2.0), honouring XEP-0334 Message Processing Hints
// (no-store, store) and a per-user quota.
package offline

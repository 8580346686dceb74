// Package server is the composition root: it turns a config.Config into a
// running server — store, accounts, router, modules (in one explicit
// ordered list), room services, upload services (XEP-0363, with their
// files on the HTTPS listener), client listeners (TCP, and WebSocket and
// BOSH on the HTTPS listener, packages ws and bosh), federation (package
// s2s, on listen.s2s), external components (package component, on
// listen.component, XEP-0114), the admin HTTP API and the admin socket —
// and shuts
// it down: the HTTPS listener (BOSH's held requests answered with
// system-shutdown as it begins) and the admin socket (admin commands in
// flight finish, for a while), room services (occupants told, XEP-0045 §11.2),
// listeners and sessions (system-shutdown stream error, RFC 6120
// §4.9.3.22), external components' and federation streams (after the
// sessions, whose last presence goes out), background jobs
// (retention, upload cleanup), the room inbox (pending joins and markers
// written), the archive writer (flushed), the store.
package server

// Package server is the composition root: it turns a config.Config into a
// running server — store, accounts, router, modules (in one explicit
// ordered list), room services, client listeners and the admin socket —
// and shuts it down in reverse order: listeners and sessions
// (system-shutdown stream error, RFC 6120 §4.9.3.22), background jobs
// (retention), room services, the room inbox (pending joins and markers
// written), the archive writer (flushed), the admin socket, the store.
package server

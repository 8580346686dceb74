// Package server is the composition root: it turns a config.Config into a
// running server — store, accounts, router, modules (in one explicit
// ordered list), client listeners and the admin socket — and shuts it down
// in reverse order: listeners, sessions (system-shutdown stream error,
// RFC 6120 §4.9.3.22), admin socket, store.
package server

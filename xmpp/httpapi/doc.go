// Package httpapi is the admin HTTP API: the server's admin commands (the
// ones the CLI sends over the admin socket) over HTTPS, for systems that
// work with the server — a phone system setting "busy: on a call"
// (presence set from outside), a help desk fetching an issue chat's
// comment log (a history export), provisioning.
//
// Requests authenticate with HTTP Basic (RFC 7617 §2) as an admin; the
// caller supplies the check (Deps.Authenticate). A verified Authorization
// header is reused for a minute so that a busy integration does not pay
// for PBKDF2 on each call; failures are throttled per address (429 with
// Retry-After, RFC 6585 §4). Every command runs as the authenticated
// admin, who is the audit log's actor whatever the request says; a
// command the admin may not run (Deps.Run returning ErrForbidden, such as
// one on another host) is a 403.
//
// Routes (Go 1.22 patterns):
//
//	POST   /api/v1/commands             {"command": "user.add", "args": {...}}
//	GET    /api/v1/rooms/{room}/history ?format=json|jsonl|csv&since=&until=&with=
//	GET    /api/v1/users/{jid}/history  the same
//	PUT    /api/v1/users/{jid}/presence {"show": "dnd", "status": "On a call", "call": "on-call"}
//	DELETE /api/v1/users/{jid}/presence
//	GET    /api/v1/audit                ?since=&limit=
//
// Answers are Response JSON objects, except exports, which stream the
// export itself: its arguments are checked before the first line (a bad
// one is a 400), and an error after the first line aborts the response so
// that a truncated export is never taken for a whole one (logged as an
// error, or as a warning when its connection closed). A failed
// command's status comes from its error (status): Deps.Run marks errors
// in the request's arguments with ErrInvalid and commands an admin may
// not run with ErrForbidden; any error of no known kind is the server's
// own, a 500 whose cause is logged rather than answered (a
// NotRecordedError, a command whose audit write failed, is a 500 that
// says so; an export sent whole before its audit write failed ends as
// sent, and only the log says so). The listener, TLS and the command set belong to the server
// (xmpp/server); docs/admin-api.md is the reference for operators.
package httpapi

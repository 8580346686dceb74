// Package config defines Switchboard's configuration: the TOML schema, its
// defaults, loading and validation.
//
// The file format is TOML (https://toml.io, parsed with go-toml v2).
// Durations are strings accepted by time.ParseDuration ("30s", "10m", "1h");
// sizes are integers in bytes. The annotated file config.example.toml at the
// repository root is the operator's reference: it lists every option with its
// default value, and a test keeps it in sync with [Defaults].
//
// Loading starts from [Defaults], overlays the file, rejects unknown keys and
// then validates the result. [[host]] tables in a file replace the default host
// list rather than extending it.
//
// # Errors
//
// Every problem is a [*FieldError] naming the file, the line and the dotted key
// ("host[1].domain" for keys inside the second [[host]] table), for example:
//
//	config.toml:12: unknown key "limits.max_stanzasize" (did you mean "limits.max_stanza_size"?)
//	config.toml:7: listen.c2s: invalid address "foo": missing port in address (want host:port, e.g. ":5222")
//
// A document that is not valid TOML yields exactly one error (the parser cannot
// go on). Otherwise [Load] and [Parse] report every problem at once: unknown
// keys, type mismatches, unparsable durations and the failures of
// [Config.Validate], joined with errors.Join and sorted by line (at most
// [MaxReportedErrors]). Errors about values that were not set in the file
// (defaults) carry no line.
//
// Protocol references for individual options: RFC 6120 §13.12 (max_stanza_size,
// the 10000-byte minimum), RFC 6120 §7.7.2.2 (resource_conflict), RFC 6120
// §4.9.3.4 (idle_timeout closes with connection-timeout), XEP-0368 v1.1.0
// (listen.c2s_tls, direct TLS), XEP-0077 v2.4 (host.registration).
//
// The package imports no other package of this module.
package config

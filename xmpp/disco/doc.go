// Package disco answers XEP-0030 Service Discovery (version 2.5) queries
// for the server's domains (disco#info identities and features of every
// registered module; disco#items listing the server's components) and for
// accounts (identity account/registered, features modules add for
// accounts), on behalf of the user as RFC 6121 §8.5.2.1.3 requires.
package disco

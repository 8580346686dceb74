// Package listen is the accept loop the server's TCP listeners share
// (client-to-server and server-to-server, RFC 6120 §14.2 and §14.3):
// transient accept errors — out of descriptors (EMFILE, ENFILE), a
// timeout — are retried with a growing pause instead of ending the
// listener or spinning; any other error, or the listener closed, ends it.
package listen

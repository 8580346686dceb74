// Package listen is the accept loop the server's TCP listeners share
// (client-to-server and server-to-server, on the ports of RFC 6120 §14.7):
// transient accept errors — out of descriptors (EMFILE, ENFILE), a
// timeout — are retried with a growing pause instead of ending the
// listener or spinning; any other error, or the listener closed, ends it.
//
// RemoteIP gives the address per-address limits count by.
package listen

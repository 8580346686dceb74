package server

// What the external tests (package server_test) use of the package's
// internals.

// WriteSelfSigned is writeSelfSigned: a certificate and key such as the
// server makes for itself, for a peer server a test starts.
var WriteSelfSigned = writeSelfSigned

// Package hostmeta serves XEP-0156 discovery of the server's web
// transports: /.well-known/host-meta (XRD) and /.well-known/host-meta.json
// (JRD), each link's URL built from the request's host, as browser clients
// (Converse.js) read it to find the WebSocket and BOSH endpoints.
package hostmeta

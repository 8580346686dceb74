// Package entitytime answers XEP-0202 Entity Time (version 2.0) queries
// sent to a server domain with the server's UTC time and offset.
package entitytime

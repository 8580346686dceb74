// Package version answers XEP-0092 Software Version (version 1.1) queries
// sent to a server domain.
package version

// Package register handles XEP-0077 In-Band Registration (version 2.4)
// requests from authenticated users: reading their registration, changing
// the password (§3.3) and cancelling the registration (§3.2). Registration
// of new accounts happens before authentication, in package c2s. The
// server's Accounts implementation records each change in the audit log.
package register

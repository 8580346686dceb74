package auth

import (
	"bytes"
	"context"
	"unicode/utf8"
)

// plain verifies a PLAIN message (RFC 4616 §2):
//
//	message = [authzid] NUL authcid NUL passwd
//
// authcid is the user's localpart (RFC 6120 §6.3.8).
func (e *Exchange) plain(ctx context.Context, in []byte) error {
	parts := bytes.Split(in, []byte{0})
	if len(parts) != 3 {
		return malformed("expected authzid NUL authcid NUL passwd")
	}
	authzid, authcid, passwd := parts[0], parts[1], parts[2]
	if len(authcid) == 0 || len(passwd) == 0 {
		return malformed("empty authcid or passwd")
	}
	if !utf8.Valid(authzid) || !utf8.Valid(authcid) || !utf8.Valid(passwd) {
		return malformed("invalid UTF-8")
	}
	user, err := e.user(string(authcid))
	if err != nil {
		return err
	}
	if err := checkAuthzid(string(authzid), user); err != nil {
		return err
	}
	c, h, found, err := e.credentials(ctx, user.Localpart())
	if err != nil {
		return err
	}
	// For an unknown user, Verify runs against the decoy anyway so that the
	// answer takes as long as for a wrong password.
	ok := Verify(c, h, string(passwd))
	if !found || !ok {
		return notAuthorized()
	}
	e.candidate = user.Localpart()
	return nil
}

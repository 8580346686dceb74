package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/auth"
	"switchboard/xmpp/c2s"
	"switchboard/xmpp/register"
)

// Accounts manages user accounts over the store: creation, passwords and
// deletion, with SCRAM credentials derived here so that no password is
// ever stored (RFC 5802 §3).
type Accounts struct {
	// OnChange, when set, is called with the host after an account was
	// created or deleted.
	OnChange func(host string)
	// OnRemove, when set, is called with an account just deleted and
	// what the delete released in others' rosters (the roster tells
	// them), while the account's sessions are still bound.
	OnRemove   func(ctx context.Context, bare jid.JID, released []store.Released)
	users      *store.Users
	hosts      map[string]bool
	iterations int
}

// NewAccounts returns an account manager for the given hosts.
func NewAccounts(users *store.Users, hosts []string) *Accounts {
	a := &Accounts{users: users, hosts: map[string]bool{}, iterations: auth.DefaultIterations}
	for _, h := range hosts {
		a.hosts[h] = true
	}
	return a
}

// Hosts returns the served domains.
func (a *Accounts) Hosts() []string {
	out := make([]string, 0, len(a.hosts))
	for h := range a.hosts {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// Errors of account operations, checked with errors.Is. They are errors
// in what was asked (httpapi.ErrInvalid too).
var (
	ErrUnknownHost     error = argError{errors.New("accounts: unknown host")}
	ErrInvalidUsername error = argError{errors.New("accounts: invalid username")}
	ErrInvalidPassword error = argError{errors.New("accounts: invalid password")}
)

// Normalize validates and normalises user@host, returning the localpart
// and domainpart (RFC 7622 §3.3 PRECIS UsernameCaseMapped).
func (a *Accounts) Normalize(host, local string) (string, string, error) {
	j, err := jid.New(local, host, "")
	if err != nil || j.Localpart() == "" {
		return "", "", fmt.Errorf("%w %q: %v", ErrInvalidUsername, local, errInvalid(err))
	}
	if !a.hosts[j.Domainpart()] {
		return "", "", fmt.Errorf("accounts: %s: %w", j.Domainpart(), ErrUnknownHost)
	}
	return j.Localpart(), j.Domainpart(), nil
}

func errInvalid(err error) error {
	if err == nil {
		return errors.New("empty localpart")
	}
	return err
}

func toStore(c auth.Credential) store.ScramCredential {
	return store.ScramCredential{Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
}

func fromStore(c store.ScramCredential) auth.Credential {
	return auth.Credential{Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
}

// Create adds an account.
func (a *Accounts) Create(ctx context.Context, host, local, password string) error {
	local, host, err := a.Normalize(host, local)
	if err != nil {
		return err
	}
	creds, err := auth.Derive(password, a.iterations)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPassword, err)
	}
	u := store.User{Host: host, Local: local, SHA1: toStore(creds.SHA1), SHA256: toStore(creds.SHA256), Created: time.Now()}
	if err := a.users.Create(ctx, u); err != nil {
		return fmt.Errorf("accounts: create %s@%s: %w", local, host, err)
	}
	if a.OnChange != nil {
		a.OnChange(host)
	}
	return nil
}

// SetPassword replaces an account's credentials.
func (a *Accounts) SetPassword(ctx context.Context, host, local, password string) error {
	local, host, err := a.Normalize(host, local)
	if err != nil {
		return err
	}
	creds, err := auth.Derive(password, a.iterations)
	if err != nil {
		// A stanza error too, so that XEP-0077 password changes get
		// not-acceptable rather than internal-server-error.
		return errors.Join(fmt.Errorf("%w: %v", ErrInvalidPassword, err),
			xmpp.StanzaError(stanza.NotAcceptable, "invalid password"))
	}
	if err := a.users.SetCredentials(ctx, host, local, toStore(creds.SHA1), toStore(creds.SHA256)); err != nil {
		return fmt.Errorf("accounts: password %s@%s: %w", local, host, err)
	}
	return nil
}

// Delete removes an account.
func (a *Accounts) Delete(ctx context.Context, host, local string) error {
	local, host, err := a.Normalize(host, local)
	if err != nil {
		return err
	}
	released, err := a.users.Delete(ctx, host, local)
	if err != nil {
		return fmt.Errorf("accounts: delete %s@%s: %w", local, host, err)
	}
	if a.OnRemove != nil {
		if bare, err := jid.New(local, host, ""); err == nil {
			a.OnRemove(ctx, bare, released)
		}
	}
	if a.OnChange != nil {
		a.OnChange(host)
	}
	return nil
}

// List returns the localparts of a host's accounts.
func (a *Accounts) List(ctx context.Context, host string) ([]string, error) {
	if !a.hosts[host] {
		return nil, fmt.Errorf("accounts: %s: %w", host, ErrUnknownHost)
	}
	return a.users.List(ctx, host)
}

// Exists implements router.UserDirectory.
func (a *Accounts) Exists(ctx context.Context, host, local string) (bool, error) {
	return a.users.Exists(ctx, host, local)
}

// Lookup implements auth.CredentialLookup.
func (a *Accounts) Lookup(ctx context.Context, host, local string) (auth.Credentials, error) {
	u, err := a.users.Get(ctx, host, local)
	if errors.Is(err, store.ErrNotFound) {
		return auth.Credentials{}, fmt.Errorf("%s@%s: %w", local, host, auth.ErrUnknownUser)
	}
	if err != nil {
		return auth.Credentials{}, err
	}
	return auth.Credentials{SHA1: fromStore(u.SHA1), SHA256: fromStore(u.SHA256)}, nil
}

// Register implements c2s.Registrar: errors become the XEP-0077 §3.1
// stanza errors (conflict for an existing account, not-acceptable for a
// bad username or password).
func (a *Accounts) Register(ctx context.Context, host, local, password string) error {
	err := a.Create(ctx, host, local, password)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrExists):
		return xmpp.StanzaError(stanza.Conflict, "the username is taken")
	case errors.Is(err, store.ErrInvalid), errors.Is(err, ErrUnknownHost):
		return xmpp.StanzaError(stanza.NotAcceptable, "invalid username")
	case errors.Is(err, ErrInvalidUsername), errors.Is(err, ErrInvalidPassword):
		return xmpp.StanzaError(stanza.NotAcceptable, "invalid username or password")
	}
	return err
}

// SelfService is the account manager as users reach it themselves over
// XEP-0077: in-band registration (c2s.Registrar), password change and
// account removal (register.Accounts). Each change that succeeds is
// recorded in the audit log with the user as actor and the admin
// command's action name, so that `switchboard audit` shows what users did
// to their accounts next to what admins did. The change stands when the
// audit write fails; that failure is logged.
type SelfService struct {
	Accounts *Accounts
	Audit    *store.Audit
	Logger   *slog.Logger
}

var (
	_ c2s.Registrar     = SelfService{}
	_ register.Accounts = SelfService{}
)

// Register implements c2s.Registrar.
func (s SelfService) Register(ctx context.Context, host, local, password string) error {
	if err := s.Accounts.Register(ctx, host, local, password); err != nil {
		return err
	}
	s.record(ctx, host, local, CmdUserAdd, "in-band registration (XEP-0077)")
	return nil
}

// SetPassword implements register.Accounts.
func (s SelfService) SetPassword(ctx context.Context, host, local, password string) error {
	if err := s.Accounts.SetPassword(ctx, host, local, password); err != nil {
		return err
	}
	s.record(ctx, host, local, CmdUserPasswd, "password changed by the user (XEP-0077)")
	return nil
}

// Delete implements register.Accounts.
func (s SelfService) Delete(ctx context.Context, host, local string) error {
	if err := s.Accounts.Delete(ctx, host, local); err != nil {
		return err
	}
	s.record(ctx, host, local, CmdUserDel, "account removed by the user (XEP-0077)")
	return nil
}

// record adds an audit entry for local@host, acting on itself.
func (s SelfService) record(ctx context.Context, host, local, action, detail string) {
	if s.Audit == nil {
		return
	}
	if l, h, err := s.Accounts.Normalize(host, local); err == nil {
		local, host = l, h
	}
	user := local + "@" + host
	// The change is made: record it even if the request's context ends.
	if err := addAudit(ctx, s.Audit, store.AuditEntry{Actor: user, Action: action, Target: user, Detail: detail}); err != nil && s.Logger != nil {
		s.Logger.Error("audit: account change by the user not recorded", xmpp.LogJID, user, "action", action, xmpp.LogErr, err)
	}
}

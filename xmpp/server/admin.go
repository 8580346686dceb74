package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/presence"
	"switchboard/store"
	"switchboard/xmpp/httpapi"
	"switchboard/xmpp/mam"
	"switchboard/xmpp/vcard"
	"switchboard/xmpp/wire"
)

// AdminRequest is one command of the admin API. The same commands run
// against the admin socket of a running server, over the admin HTTP API
// and, with the server stopped, directly on the data file.
type AdminRequest = httpapi.Request

// AdminResponse answers an AdminRequest. A streaming command (an export)
// first sends responses with only Line set, one per line, then the final
// response.
type AdminResponse struct {
	OK     bool     `json:"ok"`
	Error  string   `json:"error,omitempty"`
	Result []string `json:"result,omitempty"`
	Line   *string  `json:"line,omitempty"`
}

// Admin commands.
const (
	CmdUserAdd    = "user.add"
	CmdUserPasswd = "user.passwd"
	CmdUserDel    = "user.del"
	CmdUserList   = "user.list"
	// CmdUserProfile sets the directory fields of a user's vCard (any of
	// name, given, family, department, extension, email; an empty value
	// removes the field) and returns the profile.
	CmdUserProfile = "user.profile"

	CmdPresenceSet   = httpapi.CmdPresenceSet
	CmdPresenceClear = httpapi.CmdPresenceClear

	CmdHistoryExport = httpapi.CmdHistoryExport
	CmdAuditList     = httpapi.CmdAuditList

	CmdRoomCreate  = "room.create"
	CmdRoomDestroy = "room.destroy"
)

// adminCommand describes an admin command once: how it runs, what it acts
// on, how it is kept to a host over the HTTP API and what the audit log
// records of it.
type adminCommand struct {
	run func(ctx context.Context, b Backend, req AdminRequest) ([]string, error)
	// target is the argument naming what the command acts on: the audit
	// entry's target, and what scopeToHost checks.
	target string
	scope  hostScope
	// detail are the arguments the audit entry's detail records.
	detail []string
	// noAudit commands (the listings) are not recorded.
	noAudit bool
	// sparse: the detail records only the arguments given, so that an
	// empty one (a field removed) differs from one left out.
	sparse bool
	// readsBare: a request given none of the detail arguments only reads
	// (user.profile without a field), and is not recorded.
	readsBare bool
	// streams: the command writes its result through Backend.Emit, and
	// on a running server has Backend.Flush to write out the archive
	// first (an export includes what was said until it was asked for).
	streams bool
}

// hostScope is how the HTTP API keeps a command to the admin's host.
type hostScope int

const (
	// scopeUndecided is a command added without its scope decided:
	// refused over HTTP rather than run for every host.
	scopeUndecided hostScope = iota
	// scopeJID: the target is an account, archive or room JID, which
	// must be of the admin's host.
	scopeJID
	// scopeHost: the target is a host, which must be the admin's (and
	// is when not given).
	scopeHost
	// scopeAuditLog: the entries listed are the admin's host's
	// (Backend.AuditTargets).
	scopeAuditLog
)

// adminCommands are the commands RunCommand runs; any other is unknown.
var adminCommands = map[string]adminCommand{
	CmdUserAdd:       {run: runUserSet, target: "jid", scope: scopeJID},
	CmdUserPasswd:    {run: runUserSet, target: "jid", scope: scopeJID},
	CmdUserDel:       {run: runUserDel, target: "jid", scope: scopeJID},
	CmdUserList:      {run: runUserList, target: "host", scope: scopeHost, noAudit: true},
	CmdUserProfile:   {run: runUserProfile, target: "jid", scope: scopeJID, detail: profileArgs, sparse: true, readsBare: true},
	CmdPresenceSet:   {run: runPresence, target: "jid", scope: scopeJID, detail: []string{"show", "status", "call"}},
	CmdPresenceClear: {run: runPresence, target: "jid", scope: scopeJID},
	CmdHistoryExport: {run: runExport, target: "archive", scope: scopeJID, detail: []string{"with", "since", "until", "format"}, streams: true},
	CmdAuditList:     {run: runAuditList, scope: scopeAuditLog, noAudit: true},
	CmdRoomCreate:    {run: runRoom, target: "room", scope: scopeJID, detail: []string{"owner"}},
	CmdRoomDestroy:   {run: runRoom, target: "room", scope: scopeJID, detail: []string{"reason"}},
}

// lookupCommand is the one check that a command exists, made where a
// request enters (RunCommand, runAdminHTTP, the admin socket's handle).
func lookupCommand(name string) (adminCommand, error) {
	cmd, ok := adminCommands[name]
	if !ok {
		return adminCommand{}, badArg("unknown command %q", name)
	}
	return cmd, nil
}

// RoomAdmin creates and destroys rooms for admin commands.
type RoomAdmin interface {
	// CreateRoom creates room; name is its localpart as the admin typed
	// it (an issue key keeps its case: TEST-123).
	CreateRoom(ctx context.Context, room jid.JID, name string, owner jid.JID) error
	DestroyRoom(ctx context.Context, room jid.JID, reason string) error
}

// Overrides sets and clears presence set from outside.
type Overrides interface {
	SetOverride(ctx context.Context, bare jid.JID, o store.PresenceOverride) error
	ClearOverride(ctx context.Context, bare jid.JID) error
}

// StoredOverrides sets overrides in the store only (the server is stopped;
// they apply at the user's next login).
type StoredOverrides struct{ Store *store.PresenceOverrides }

// SetOverride implements Overrides.
func (s StoredOverrides) SetOverride(ctx context.Context, bare jid.JID, o store.PresenceOverride) error {
	if err := presence.ValidateOverride(o); err != nil {
		return err
	}
	if o.Set.IsZero() {
		o.Set = time.Now()
	}
	return s.Store.Set(ctx, bare.String(), o)
}

// ClearOverride implements Overrides.
func (s StoredOverrides) ClearOverride(ctx context.Context, bare jid.JID) error {
	return s.Store.Clear(ctx, bare.String())
}

// Backend is what admin commands act on.
type Backend struct {
	Accounts *Accounts
	VCards   *store.VCards
	// VCardMaxBytes bounds a vCard an admin command writes, as a user's
	// own is bounded ([directory] vcard_max_bytes; 0: no bound).
	VCardMaxBytes int
	Overrides     Overrides
	Archive       *store.Archive
	IDs           mam.IDCodec
	Rooms         RoomAdmin
	Audit         *store.Audit
	// AuditTargets, if not nil, limits audit.list to the entries whose
	// target it accepts (an HTTP admin sees their own host's).
	AuditTargets func(target string) bool
	// Emit receives the lines of a streaming command (an export); when
	// nil they are returned as the result.
	Emit func(line string) error
	// Flush, if not nil, writes out what the archive writer holds; an
	// export calls it once its arguments are checked.
	Flush func(ctx context.Context) error
	// CloseUser ends a deleted account's sessions (nil when no server
	// runs).
	CloseUser func(host, local string)
}

// RunCommand executes an admin command and records it in the audit log
// (every command that changes something, and exports).
func RunCommand(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	cmd, err := lookupCommand(req.Command)
	if err != nil {
		return nil, err
	}
	return cmd.runAudited(ctx, b, req)
}

// auditWriteTimeout bounds the audit log's write after a command: it is
// made whether or not the command's caller is still there.
const auditWriteTimeout = 5 * time.Second

// runAudited runs req, a request for cmd, and records it in the audit log:
// a command that succeeded, and an export that failed after it sent
// something (what it sent is out), with its error in the detail.
func (cmd adminCommand) runAudited(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	sent := false
	if cmd.streams && b.Emit != nil {
		emit := b.Emit
		b.Emit = func(line string) error {
			sent = true
			return emit(line)
		}
	}
	audited := b.Audit != nil && !cmd.noAudit && !cmd.readsOnly(req)
	var e store.AuditEntry
	if audited {
		actor := req.Args["actor"]
		if actor == "" {
			actor = "admin"
		}
		e = store.AuditEntry{Actor: actor, Action: req.Command, Target: req.Args[cmd.target], Detail: cmd.auditDetail(req.Args)}
		// Nothing is done that the audit log would refuse to record
		// (an actor or target over store.MaxAuditFieldLen).
		if err := e.Validate(); err != nil {
			return nil, badArg("not recordable in the audit log: %v", err)
		}
	}
	res, err := cmd.run(ctx, b, req)
	if !audited || (err != nil && !sent) {
		return res, err
	}
	if err != nil {
		e.Detail = cutAuditDetail(fmt.Sprintf("failed=%q %s", err.Error(), e.Detail))
	}
	if aerr := addAudit(ctx, b.Audit, e); aerr != nil {
		// Whatever the audit log's error, this is the server's own
		// failure (500 over HTTP), not a bad request or one to repeat.
		return res, &httpapi.NotRecordedError{Err: err, Audit: aerr}
	}
	return res, err
}

// addAudit records e, even when the caller has gone (an HTTP client that
// hung up, a socket cut at shutdown): what was done is recorded.
func addAudit(ctx context.Context, a *store.Audit, e store.AuditEntry) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
	defer cancel()
	_, err := a.Add(ctx, e)
	return err
}

// readsOnly reports whether req, for a command that only reads without
// its detail arguments (readsBare), gives none of them.
func (cmd adminCommand) readsOnly(req AdminRequest) bool {
	return cmd.readsBare && !givesAny(req.Args, cmd.detail)
}

// givesAny reports whether args has any of keys.
func givesAny(args map[string]string, keys []string) bool {
	return slices.ContainsFunc(keys, func(k string) bool { _, ok := args[k]; return ok })
}

// auditDetail is the audit entry's detail: cmd.detail's arguments (only
// those given, for a sparse command) as key="value", quoted (which can
// make a value up to four times longer), and cut to
// store.MaxAuditDetailLen with a mark where that is too long.
func (cmd adminCommand) auditDetail(args map[string]string) string {
	var detail strings.Builder
	for _, k := range cmd.detail {
		v, ok := args[k]
		if !ok && cmd.sparse {
			continue
		}
		if detail.Len() > 0 {
			detail.WriteByte(' ')
		}
		fmt.Fprintf(&detail, "%s=%q", k, v)
	}
	return cutAuditDetail(detail.String())
}

// cutAuditDetail cuts d to store.MaxAuditDetailLen, with a mark, where it
// is longer.
func cutAuditDetail(d string) string {
	if len(d) <= store.MaxAuditDetailLen {
		return d
	}
	const mark = " [cut]"
	// d is valid UTF-8 (quoted): only a character cut in two is dropped.
	return strings.ToValidUTF8(d[:store.MaxAuditDetailLen-len(mark)], "") + mark
}

// argError is an error in a command's arguments: its text is the
// wrapped error's, and it is an httpapi.ErrInvalid (the HTTP API's 400).
type argError struct{ err error }

func (e argError) Error() string        { return e.err.Error() }
func (e argError) Unwrap() error        { return e.err }
func (e argError) Is(target error) bool { return target == httpapi.ErrInvalid }

// badArg is fmt.Errorf for an error in a command's arguments.
func badArg(format string, a ...any) error {
	return argError{fmt.Errorf(format, a...)}
}

// splitAccount splits the USER@HOST an account command names.
func splitAccount(arg string) (host, local string, err error) {
	local, host, ok := strings.Cut(arg, "@")
	if !ok || local == "" || host == "" || strings.Contains(host, "/") {
		return "", "", badArg("expected USER@HOST, got %q", arg)
	}
	return host, local, nil
}

// runUserSet runs user.add and user.passwd.
func runUserSet(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	host, local, err := splitAccount(req.Args["jid"])
	if err != nil {
		return nil, err
	}
	if req.Command == CmdUserAdd {
		return nil, b.Accounts.Create(ctx, host, local, req.Args["password"])
	}
	return nil, b.Accounts.SetPassword(ctx, host, local, req.Args["password"])
}

// runUserDel runs user.del.
func runUserDel(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	host, local, err := splitAccount(req.Args["jid"])
	if err != nil {
		return nil, err
	}
	if err := b.Accounts.Delete(ctx, host, local); err != nil {
		return nil, err
	}
	if b.CloseUser != nil {
		b.CloseUser(host, local)
	}
	return nil, nil
}

// existingAccount parses USER@HOST, normalised, and checks that the
// account exists.
func existingAccount(ctx context.Context, b Backend, arg string) (jid.JID, error) {
	host, local, err := splitAccount(arg)
	if err != nil {
		return jid.JID{}, err
	}
	local, host, err = b.Accounts.Normalize(host, local)
	if err != nil {
		return jid.JID{}, err
	}
	if ok, err := b.Accounts.Exists(ctx, host, local); err != nil {
		return jid.JID{}, fmt.Errorf("account %s@%s: %w", local, host, err)
	} else if !ok {
		return jid.JID{}, fmt.Errorf("no account %s@%s: %w", local, host, store.ErrNotFound)
	}
	return jid.New(local, host, "")
}

// maxProfileArg bounds each field user.profile sets.
const maxProfileArg = 1024

// profileFields are user.profile's fields: the argument and its help,
// where an edit puts it, and what the profile shows of it.
var profileFields = []struct {
	arg, usage string
	edit       func(*vcard.Edit) **string
	show       func(store.Profile) string
}{
	{"name", "full name, as contacts see it", func(e *vcard.Edit) **string { return &e.FullName }, func(p store.Profile) string { return p.FullName }},
	{"given", "given name", func(e *vcard.Edit) **string { return &e.Given }, func(p store.Profile) string { return p.Given }},
	{"family", "family name", func(e *vcard.Edit) **string { return &e.Family }, func(p store.Profile) string { return p.Family }},
	{"department", "department (the vCard's ORGUNIT)", func(e *vcard.Edit) **string { return &e.Department }, func(p store.Profile) string { return p.OrgUnit }},
	{"extension", "phone extension or number (the vCard's work TEL)", func(e *vcard.Edit) **string { return &e.Extension }, func(p store.Profile) string { return strings.Join(p.Phones, ", ") }},
	{"email", "email address", func(e *vcard.Edit) **string { return &e.Email }, func(p store.Profile) string { return strings.Join(p.Emails, ", ") }},
}

// profileArgs are user.profile's arguments, in profileFields' order.
var profileArgs = func() []string {
	args := make([]string, len(profileFields))
	for i, f := range profileFields {
		args[i] = f.arg
	}
	return args
}()

// ProfileArg is an argument of CmdUserProfile: a directory field of the
// account's vCard, and what it holds.
type ProfileArg struct{ Name, Usage string }

// ProfileArgs returns CmdUserProfile's field arguments, in the order the
// profile shows them, for front ends that offer them (the CLI's flags).
func ProfileArgs() []ProfileArg {
	out := make([]ProfileArg, len(profileFields))
	for i, f := range profileFields {
		out[i] = ProfileArg{Name: f.arg, Usage: f.usage}
	}
	return out
}

// runUserProfile runs user.profile: the vCard's directory fields given
// are replaced (XEP-0054; the rest of the vCard stays), and the profile
// the directory now holds is the result, one "field: value" per line.
func runUserProfile(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	if b.VCards == nil {
		return nil, errors.New("no vCard store")
	}
	bare, err := existingAccount(ctx, b, req.Args["jid"])
	if err != nil {
		return nil, err
	}
	owner := bare.String()
	var e vcard.Edit
	for _, f := range profileFields {
		if v, ok := req.Args[f.arg]; ok {
			v = strings.TrimSpace(v)
			if strings.ContainsAny(v, "\r\n") || len(v) > maxProfileArg || !wire.ValidText(v) {
				// Written into the vCard as it is: one line of XML
				// characters, or the stored vCard would not parse.
				return nil, badArg("%s must be one line of at most %d bytes of XML characters", f.arg, maxProfileArg)
			}
			*f.edit(&e) = &v
		}
	}
	// p is the profile the directory holds when the command ends.
	var p store.Profile
	parse := func(raw []byte) (*wire.Element, error) {
		if raw == nil {
			return nil, nil
		}
		v, err := wire.Parse(raw, wire.NewScope(""))
		if err != nil {
			return nil, fmt.Errorf("stored vCard of %s: %w", owner, err)
		}
		return v, nil
	}
	if !givesAny(req.Args, profileArgs) {
		raw, err := b.VCards.Get(ctx, owner)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		v, err := parse(raw)
		if err != nil {
			return nil, err
		}
		if v != nil {
			p = vcard.ProfileOf(v)
		}
	} else {
		// One transaction: a change the user makes meanwhile (a new
		// photo) is not lost.
		err = b.VCards.Update(ctx, owner, func(old []byte) ([]byte, store.Profile, error) {
			v, err := parse(old)
			if err != nil {
				return nil, store.Profile{}, err
			}
			v = e.Apply(v)
			p = vcard.ProfileOf(v)
			if len(v.Children) == 0 {
				return nil, p, nil
			}
			raw := v.AppendXML(nil, "")
			if b.VCardMaxBytes > 0 && len(raw) > b.VCardMaxBytes {
				return nil, p, badArg("the vCard of %s would take %d bytes, more than the %d allowed (directory.vcard_max_bytes)", owner, len(raw), b.VCardMaxBytes)
			}
			return raw, p, nil
		})
		if err != nil {
			return nil, err
		}
	}
	lines := make([]string, len(profileFields))
	for i, f := range profileFields {
		lines[i] = f.arg + ": " + f.show(p)
	}
	return lines, nil
}

// runPresence runs presence.set and presence.clear.
func runPresence(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	bare, err := existingAccount(ctx, b, req.Args["jid"])
	if err != nil {
		return nil, err
	}
	if req.Command == CmdPresenceClear {
		return nil, b.Overrides.ClearOverride(ctx, bare)
	}
	err = b.Overrides.SetOverride(ctx, bare, store.PresenceOverride{
		Show: req.Args["show"], Status: req.Args["status"], CallState: req.Args["call"],
	})
	if errors.Is(err, presence.ErrInvalidOverride) {
		return nil, argError{err}
	}
	return nil, err
}

// runRoom runs room.create and room.destroy.
func runRoom(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	if b.Rooms == nil {
		return nil, errors.New("no rooms")
	}
	room, err := jid.Parse(req.Args["room"])
	if err != nil || room.Localpart() == "" || room.Resourcepart() != "" {
		return nil, badArg("expected ROOM@SERVICE, got %q", req.Args["room"])
	}
	if req.Command == CmdRoomDestroy {
		return nil, b.Rooms.DestroyRoom(ctx, room, req.Args["reason"])
	}
	var owner jid.JID
	if o := req.Args["owner"]; o != "" {
		if owner, err = jid.Parse(o); err != nil {
			return nil, badArg("invalid owner %q: %w", o, err)
		}
	}
	name, _, _ := strings.Cut(req.Args["room"], "@")
	return nil, b.Rooms.CreateRoom(ctx, room, name, owner)
}

// runExport runs history.export.
func runExport(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	if b.Archive == nil {
		return nil, errors.New("no archive")
	}
	now := time.Now()
	since, err := ParseTime(req.Args["since"], now)
	if err != nil {
		return nil, err
	}
	until, err := ParseTime(req.Args["until"], now)
	if err != nil {
		return nil, err
	}
	q := ExportQuery{Archive: req.Args["archive"], Since: since, Until: until}
	if q.Archive == "" {
		return nil, badArg("name a user or a room to export")
	}
	if with := req.Args["with"]; with != "" {
		j, err := jid.Parse(with)
		if err != nil {
			return nil, badArg("invalid --with %q: %w", with, err)
		}
		q.With = j.Bare().String()
	}
	arch, err := jid.Parse(q.Archive)
	if err != nil || arch.Localpart() == "" {
		// Archives are accounts' and rooms'; a bare domain has none.
		return nil, badArg("expected USER@HOST or ROOM@SERVICE, got %q", q.Archive)
	}
	q.Archive = arch.Bare().String()
	if !slices.Contains(ExportFormats, req.Args["format"]) {
		return nil, badArg("unknown format %q (want %s)", req.Args["format"], strings.Join(ExportFormats, " or "))
	}
	// Checked first: a bad request does not wait for the writer.
	if b.Flush != nil {
		if err := b.Flush(ctx); err != nil {
			return nil, err
		}
	}
	var out []string
	emit := b.Emit
	if emit == nil {
		emit = func(l string) error { out = append(out, l); return nil }
	}
	if _, err := Export(ctx, b.Archive, b.IDs, q, req.Args["format"], emit); err != nil {
		return nil, err
	}
	return out, nil
}

// runAuditList runs audit.list.
func runAuditList(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	if b.Audit == nil {
		return nil, errors.New("no audit log")
	}
	since, err := ParseTime(req.Args["since"], time.Now())
	if err != nil {
		return nil, err
	}
	limit := 1000
	if l := req.Args["limit"]; l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 {
			return nil, badArg("invalid limit %q", l)
		}
	}
	var keep func(store.AuditEntry) bool
	if b.AuditTargets != nil {
		keep = func(e store.AuditEntry) bool { return b.AuditTargets(e.Target) }
	}
	entries, err := b.Audit.List(ctx, since, limit, keep)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, fmt.Sprintf("%s\t%s\t%s\t%s\t%s", e.Time.UTC().Format(time.RFC3339), e.Actor, e.Action, e.Target, e.Detail))
	}
	return out, nil
}

// runUserList runs user.list.
func runUserList(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	hosts := []string{req.Args["host"]}
	if j, err := jid.New("", hosts[0], ""); err == nil {
		// Normalised as the other commands' JIDs are: "LOCALHOST."
		// is localhost (RFC 7622 §3.2).
		hosts[0] = j.Domainpart()
	}
	if hosts[0] == "" {
		hosts = b.Accounts.Hosts()
	}
	var out []string
	for _, h := range hosts {
		users, err := b.Accounts.List(ctx, h)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			out = append(out, u+"@"+h)
		}
	}
	return out, nil
}

// adminGate owns the admin commands that run, over the socket or the
// HTTP API: Shutdown closes it and waits for the running ones before it
// stops what they use (the archive writer, the store), and a command
// that comes later is refused. Neither transport waits for its
// handlers on its own: net/http does not once http.Server.Close
// returns, and the socket's connections outlive their listener. The
// zero value is open.
type adminGate struct {
	mu      sync.Mutex
	closed  bool
	running int
	drained chan struct{} // made by close; closed once closed and running is 0
}

// enter reports whether a command may run; if so, leave must follow.
func (g *adminGate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.running++
	return true
}

func (g *adminGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running--
	if g.closed && g.running == 0 {
		close(g.drained)
	}
}

// close refuses later commands and waits for the running ones until ctx
// ends.
func (g *adminGate) close(ctx context.Context) error {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		g.drained = make(chan struct{})
		if g.running == 0 {
			close(g.drained)
		}
	}
	drained := g.drained
	g.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		// select picks at random among ready cases: drained may be
		// closed too (none was running, or the last one left as ctx
		// ended), and then it wins.
		select {
		case <-drained:
			return nil
		default:
		}
		return fmt.Errorf("still running: %w", ctx.Err())
	}
}

// adminServer serves the admin API on a Unix socket (mode 0600).
type adminServer struct {
	ln  net.Listener
	log *slog.Logger
	// ctx is the commands' context, cancelled by cut (as net/http
	// cancels a request's when it cuts its connection).
	ctx    context.Context
	cancel context.CancelFunc
	// running holds the accept loop and each connection's goroutine.
	running adminGate
	mu      sync.Mutex
	conns   map[net.Conn]struct{} // open connections, for cut; nil once cut
}

func startAdmin(path string, s *Server, log *slog.Logger) (*adminServer, error) {
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("server: admin socket %s is in use by another server", path)
	}
	_ = os.Remove(path) // a stale socket from a crash
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("server: admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("server: admin socket: %w", err)
	}
	a := &adminServer{ln: ln, log: log, conns: map[net.Conn]struct{}{}}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.running.enter()
	go func() {
		defer a.running.leave()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			if a.conns == nil { // cut
				a.mu.Unlock()
				c.Close()
				return
			}
			// Before cut (under mu), so before running closes: enter
			// succeeds. Checked all the same, so that a change to that
			// order refuses the connection rather than letting it run
			// past wait.
			if !a.running.enter() {
				a.mu.Unlock()
				c.Close()
				return
			}
			a.conns[c] = struct{}{}
			a.mu.Unlock()
			go func() {
				defer a.running.leave()
				a.serve(c, s)
				a.mu.Lock()
				delete(a.conns, c)
				a.mu.Unlock()
			}()
		}
	}()
	log.Info("admin socket listening", "path", path)
	return a, nil
}

func (a *adminServer) serve(c net.Conn, s *Server) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), 64<<10)
	enc := json.NewEncoder(c)
	run := func(ctx context.Context, cmd adminCommand, req AdminRequest, emit func(string) error) ([]string, error) {
		return s.runAdmin(ctx, cmd, s.adminBackend(), req, emit)
	}
	for sc.Scan() {
		// The gate covers the answer too: Shutdown cuts the
		// connections only once no command is inside it.
		if !s.adminRuns.enter() {
			_ = enc.Encode(AdminResponse{Error: "server shutting down"})
			return
		}
		err := enc.Encode(a.handle(c, enc, run, sc.Bytes()))
		s.adminRuns.leave()
		if err != nil {
			return
		}
	}
}

// adminRun runs a command for the admin socket (Server.runAdmin).
type adminRun func(ctx context.Context, cmd adminCommand, req AdminRequest, emit func(string) error) ([]string, error)

// handle runs one request line with run and returns its final response; a
// streaming command (an export) writes its lines to enc first.
func (a *adminServer) handle(c net.Conn, enc *json.Encoder, run adminRun, line []byte) AdminResponse {
	var req AdminRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return AdminResponse{Error: "malformed request: " + err.Error()}
	}
	cmd, err := lookupCommand(req.Command)
	if err != nil {
		return AdminResponse{Error: err.Error()}
	}
	closed := false // a line could not be written: the CLI is gone
	emit := func(l string) error {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		err := enc.Encode(AdminResponse{Line: &l})
		closed = closed || err != nil
		return err
	}
	res, err := run(a.ctx, cmd, req, emit)
	target := httpapi.LogArg(req.Args[cmd.target])
	if err != nil {
		// The answer has the error too; the log keeps the server's own
		// failures (a flush's or the audit log's), as the HTTP API does,
		// and warns of an export whose connection closed.
		switch {
		case closed && !errors.Is(err, httpapi.ErrNotRecorded):
			a.log.Warn("admin export stopped, its connection closed", "command", req.Command, "target", target, "err", err)
		case httpapi.ServerFault(err):
			a.log.Error("admin command failed", "command", req.Command, "target", target, "err", err)
		}
		return AdminResponse{Error: err.Error()}
	}
	a.log.Info("admin command", "command", req.Command, "target", target)
	return AdminResponse{OK: true, Result: res}
}

// runAdmin runs req, a request for cmd, on a running server: a streaming
// command writes through emit, after the archive writer's queue is on
// disk.
func (s *Server) runAdmin(ctx context.Context, cmd adminCommand, b Backend, req AdminRequest, emit func(string) error) ([]string, error) {
	if cmd.streams {
		b.Emit, b.Flush = emit, s.flushArchive
	}
	return cmd.runAudited(ctx, b, req)
}

// stopAccepting closes the listener: a connection already open can
// still run commands, until the gate closes.
func (a *adminServer) stopAccepting() { a.ln.Close() }

// cut closes every connection (one waiting for its next request would
// otherwise hold on for its 30 s deadline) and cancels the commands still
// running. Call it after stopAccepting, once the gate is closed.
func (a *adminServer) cut() {
	a.mu.Lock()
	for c := range a.conns {
		c.Close()
	}
	a.conns = nil
	a.mu.Unlock()
	a.cancel()
}

// wait waits, after cut, for the accept loop and the connections'
// goroutines until ctx ends.
func (a *adminServer) wait(ctx context.Context) error {
	if err := a.running.close(ctx); err != nil {
		return fmt.Errorf("admin socket: connections %w", err)
	}
	return nil
}

// AdminCall sends one request to a running server's admin socket.
func AdminCall(ctx context.Context, path string, req AdminRequest) (AdminResponse, error) {
	return AdminCallStream(ctx, path, req, nil)
}

// AdminCallStream is AdminCall that hands streamed lines to onLine (or
// adds them to the result when onLine is nil).
func AdminCallStream(ctx context.Context, path string, req AdminRequest, onLine func(string) error) (AdminResponse, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return AdminResponse{}, fmt.Errorf("admin socket %s: %w", path, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	b, err := json.Marshal(req)
	if err != nil {
		return AdminResponse{}, err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return AdminResponse{}, fmt.Errorf("admin socket: %w", err)
	}
	var resp AdminResponse
	dec := json.NewDecoder(bufio.NewReader(c))
	var lines []string
	for {
		resp = AdminResponse{}
		if err := dec.Decode(&resp); err != nil {
			return AdminResponse{}, fmt.Errorf("admin socket: %w", err)
		}
		if resp.Line == nil {
			break
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if onLine == nil {
			lines = append(lines, *resp.Line)
		} else if err := onLine(*resp.Line); err != nil {
			return AdminResponse{}, err
		}
	}
	resp.Result = append(lines, resp.Result...)
	if !resp.OK {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"switchboard/store"
	"switchboard/xmpp/config"
	"switchboard/xmpp/server"
)

func main() {
	if err := newRoot(os.Stdin, os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

// globals are the persistent flags shared by every command.
type globals struct {
	configFile string
	dataDir    string
	domains    []string
}

// load returns the configuration from the file (or the defaults) with the
// persistent flag overrides applied.
func (g *globals) load() (config.Config, error) {
	cfg := config.Defaults()
	if g.configFile != "" {
		var err error
		cfg, err = config.Load(g.configFile)
		if err != nil {
			return cfg, err
		}
	}
	if g.dataDir != "" {
		cfg.Server.DataDir = g.dataDir
	}
	if len(g.domains) > 0 {
		cfg.SetDomains(g.domains)
	}
	return cfg, cfg.Validate()
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "switchboard",
		Short:         "Switchboard, an XMPP server for businesses",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", "", "TOML configuration file (default: embedded defaults)")
	pf.StringVar(&g.dataDir, "data", "", "data directory (overrides server.data_dir)")
	pf.StringArrayVar(&g.domains, "domain", nil, "served domain, repeatable (replaces the configured hosts)")
	root.AddCommand(newServe(g), newConfigCmd(g), newUserCmd(g), newPresenceCmd(g), newHistoryCmd(g), newRoomCmd(g), newAuditCmd(g), newVersion())
	return root
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "switchboard %s\n", server.Version)
		},
	}
}

func newServe(g *globals) *cobra.Command {
	var c2s, c2sTLS, s2s, httpAddr string
	var registration bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil && !isValidation(err) {
				return err
			}
			f := cmd.Flags()
			if f.Changed("c2s") {
				cfg.Listen.C2S = c2s
			}
			if f.Changed("c2s-tls") {
				cfg.Listen.C2STLS = c2sTLS
			}
			if f.Changed("s2s") {
				cfg.Listen.S2S = s2s
			}
			if f.Changed("http") {
				cfg.Listen.HTTP = httpAddr
			}
			if f.Changed("registration") {
				cfg.SetRegistration(registration)
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			log := newLogger(cfg.Log, cmd.ErrOrStderr())
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if path := os.Getenv("SWITCHBOARD_CPUPROFILE"); path != "" {
				// For performance work: a CPU profile of the whole run,
				// written at shutdown (go tool pprof).
				f, err := os.Create(path)
				if err != nil {
					return fmt.Errorf("cpu profile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("cpu profile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			if cfg.Server.ArchiveCommitPriority == config.PriorityIdle {
				if err := store.CheckIdlePriority(); err != nil {
					// Decided here once: the archive writer then neither
					// probes again nor logs it a second time.
					log.Info("archive commits at normal priority", "err", err)
					cfg.Server.ArchiveCommitPriority = config.PriorityNormal
				} else {
					// This process is ours: idle-priority commits may
					// lend the runtime a processor while they run.
					store.LendProcessors()
				}
			}
			srv, err := server.New(ctx, cfg, log)
			if err != nil {
				return err
			}
			gcCtx, stopGC := context.WithCancel(ctx)
			gcDone := make(chan struct{})
			go func() {
				defer close(gcDone)
				keepGCHeadroom(gcCtx, log)
			}()
			defer func() {
				stopGC()
				<-gcDone
			}()
			return srv.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c2s, "c2s", "", "client listener with STARTTLS (host:port, empty disables)")
	f.StringVar(&c2sTLS, "c2s-tls", "", "client listener with direct TLS, XEP-0368 (host:port, empty disables)")
	f.StringVar(&s2s, "s2s", "", "server-to-server listener: federation with other servers (host:port; \"\" turns federation off)")
	f.StringVar(&httpAddr, "http", "", "HTTPS listener for WebSocket and BOSH clients, file uploads and the admin HTTP API (host:port; \"\" disables)")
	f.BoolVar(&registration, "registration", false, "open in-band registration (XEP-0077) on every host")
	return cmd
}

// isValidation reports whether err came from Validate (and may be fixed by
// serve's own flags) rather than from reading the file.
func isValidation(err error) bool {
	var fe *config.FieldError
	return errors.As(err, &fe)
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == config.FormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Configuration tools"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate a configuration file without starting anything",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				g.configFile = args[0]
			}
			if g.configFile == "" {
				return errors.New("config check: name a file (argument or --config)")
			}
			if _, err := g.load(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK\n", g.configFile)
			return nil
		},
	})
	return cmd
}

func newUserCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage accounts (through the running server's admin socket, or the data file when it is stopped)"}
	var password string
	add := &cobra.Command{
		Use:   "add USER@HOST",
		Short: "Create an account (password from --password, a prompt, or standard input)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, password)
			if err != nil {
				return err
			}
			return g.admin(cmd, server.AdminRequest{Command: server.CmdUserAdd, Args: map[string]string{"jid": args[0], "password": pw}})
		},
	}
	add.Flags().StringVar(&password, "password", "", "the password (visible to other local users: prefer the prompt or stdin)")
	passwd := &cobra.Command{
		Use:   "passwd USER@HOST",
		Short: "Change an account's password",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, password)
			if err != nil {
				return err
			}
			return g.admin(cmd, server.AdminRequest{Command: server.CmdUserPasswd, Args: map[string]string{"jid": args[0], "password": pw}})
		},
	}
	passwd.Flags().StringVar(&password, "password", "", "the new password")
	del := &cobra.Command{
		Use:   "del USER@HOST",
		Short: "Delete an account",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.admin(cmd, server.AdminRequest{Command: server.CmdUserDel, Args: map[string]string{"jid": args[0]}})
		},
	}
	list := &cobra.Command{
		Use:   "list [HOST]",
		Short: "List accounts",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := server.AdminRequest{Command: server.CmdUserList, Args: map[string]string{}}
			if len(args) == 1 {
				req.Args["host"] = args[0]
			}
			return g.admin(cmd, req)
		},
	}
	fields := server.ProfileArgs()
	use := "profile USER@HOST"
	for _, f := range fields {
		use += " [--" + f.Name + " " + strings.ToUpper(f.Name) + "]"
	}
	profile := &cobra.Command{
		Use:   use,
		Short: "Show or set the directory fields of an account's vCard (an empty value removes one); the rest of the vCard stays",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := server.AdminRequest{Command: server.CmdUserProfile, Args: map[string]string{"jid": args[0]}}
			for _, f := range fields {
				if cmd.Flags().Changed(f.Name) {
					req.Args[f.Name], _ = cmd.Flags().GetString(f.Name)
				}
			}
			return g.admin(cmd, req)
		},
	}
	for _, f := range fields {
		profile.Flags().String(f.Name, "", f.Usage)
	}
	cmd.AddCommand(add, passwd, del, list, profile)
	return cmd
}

func newPresenceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "presence",
		Short: "Set presence from outside (e.g. \"busy: on a call\" from a phone system)",
	}
	var show, status, call string
	set := &cobra.Command{
		Use:   "set USER@HOST",
		Short: "Override the user's availability on all of their devices until cleared",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.admin(cmd, server.AdminRequest{Command: server.CmdPresenceSet, Args: map[string]string{
				"jid": args[0], "show": show, "status": status, "call": call,
			}})
		},
	}
	set.Flags().StringVar(&show, "show", "", "availability: away, chat, dnd (busy) or xa; empty is available")
	set.Flags().StringVar(&status, "status", "", "status message, e.g. \"On a call\"")
	set.Flags().StringVar(&call, "call", "", "call state: ringing, on-call, in-meeting, forwarding or private")
	clear := &cobra.Command{
		Use:   "clear USER@HOST",
		Short: "Remove the override; the user's own presence shows again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.admin(cmd, server.AdminRequest{Command: server.CmdPresenceClear, Args: map[string]string{"jid": args[0]}})
		},
	}
	cmd.AddCommand(set, clear)
	return cmd
}

// actor names who runs an admin command, for the audit log.
func actor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

func newHistoryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "history", Short: "Archived messages"}
	var userJID, room, with, since, until, format string
	export := &cobra.Command{
		Use:   "export (--user USER@HOST | --room ROOM@SERVICE) [--with JID] [--since T] [--until T] --format json|jsonl|csv",
		Short: "Stream archived messages (time, id, author, body, ...) as JSON, JSON Lines or CSV",
		Long: "Stream archived messages, oldest first. Times are RFC 3339, a date (2006-01-02), \"today\", " +
			"\"yesterday\" or an age such as 7d, 30d or 12h. The export is recorded in the audit log.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			archive := userJID
			if (userJID == "") == (room == "") {
				return errors.New("give exactly one of --user and --room")
			}
			if room != "" {
				archive = room
			}
			return g.admin(cmd, server.AdminRequest{Command: server.CmdHistoryExport, Args: map[string]string{
				"archive": archive, "with": with, "since": since, "until": until, "format": format,
			}})
		},
	}
	f := export.Flags()
	f.StringVar(&userJID, "user", "", "the user whose archive to export")
	f.StringVar(&room, "room", "", "the room whose archive to export")
	f.StringVar(&with, "with", "", "only the conversation with this JID")
	f.StringVar(&since, "since", "", "only messages from this time on")
	f.StringVar(&until, "until", "", "only messages up to this time")
	f.StringVar(&format, "format", "jsonl", "json, jsonl or csv")
	cmd.AddCommand(export)
	return cmd
}

func newRoomCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "room", Short: "Chat rooms and issue chats"}
	var since, until, format string
	history := &cobra.Command{
		Use:   "history ROOM@SERVICE [--since T] [--until T] --format json|jsonl|csv",
		Short: "Export a room's history, e.g. an issue chat as the issue's comment log (time, author, body, stanza id)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.admin(cmd, server.AdminRequest{Command: server.CmdHistoryExport, Args: map[string]string{
				"archive": args[0], "since": since, "until": until, "format": format,
			}})
		},
	}
	history.Flags().StringVar(&since, "since", "", "only messages from this time on")
	history.Flags().StringVar(&until, "until", "", "only messages up to this time")
	history.Flags().StringVar(&format, "format", "json", "json, jsonl or csv")
	var owner, reason string
	create := &cobra.Command{
		Use:   "create ROOM@SERVICE [--owner USER@HOST]",
		Short: "Create a persistent room (an issue chat on the issue service) before anyone joins it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.admin(cmd, server.AdminRequest{Command: server.CmdRoomCreate, Args: map[string]string{"room": args[0], "owner": owner}})
		},
	}
	create.Flags().StringVar(&owner, "owner", "", "the room's owner")
	destroy := &cobra.Command{
		Use:   "destroy ROOM@SERVICE [--reason TEXT]",
		Short: "Destroy a room; occupants are told the reason. Its history stays exportable",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.admin(cmd, server.AdminRequest{Command: server.CmdRoomDestroy, Args: map[string]string{"room": args[0], "reason": reason}})
		},
	}
	destroy.Flags().StringVar(&reason, "reason", "", "why, shown to the occupants")
	cmd.AddCommand(history, create, destroy)
	return cmd
}

func newAuditCmd(g *globals) *cobra.Command {
	var since string
	var limit int
	cmd := &cobra.Command{
		Use:   "audit [--since T] [--limit N]",
		Short: "Show the admin audit log (time, actor, action, target, detail)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.admin(cmd, server.AdminRequest{Command: server.CmdAuditList, Args: map[string]string{
				"since": since, "limit": strconv.Itoa(limit),
			}})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "entries from this time on (RFC 3339, a date, today, yesterday, 7d, ...)")
	cmd.Flags().IntVar(&limit, "limit", 1000, "at most this many entries")
	return cmd
}

// admin runs a command through the running server's admin socket or, when
// no server runs, directly on the data file.
func (g *globals) admin(cmd *cobra.Command, req server.AdminRequest) error {
	cfg, err := g.load()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Minute)
	defer cancel()
	if req.Args == nil {
		req.Args = map[string]string{}
	}
	req.Args["actor"] = actor()
	var emit func(string) error
	if req.Command == server.CmdHistoryExport {
		out := cmd.OutOrStdout()
		emit = func(l string) error {
			_, err := fmt.Fprintln(out, l)
			return err
		}
	}
	var result []string
	db, err := store.Open(ctx, cfg.DBPath(), store.Options{LockTimeout: 300 * time.Millisecond})
	switch {
	case err == nil:
		defer db.Close()
		ids, ierr := server.ArchiveIDs(cfg.Server.DataDir)
		if ierr != nil {
			return ierr
		}
		result, err = server.RunCommand(ctx, server.Backend{
			IDs:           ids,
			Rooms:         server.StoredRooms{Store: db.Rooms(), Config: cfg},
			Accounts:      server.NewAccounts(db.Users(), cfg.Domains()),
			VCards:        db.VCards(),
			VCardMaxBytes: cfg.Directory.VCardMaxBytes,
			Overrides:     server.StoredOverrides{Store: db.PresenceOverrides()},
			Archive:       db.Archive(),
			Audit:         db.Audit(),
			Emit:          emit,
		}, req)
		if err != nil {
			return err
		}
	case errors.Is(err, store.ErrLocked):
		path := cfg.AdminSocketPath()
		if path == "" {
			return fmt.Errorf("the data file %s is in use by a running server and its admin socket is disabled (listen.admin_socket): stop the server or enable the socket", cfg.DBPath())
		}
		resp, cerr := server.AdminCallStream(ctx, path, req, emit)
		if cerr != nil {
			if resp.Error != "" {
				return errors.New(resp.Error)
			}
			return fmt.Errorf("the data file %s is in use by a running server, and its admin socket is not reachable: %w", cfg.DBPath(), cerr)
		}
		result = resp.Result
	default:
		return err
	}
	for _, line := range result {
		fmt.Fprintln(cmd.OutOrStdout(), line)
	}
	if req.Command != server.CmdUserList && req.Command != server.CmdHistoryExport && req.Command != server.CmdAuditList {
		target := req.Args["jid"]
		if target == "" {
			target = req.Args["room"]
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%s %s: done\n", req.Command, target)
	}
	return nil
}

// readPassword returns the flag value, or prompts on a terminal (twice,
// without echo), or reads one line from standard input.
func readPassword(cmd *cobra.Command, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		fmt.Fprint(cmd.ErrOrStderr(), "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password given (use --password, a terminal, or standard input)")
	}
	return line, nil
}

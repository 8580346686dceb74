package server

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/mam"
	"switchboard/xmpp/wire"
)

// ExportQuery selects archived messages for an export.
type ExportQuery struct {
	// Archive is a user's bare JID or a room's JID.
	Archive string
	// With restricts to one conversation partner ("" = all).
	With string
	// Since and Until bound the time (zero = open).
	Since, Until time.Time
}

// ExportRecord is one exported message.
type ExportRecord struct {
	ID        string `json:"id"`
	Time      string `json:"time"`
	Archive   string `json:"archive"`
	With      string `json:"with"`
	Direction string `json:"direction"`
	From      string `json:"from"`
	To        string `json:"to"`
	Type      string `json:"type,omitempty"`
	Body      string `json:"body"`
}

// ExportFormats are the supported formats.
var ExportFormats = []string{"json", "jsonl", "csv"}

// exportCSVHeader is the first line of a CSV export.
var exportCSVHeader = []string{"time", "id", "archive", "with", "direction", "from", "to", "type", "body"}

// Export streams the archived messages matching q, oldest first, one line
// per message (JSON Lines; CSV after a header line; or a JSON array, its
// brackets on lines of their own), through emit. It pages through the
// archive, so memory does not grow with its size.
//
// Nothing is emitted before the first page is read, so that a store error
// there (the store closing at shutdown, say) reaches the caller while it
// can still answer with an error status; and a JSON array is closed only
// when the export is complete, so that one cut short by an error does not
// read as a whole.
func Export(ctx context.Context, a *store.Archive, ids mam.IDCodec, q ExportQuery, format string, emit func(string) error) (int, error) {
	var head, tail string
	var line func(ExportRecord) (string, error)
	switch format {
	case "json":
		// One JSON array, one record per line.
		head, tail = "[", "]"
		first := true
		line = func(r ExportRecord) (string, error) {
			b, err := json.Marshal(r)
			sep := ","
			if first {
				sep, first = " ", false
			}
			return sep + string(b), err
		}
	case "jsonl":
		line = func(r ExportRecord) (string, error) {
			b, err := json.Marshal(r)
			return string(b), err
		}
	case "csv":
		head = csvLine(exportCSVHeader)
		line = func(r ExportRecord) (string, error) {
			return csvLine([]string{r.Time, r.ID, r.Archive, r.With, r.Direction, r.From, r.To, r.Type, r.Body}), nil
		}
	default:
		return 0, badArg("unknown format %q (want %s)", format, strings.Join(ExportFormats, " or "))
	}
	aq := store.ArchiveQuery{Archive: q.Archive, With: q.With, Start: q.Since, End: q.Until, Max: 500}
	n := 0
	for {
		page, err := a.Query(ctx, aq)
		if err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		if head != "" {
			if err := emit(head); err != nil {
				return n, err
			}
			head = ""
		}
		for _, rec := range page.Records {
			l, err := line(toExport(rec, ids))
			if err != nil {
				return n, err
			}
			if err := emit(l); err != nil {
				return n, err
			}
			n++
		}
		if page.Complete || len(page.Records) == 0 {
			if tail != "" {
				if err := emit(tail); err != nil {
					return n, err
				}
			}
			return n, nil
		}
		aq.AfterID = page.Records[len(page.Records)-1].ID
	}
}

func toExport(rec store.ArchiveRecord, ids mam.IDCodec) ExportRecord {
	r := ExportRecord{
		// The stanza id clients saw (XEP-0359), opaque.
		ID:      ids.Format(rec.ID),
		Time:    rec.Time().UTC().Format(time.RFC3339Nano),
		Archive: rec.Archive,
		With:    rec.With,
	}
	r.Direction = "in"
	if rec.Direction == store.DirOut {
		r.Direction = "out"
	}
	if el, err := wire.Parse(rec.Stanza, wire.NewScope(wire.NSClient)); err == nil {
		r.From, r.To, r.Type = el.AttrValue("from"), el.AttrValue("to"), el.AttrValue("type")
		r.Body = el.ChildText("body", xmpp.NSClient)
	}
	return r
}

func csvLine(fields []string) string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(fields)
	w.Flush()
	return strings.TrimRight(b.String(), "\n")
}

// ParseTime reads a time for the admin commands: RFC 3339, a date
// (2006-01-02, midnight UTC), "yesterday", "today", or an age such as
// "7d", "30d" or "12h" before now.
func ParseTime(s string, now time.Time) (time.Time, error) {
	switch s {
	case "":
		return time.Time{}, nil
	case "today":
		y, m, d := now.UTC().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
	case "yesterday":
		y, m, d := now.UTC().AddDate(0, 0, -1).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if strings.HasSuffix(s, "d") {
		if n, err := strconv.Atoi(strings.TrimSuffix(s, "d")); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, badArg("invalid time %q (RFC 3339, YYYY-MM-DD, today, yesterday, or an age like 7d or 12h)", s)
}

// ArchiveIDs returns the codec of the opaque archive ids of the server
// whose data directory is dataDir (for exports with the server stopped and
// for tests).
func ArchiveIDs(dataDir string) (mam.IDCodec, error) {
	secret, err := loadOrCreateSecret(filepath.Join(dataDir, secretFile))
	if err != nil {
		return mam.IDCodec{}, err
	}
	return mam.NewIDCodec(secret), nil
}

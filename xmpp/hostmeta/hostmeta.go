package hostmeta

import (
	"encoding/json"
	"net/http"
	"strings"

	"switchboard/xmpp/wire"
)

// Link is an endpoint to advertise.
type Link struct {
	// Rel is the link relation (XEP-0156 §3): for instance
	// urn:xmpp:alt-connections:websocket.
	Rel string
	// WebSocket says the URL's scheme is ws or wss, not http or https.
	WebSocket bool
	// Path is the endpoint's path on the server.
	Path string
}

// Handler serves the links at /.well-known/host-meta and
// /.well-known/host-meta.json, with the host the request came to, over
// TLS (wss, https) when the request came over TLS. Any origin may read
// them (§3.2: CORS), as browser clients must.
func Handler(links ...Link) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		hrefs := make([]string, len(links))
		for i, l := range links {
			scheme := "http"
			if l.WebSocket {
				scheme = "ws"
			}
			if r.TLS != nil {
				scheme += "s"
			}
			hrefs[i] = scheme + "://" + r.Host + l.Path
		}
		if strings.HasSuffix(r.URL.Path, ".json") {
			w.Header().Set("Content-Type", "application/json")
			type link struct {
				Rel  string `json:"rel"`
				Href string `json:"href"`
			}
			out := struct {
				Links []link `json:"links"`
			}{make([]link, len(links))}
			for i, l := range links {
				out.Links[i] = link{l.Rel, hrefs[i]}
			}
			_ = json.NewEncoder(w).Encode(out)
			return
		}
		w.Header().Set("Content-Type", "application/xrd+xml")
		b := []byte("<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n")
		for i, l := range links {
			b = append(b, "  <Link rel='"...)
			b = wire.AppendEscapedAttr(b, l.Rel)
			b = append(b, "' href='"...)
			b = wire.AppendEscapedAttr(b, hrefs[i])
			b = append(b, "'/>\n"...)
		}
		_, _ = w.Write(append(b, "</XRD>\n"...))
	})
}

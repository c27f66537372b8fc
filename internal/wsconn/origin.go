package wsconn

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ErrOrigin is returned by Upgrade for a browser page whose origin may not
// open the WebSocket (it was answered 403).
var ErrOrigin = errors.New("wsconn: origin not allowed")

// OriginAllowed reports whether the WebSocket upgrade r may proceed, given
// the origins configured besides the defaults (--allowed-origins). A
// browser names the page that opens a WebSocket in Origin; a page of
// another site must not use a visitor's token. Allowed are:
//   - a request without Origin (not a browser: bots, game clients, tools);
//   - an origin listed in allowed (scheme://host[:port], compared without
//     case; "*" allows every origin);
//   - an origin on the host the request was sent to (Host), on any port:
//     arena's pages come from the dispatcher, and their sockets go to the
//     fight, map and chat servers' ports of the same host;
//   - an origin on a loopback host (localhost, 127.0.0.0/8, [::1]).
//
// Anything else, "null" and malformed origins included, is refused.
func OriginAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(strings.TrimRight(a, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if isLoopback(host) {
		return true
	}
	reqHost := r.Host
	if h, _, err := net.SplitHostPort(reqHost); err == nil {
		reqHost = h
	}
	reqHost = strings.ToLower(strings.Trim(reqHost, "[]"))
	return reqHost != "" && host == reqHost
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

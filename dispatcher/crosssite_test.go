package dispatcher

import (
	"net/http"
	"strings"
	"testing"

	"github.com/arena-game/arena/internal/wsconn/wsconntest"
)

// post sends body to path with the given Content-Type and returns the
// status.
func (td *testDispatcher) post(t *testing.T, path, contentType, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", td.base+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestJSONEndpointsRequireJSON: a cross-site page can send text/plain,
// form and multipart POSTs without a CORS preflight; the JSON endpoints
// refuse them (415) before doing anything, so a foreign page cannot make a
// visitor's browser create guests and spend that address's login budget.
func TestJSONEndpointsRequireJSON(t *testing.T) {
	td := newTestDispatcher(t, nil)
	body := `{"username":"csrf"}`
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/jsonx"} {
		for range 40 { // more than the address's burst of 30 logins
			if code := td.post(t, "/v1/login", ct, body); code != http.StatusUnsupportedMediaType {
				t.Fatalf("POST /v1/login as %q: %d, want 415", ct, code)
			}
		}
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON"} {
		if code := td.post(t, "/v1/login", ct, body); code != http.StatusOK {
			t.Fatalf("POST /v1/login as %q: %d, want 200 (the refused posts spent no login budget)", ct, code)
		}
	}
	for _, path := range []string{"/v1/tickets", "/v1/tokens", "/v1/fleet/maxnum", "/v1/bots"} {
		if code := td.post(t, path, "text/plain", `{}`); code != http.StatusUnsupportedMediaType {
			t.Fatalf("POST %s as text/plain: %d, want 415", path, code)
		}
	}
}

// upgrade tries a /v1/play upgrade with origin ("" sends none) and returns
// the HTTP status (101 on success).
func upgrade(t *testing.T, td *testDispatcher, token, origin string) int {
	t.Helper()
	code, err := wsconntest.UpgradeStatus(td.ws+"/v1/play?token="+token, origin)
	if err != nil {
		t.Fatalf("upgrade with origin %q: %v", origin, err)
	}
	return code
}

// TestPlayUpgradeChecksOrigin: a browser page of another site cannot open
// /v1/play with a token it got hold of; the dispatcher's own pages,
// localhost, the configured origins and clients that send no Origin can.
func TestPlayUpgradeChecksOrigin(t *testing.T) {
	td := newTestDispatcher(t, func(c *Config) { c.AllowedOrigins = []string{"https://game.example"} })
	tok := td.login(t, "origin").Token
	_, host := td.Addrs()
	_, port, _ := strings.Cut(host, ":")
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"", 101},
		{"http://" + host, 101},
		{"http://localhost:3000", 101},
		{"http://127.0.0.1:" + port, 101},
		{"http://[::1]:8080", 101},
		{"https://game.example", 101},
		{"https://GAME.example", 101},
		{"https://evil.example", 403},
		{"https://game.example.evil.example", 403},
		{"http://game.example", 403}, // another scheme is another origin
		{"null", 403},
		{"not a url", 403},
	} {
		if got := upgrade(t, td, tok, tc.origin); got != tc.want {
			t.Errorf("origin %q: %d, want %d", tc.origin, got, tc.want)
		}
	}
}

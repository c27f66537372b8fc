package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, url string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPagesAndStaticFiles(t *testing.T) {
	h := Handler()
	for _, c := range []struct {
		url, ctype, contains string
	}{
		{"/", "text/html", `src="/static/js/play.js"`},
		{"/dashboard", "text/html", `src="/static/js/dashboard.js"`},
		{"/turns", "text/html", `src="/static/js/turns.js"`},
		{"/static/js/play.js", "text/javascript", "import"},
		{"/static/js/fight.js", "text/javascript", "export class Fight"},
		{"/static/css/style.css", "text/css", ":root"},
		{"/static/img/bot.svg", "image/svg+xml", "<svg"},
		{"/static/img/avatar-1.svg", "image/svg+xml", "<svg"},
	} {
		r := get(t, h, "GET", c.url)
		if r.StatusCode != 200 {
			t.Errorf("%s: status %d", c.url, r.StatusCode)
			continue
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
			t.Errorf("%s: content type %q, want %s", c.url, ct, c.ctype)
		}
		if !strings.Contains(body(t, r), c.contains) {
			t.Errorf("%s: body lacks %q", c.url, c.contains)
		}
		if r.Header.Get("ETag") == "" || r.Header.Get("Cache-Control") != "no-cache" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", c.url, r.Header)
		}
		if strings.HasSuffix(c.ctype, "html") && !strings.Contains(r.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: no CSP", c.url)
		}
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	h := Handler()
	for _, url := range []string{
		"/nope", "/index.html", "/static/", "/static/index.html", "/static/dashboard.html",
		"/static/js/missing.js", "/static/../web.go", "/static/js/../../web.go", "/static/%2e%2e/web.go",
		"/dashboard/x", "/static/js",
	} {
		r := get(t, h, "GET", url)
		switch {
		case strings.Contains(url, ".."):
			// The mux cleans dot-dot paths with a redirect; nothing is served.
			if r.StatusCode == 200 || strings.Contains(body(t, r), "package web") {
				t.Errorf("GET %s: status %d served a file", url, r.StatusCode)
			}
		case r.StatusCode != http.StatusNotFound:
			t.Errorf("GET %s: status %d, want 404", url, r.StatusCode)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if r := get(t, h, m, "/"); r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /: status %d, want 405", m, r.StatusCode)
		}
	}
	if r := get(t, h, "HEAD", "/static/css/style.css"); r.StatusCode != 200 || body(t, r) != "" {
		t.Errorf("HEAD: %d", r.StatusCode)
	}
}

func TestETagRevalidation(t *testing.T) {
	h := Handler()
	r := get(t, h, "GET", "/static/js/play.js")
	tag := r.Header.Get("ETag")
	if r2 := get(t, h, "GET", "/static/js/play.js", "If-None-Match", tag); r2.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", r2.StatusCode)
	}
	if r3 := get(t, h, "GET", "/static/js/play.js", "If-None-Match", `"other"`); r3.StatusCode != 200 {
		t.Errorf("stale If-None-Match: status %d", r3.StatusCode)
	}
}

var (
	refRe    = regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`)
	importRe = regexp.MustCompile(`(?m)^\s*import\b[^'"]*['"](\./[^'"]+)['"]`)
)

// TestEveryReferenceIsEmbedded checks that every file the pages reference
// (scripts, styles, images, and the modules the scripts import) is served.
func TestEveryReferenceIsEmbedded(t *testing.T) {
	p := NewPages()
	h := p.Handler()
	for _, page := range []string{"index.html", "dashboard.html", "turns.html"} {
		b, err := fs.ReadFile(FS(), page)
		if err != nil {
			t.Fatal(err)
		}
		refs := refRe.FindAllStringSubmatch(string(b), -1)
		if len(refs) < 3 {
			t.Fatalf("%s references only %v", page, refs)
		}
		for _, m := range refs {
			if r := get(t, h, "GET", m[1]); r.StatusCode != 200 {
				t.Errorf("%s references %s: status %d", page, m[1], r.StatusCode)
			}
		}
	}
	for _, name := range p.Names() {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		b, _ := fs.ReadFile(FS(), name)
		for _, m := range importRe.FindAllStringSubmatch(string(b), -1) {
			target := path.Join(path.Dir(name), m[1])
			if r := get(t, h, "GET", "/static/"+target); r.StatusCode != 200 {
				t.Errorf("%s imports %s: status %d", name, m[1], r.StatusCode)
			}
		}
	}
}

// TestPagesNeedNoInlineCode keeps the pages within their Content Security
// Policy: no inline scripts, inline styles or event handler attributes.
func TestPagesNeedNoInlineCode(t *testing.T) {
	bad := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\sstyle\s*=|\son[a-z]+\s*=|javascript:`)
	for _, page := range []string{"index.html", "dashboard.html", "turns.html"} {
		b, _ := fs.ReadFile(FS(), page)
		if m := bad.FindString(string(b)); m != "" {
			t.Errorf("%s has inline code: %q", page, m)
		}
	}
	for _, name := range NewPages().Names() {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		b, _ := fs.ReadFile(FS(), name)
		for _, forbidden := range []string{"innerHTML", "eval(", "new Function", "document.write", "setAttribute('style'"} {
			if strings.Contains(string(b), forbidden) {
				t.Errorf("%s uses %s", name, forbidden)
			}
		}
	}
}

// BenchmarkServeStatic serves one script through Pages (in memory, ETag
// precomputed); BenchmarkServeStaticBaseline serves the same file with the
// standard library's http.FileServer over the same embedded files.
func BenchmarkServeStatic(b *testing.B) {
	benchServe(b, Handler(), "/static/js/play.js")
}

func BenchmarkServeStaticBaseline(b *testing.B) {
	benchServe(b, http.StripPrefix("/static/", http.FileServer(http.FS(FS()))), "/static/js/play.js")
}

// BenchmarkRevalidate is a browser's reload: the same GET with the ETag it
// holds, answered 304 with no body. The baseline (http.FileServer over
// embed, which has no modification times and so no validators) sends the
// whole file again.
func BenchmarkRevalidate(b *testing.B) {
	h := Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/static/js/play.js", nil))
	benchServe(b, h, "/static/js/play.js", "If-None-Match", rec.Header().Get("ETag"))
}

func BenchmarkRevalidateBaseline(b *testing.B) {
	benchServe(b, http.StripPrefix("/static/", http.FileServer(http.FS(FS()))), "/static/js/play.js", "If-None-Match", `"x"`)
}

func benchServe(b *testing.B, h http.Handler, url string, hdr ...string) {
	req := httptest.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	b.ReportAllocs()
	var bytes int
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != http.StatusNotModified {
			b.Fatal(rec.Code)
		}
		bytes = rec.Body.Len()
	}
	b.ReportMetric(float64(bytes), "body-bytes/op")
}

// TestTrailingSlashPages: /dashboard/ and /turns/ (a typed URL, a
// bookmark) lead to their pages instead of a 404.
func TestTrailingSlashPages(t *testing.T) {
	h := Handler()
	for _, c := range []struct{ url, to string }{{"/dashboard/", "/dashboard"}, {"/turns/", "/turns"}} {
		r := get(t, h, "GET", c.url)
		if r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != c.to {
			t.Errorf("GET %s: %d to %q, want 301 to %s", c.url, r.StatusCode, r.Header.Get("Location"), c.to)
		}
	}
}

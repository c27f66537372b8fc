// Package web holds arena's browser pages, embedded in the binary so that
// `go run ./cmd/arena up` serves them with no build step:
//
//   - the play page (GET /): play as a guest, queue, fight on a canvas,
//     chat, walk the map world;
//   - the fleet dashboard (GET /dashboard): the process table live over
//     server-sent events, queue and match statistics, operator controls;
//   - their static files (GET /static/...): plain ES modules, CSS, SVG.
//
// The pages are clients of arena's public protocols (docs/PROTOCOL.md,
// docs/fight.md, docs/maps.md, docs/chat.md); nothing here is a mock.
// docs/web.md describes them.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var embedded embed.FS

// FS returns the static files, rooted at the static folder (index.html,
// dashboard.html, js/, css/, img/).
func FS() fs.FS {
	sub, err := fs.Sub(embedded, "static")
	if err != nil {
		panic(err) // the folder is embedded at build time
	}
	return sub
}

// file is one embedded file with its precomputed headers.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// Pages serves the embedded pages. Create it with NewPages; it is safe for
// concurrent use and immutable.
type Pages struct {
	files map[string]file // by path inside FS(), e.g. "js/play.js"
	csp   string
}

// NewPages loads every embedded file into memory (they are small) with its
// content type and a strong ETag.
func NewPages() *Pages {
	p := &Pages{files: map[string]file{}, csp: contentSecurityPolicy}
	root := FS()
	err := fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(name))
		switch path.Ext(name) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		case "":
			ct = "application/octet-stream"
		}
		if ct == "" {
			ct = http.DetectContentType(b)
		}
		sum := sha256.Sum256(b)
		p.files[name] = file{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return p
}

// contentSecurityPolicy allows only this origin's scripts and styles, images
// from here, data: URLs and http(s) (player photos), and WebSocket
// connections to any host: fight, map and chat servers listen on their own
// ports, which 'self' does not cover.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: http: https:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves GET / (the play page), GET /dashboard (the dashboard),
// GET /turns and GET /static/NAME (any embedded file), with /dashboard/
// and /turns/ redirected to their pages; anything else is 404. Pages and
// files are sent with Cache-Control: no-cache and an ETag, so a browser
// revalidates and a new binary's pages show at once.
func (p *Pages) Handler() http.Handler {
	mux := http.NewServeMux()
	p.Register(mux)
	return mux
}

// Register adds Handler's routes to mux, for a server that mounts the
// pages beside its own routes (the dispatcher).
func (p *Pages) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", p.page("index.html"))
	mux.HandleFunc("GET /static/", p.static)
	for _, name := range []string{"dashboard", "turns"} {
		mux.HandleFunc("GET /"+name, p.page(name+".html"))
		mux.Handle("GET /"+name+"/{$}", http.RedirectHandler("/"+name, http.StatusMovedPermanently))
	}
}

// Handler returns NewPages().Handler().
func Handler() http.Handler { return NewPages().Handler() }

// Page returns an http.HandlerFunc serving the embedded file name (a path
// inside FS) as a page. It panics if name is not embedded.
func (p *Pages) page(name string) http.HandlerFunc {
	if _, ok := p.files[name]; !ok {
		panic("web: no embedded page " + name)
	}
	return func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, name) }
}

func (p *Pages) static(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/static/")
	if !ok || name == "" || strings.Contains(name, "..") || strings.HasSuffix(name, ".html") {
		http.NotFound(w, r)
		return
	}
	if _, ok := p.files[name]; !ok {
		http.NotFound(w, r)
		return
	}
	p.serve(w, r, name)
}

func (p *Pages) serve(w http.ResponseWriter, r *http.Request, name string) {
	f := p.files[name]
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if strings.HasSuffix(name, ".html") {
		h.Set("Content-Security-Policy", p.csp)
		h.Set("X-Frame-Options", "DENY")
	}
	// ServeContent answers If-None-Match with 304 and handles HEAD and ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

// Names returns the embedded file names (paths inside FS), for tests.
func (p *Pages) Names() []string {
	out := make([]string, 0, len(p.files))
	for n := range p.files {
		out = append(out, n)
	}
	return out
}

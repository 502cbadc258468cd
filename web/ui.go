package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"time"
)

// The web view: plain HTML, CSS and JavaScript modules with no build step,
// embedded so that an air-gapped box fetches nothing from anywhere else.
//
//go:embed ui
var uiFiles embed.FS

// uiPrefix is where assets are served; the asset version follows it, so
// that a URL names one content and can be cached for good.
const uiPrefix = "/ui/"

// uiCSP allows only this origin: scripts and styles from files (no inline
// code), fetch and WebSocket to the same host.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiAssets is the embedded web view, read once at start.
type uiAssets struct {
	version string            // digest of every asset: changes when any file does
	files   map[string][]byte // path inside ui/ → content
	index   []byte            // index.html with the versioned asset prefix filled in
	etag    string            // of index
}

// summaryPreload is index.html's preload of the page's first read. A
// server with an auth file serves the page without it: the preload is
// sent without the page's token (a 401), and Chromium hands that answer
// to the page's own request, which carries the token.
var summaryPreload = []byte(`<link rel="preload" as="fetch" href="/v1/summary" crossorigin>` + "\n")

// withoutPreload is the page of a server with an auth file. Its ETag
// differs, so that a browser never revalidates one page into the other
// when the same binary restarts with or without an auth file.
func (a *uiAssets) withoutPreload() {
	a.index = bytes.Replace(a.index, summaryPreload, nil, 1)
	a.etag = `"` + a.version + `-auth"`
}

func loadUI() *uiAssets {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	a := &uiAssets{files: map[string][]byte{}}
	var names []string
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		a.files[p] = b
		names = append(names, p)
		return err
	})
	if err != nil {
		panic(err)
	}
	// One digest for the whole set: modules import each other by relative
	// path, so they must all move to a new URL together.
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write(a.files[n])
	}
	a.version = hex.EncodeToString(h.Sum(nil))[:12]
	a.index = bytes.ReplaceAll(a.files["index.html"], []byte("{{ASSETS}}"), []byte(uiPrefix+a.version))
	a.etag = `"` + a.version + `"`
	return a
}

var uiTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json",
}

// uiRoutes serves the page at / and its assets under /ui/<version>/.
func (s *Server) uiRoutes() {
	ui := loadUI()
	if s.authSet.Load() != nil {
		ui.withoutPreload()
	}
	// The page and its files are open: they hold no data, and the page
	// asks for a token when the server needs one.
	s.handle("GET /{$}", accessOpen, ui.serveIndex)
	s.handle("GET "+uiPrefix+"{version}/{file...}", accessOpen, ui.serveAsset)
	s.access["GET /favicon.ico"] = accessOpen
	s.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, uiPrefix+ui.version+"/favicon.svg", http.StatusFound)
	})
}

func (a *uiAssets) serveIndex(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	setUIHeaders(h)
	h.Set("Content-Type", uiTypes[".html"])
	// The page names the current asset version, so it must be revalidated.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(a.index))
	return nil
}

func (a *uiAssets) serveAsset(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("file")
	b, ok := a.files[name]
	if !ok || name == "index.html" {
		return Errorf(CodeNotFound, "no such asset: %s", r.URL.Path)
	}
	h := w.Header()
	setUIHeaders(h)
	if t, ok := uiTypes[path.Ext(name)]; ok {
		h.Set("Content-Type", t)
	}
	if r.PathValue("version") == a.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// A page from an older binary asked: answer with today's file,
		// but never let it be cached under the old name.
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("ETag", `"`+a.version+`"`)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	return nil
}

func setUIHeaders(h http.Header) {
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

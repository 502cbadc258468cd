package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"cellos-allinone/auth"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
)

// idleProjector is an empty, ready projection: enough to serve the page.
type idleProjector struct{}

func (idleProjector) Ready() bool                             { return true }
func (idleProjector) CommitFailing() *projector.CommitFailure { return nil }
func (idleProjector) Read(fn func(projector.View)) error {
	fn(projector.View{Reader: projection.New(), Epoch: "e1"})
	return nil
}
func (i idleProjector) ReadFrom(_ context.Context, _ uint64, fn func(projector.View)) error {
	return i.Read(fn)
}
func (idleProjector) Status(context.Context, string) (projector.Status, error) {
	return projector.Status{}, nil
}

func (idleProjector) HashState(context.Context) (projector.StateHash, error) {
	return projector.StateHash{}, nil
}

func get(t *testing.T, h http.Handler, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1"
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUIIndex(t *testing.T) {
	s := New(Config{}, idleProjector{})
	ui := loadUI()
	res := get(t, s, "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", res.StatusCode)
	}
	for h, want := range map[string]string{
		"Content-Type":  "text/html; charset=utf-8",
		"Cache-Control": "no-cache",
		"ETag":          `"` + ui.version + `"`,
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("GET / header %s = %q, want %q", h, got, want)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	b := body(t, res)
	if want := `src="/ui/` + ui.version + `/app.js"`; !strings.Contains(b, want) {
		t.Errorf("index.html does not load %s", want)
	}
	if strings.Contains(b, "{{ASSETS}}") {
		t.Error("index.html still holds the {{ASSETS}} placeholder")
	}
	if res := get(t, s, "/", "If-None-Match", `"`+ui.version+`"`); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET / with a matching ETag = %d, want 304", res.StatusCode)
	}
}

// TestUIIndexWithAuth: a server with an auth file serves the page without
// its preload of /v1/summary (the preload would go without the page's
// token, and its 401 would answer the page's own read), under an ETag of
// its own.
func TestUIIndexWithAuth(t *testing.T) {
	set, err := auth.Parse(strings.NewReader("ops "+auth.Digest("ops-token")+" admin\n"), "auth")
	if err != nil {
		t.Fatal(err)
	}
	ui := loadUI()
	plain := body(t, get(t, New(Config{}, idleProjector{}), "/"))
	if !strings.Contains(plain, string(bytes.TrimSpace(summaryPreload))) {
		t.Fatalf("index.html without an auth file lacks the preload %s", summaryPreload)
	}
	s := New(Config{Auth: set}, idleProjector{})
	res := get(t, s, "/")
	if got, want := res.Header.Get("ETag"), `"`+ui.version+`-auth"`; got != want {
		t.Errorf("GET / with an auth file: ETag %s, want %s", got, want)
	}
	b := body(t, res)
	if strings.Contains(b, `rel="preload"`) {
		t.Errorf("index.html with an auth file still preloads the summary")
	}
	if want := `src="/ui/` + ui.version + `/app.js"`; !strings.Contains(b, want) {
		t.Errorf("index.html with an auth file does not load %s", want)
	}
	if res := get(t, s, "/", "If-None-Match", `"`+ui.version+`"`); res.StatusCode != http.StatusOK {
		t.Errorf("GET / with an auth file and the ETag of the page without = %d, want 200", res.StatusCode)
	}
}

func TestUIAssets(t *testing.T) {
	s := New(Config{}, idleProjector{})
	v := loadUI().version
	tests := []struct {
		path, status, ctype, cache string
	}{
		{"/ui/" + v + "/app.js", "200", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/ui/" + v + "/style.css", "200", "text/css; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/ui/" + v + "/favicon.svg", "200", "image/svg+xml", "public, max-age=31536000, immutable"},
		// An old version's URL gets today's file, never cached for good.
		{"/ui/0123456789ab/app.js", "200", "text/javascript; charset=utf-8", "no-cache"},
		{"/ui/" + v + "/missing.js", "404", "application/json", "no-store"},
		{"/ui/" + v + "/index.html", "404", "application/json", "no-store"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := get(t, s, tt.path)
			if got := strconv.Itoa(res.StatusCode); got != tt.status {
				t.Errorf("GET %s = %s, want %s", tt.path, got, tt.status)
			}
			if got := res.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("GET %s Content-Type = %q, want %q", tt.path, got, tt.ctype)
			}
			if got := res.Header.Get("Cache-Control"); got != tt.cache {
				t.Errorf("GET %s Cache-Control = %q, want %q", tt.path, got, tt.cache)
			}
			if tt.status == "404" {
				var e struct {
					Error struct{ Code string } `json:"error"`
				}
				if err := json.NewDecoder(res.Body).Decode(&e); err != nil || e.Error.Code != CodeNotFound {
					t.Errorf("GET %s body: code %q (%v), want %q", tt.path, e.Error.Code, err, CodeNotFound)
				}
			}
		})
	}
	// Assets come from a map of the embedded files: no path reaches the disk.
	if res := get(t, s, "/ui/"+v+"/../ui.go"); res.StatusCode == http.StatusOK {
		t.Errorf("GET /ui/%s/../ui.go = 200, want no file", v)
	}
	if res := get(t, s, "/favicon.ico"); res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/ui/"+v+"/favicon.svg" {
		t.Errorf("GET /favicon.ico = %d to %q, want a redirect to the SVG", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestUIModulesResolve checks, without a browser, that every module import
// and every asset the page names is embedded: a typo would otherwise only
// show as a blank page.
func TestUIModulesResolve(t *testing.T) {
	ui := loadUI()
	importRE := regexp.MustCompile(`(?m)^import [^'"]*['"]\./([^'"]+)['"];`)
	for name, b := range ui.files {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		for _, m := range importRE.FindAllStringSubmatch(string(b), -1) {
			if _, ok := ui.files[m[1]]; !ok {
				t.Errorf("%s imports ./%s, which is not embedded", name, m[1])
			}
		}
	}
	assetRE := regexp.MustCompile(`\{\{ASSETS\}\}/([^"]+)"`)
	for _, m := range assetRE.FindAllStringSubmatch(string(ui.files["index.html"]), -1) {
		if _, ok := ui.files[m[1]]; !ok {
			t.Errorf("index.html names %s, which is not embedded", m[1])
		}
	}
}

// TestUINothingFromOutside: an air-gapped box must get every asset from the
// binary, so no file may point at another host.
func TestUINothingFromOutside(t *testing.T) {
	urlRE := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(uiFiles, p)
		if err != nil {
			return err
		}
		for _, m := range urlRE.FindAllString(string(b), -1) {
			if strings.HasSuffix(m, "www.w3.org") { // the SVG namespace, never fetched
				continue
			}
			t.Errorf("%s refers to %s: every asset must be embedded", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

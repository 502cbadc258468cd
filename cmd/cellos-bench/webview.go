package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// rowsShown is the DOM condition for "first useful render": the page has
// no hook of its own for it, so the formations table having rows stands in.
const rowsShown = `document.querySelectorAll('table.formations tbody tr').length > 0`

// firstRowsScript runs in the page before its own scripts and notes, on
// every DOM change, when rowsShown first holds (ms since navigation start).
const firstRowsScript = `(() => {
  const check = () => {
    if (window.__benchFirstRows) return;
    if (` + rowsShown + `) {
      window.__benchFirstRows = {ms: performance.now(), rows: document.querySelectorAll('table.formations tbody tr').length};
    }
  };
  new MutationObserver(check).observe(document, {childList: true, subtree: true});
})();`

// webResult is figure 8: the web view opened in headless Chromium on the
// full-size server.
type webResult struct {
	Skipped     string    `json:"skipped,omitempty"` // why it was not measured
	FirstRowsMs []float64 `json:"firstRowsMs"`       // per repetition, a new tab each
	Rows        int       `json:"rows"`              // rows in the table at that moment
	Formations  int       `json:"formations"`        // registry
	RSSBefore   float64   `json:"rssBefore"`         // server VmRSS before the first navigation, MiB
	RSSPeak     float64   `json:"rssPeak"`           // its largest VmRSS while serving the view
}

// findChromium is --chromium, else the first Chromium on PATH.
func findChromium(flag string) string {
	if flag != "" {
		return flag
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// webView times, cfg.reps times in a new tab, navigation start → the
// formations table showing rows, and watches the server's memory.
func webView(ctx context.Context, cfg *config, s *server) (webResult, error) {
	var r webResult
	path := findChromium(cfg.chromium)
	if path == "" {
		r.Skipped = "no Chromium found (--chromium)"
		return r, nil
	}
	st, err := s.status()
	if err != nil {
		return r, err
	}
	r.Formations = st.Registry.Formations
	actx, cancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		// Nothing outside loopback answers here: Chromium's own background
		// connections would only slow it down.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(cfg.workDir, "chromium-profile")),
		chromedp.WindowSize(1280, 800))
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		return r, fmt.Errorf("start Chromium %s: %w", path, err)
	}
	_, r.RSSBefore = procMem(s.pid())
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	peak := sampleRSS(sctx, s.pid())
	for range cfg.reps {
		first, err := firstRows(bctx, cfg, s.HTTP+"/")
		if err != nil {
			return r, fmt.Errorf("web view: no rows in the formations table within %s (%s): %w", cfg.webTimeout, rowsShown, err)
		}
		r.FirstRowsMs = append(r.FirstRowsMs, first.Ms)
		r.Rows = first.Rows
	}
	// Let what the page does after its first rows (the rest of its loading)
	// show in the memory figure.
	time.Sleep(2 * time.Second)
	r.RSSPeak = peak()
	return r, nil
}

// shown is what the page noted when its formations table first had rows.
type shown struct {
	Ms   float64 `json:"ms"`
	Rows int     `json:"rows"`
}

// firstRows opens url in a new tab of the browser with firstRowsScript
// installed, and waits for what it notes.
func firstRows(bctx context.Context, cfg *config, url string) (shown, error) {
	tctx, cancelTab := chromedp.NewContext(bctx)
	defer cancelTab()
	if err := chromedp.Do(tctx); err != nil { // open the tab outside the timeout
		return shown{}, err
	}
	tctx, cancel := context.WithTimeout(tctx, cfg.webTimeout+10*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx,
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: firstRowsScript})
			return err
		}),
		chromedp.Navigate(url),
	); err != nil {
		return shown{}, err
	}
	return chromedp.Run(tctx, chromedp.Poll[shown]("window.__benchFirstRows",
		chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(cfg.webTimeout)))
}

package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/coder/websocket"

	"cellos-allinone/projector"
)

// Error codes of the API; codes holds what each one means.
const (
	CodeBadParameter     = "bad_parameter"
	CodeUnknownParameter = "unknown_parameter"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeCursorExpired    = "cursor_expired"
	CodeBodyTooLarge     = "body_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeInvalidEvent     = "invalid_event"
	CodeInvalidBatch     = "invalid_batch"
	CodeNotReady         = "not_ready"
	CodeCommitFailing    = "commit_failing"
	CodeNotCaughtUp      = "not_caught_up"
	CodeStateDamaged     = "state_damaged"
	CodeUnavailable      = "unavailable"
	CodeForbidden        = "forbidden"
	CodeUnauthorized     = "unauthorized"
	CodeMisdirected      = "misdirected_request"
	CodeUpgradeRequired  = "upgrade_required"
	CodeBadHandshake     = "bad_handshake"
	CodeShuttingDown     = "shutting_down"
	CodeSlowClient       = "slow_client"
	CodeInternal         = "internal"
)

// WebSocket close codes of /ws/events beyond RFC 6455's (docs/websocket.md).
const (
	// CloseSlowClient: the client did not keep up (a frame not taken
	// within the write timeout, or too far behind the live stream).
	CloseSlowClient websocket.StatusCode = 4408
	// CloseCursorExpired: the cursor cannot be resumed; the reason is
	// {"firstSeq":F,"epoch":"E"}.
	CloseCursorExpired websocket.StatusCode = 4410
	// CloseUnauthorized: the socket's principal was removed or changed by a
	// reload of the auth file; sign in again.
	CloseUnauthorized websocket.StatusCode = 4401
)

// codeInfo is what one error code means to each side of the API.
type codeInfo struct {
	status int // HTTP status of an answer with this code
	// close and end: a socket that ends with this code closes with close
	// and is counted as ended for end (cellos_ws_closed_total); 0 / ""
	// for codes that only ever answer an HTTP request.
	close websocket.StatusCode
	end   string
	warn  bool // logged as a warning (else at debug level)
}

// codes is the one table of error codes, one row per code. A client that
// sends a data message is closed with 1008 by the WebSocket library; a
// client that closes first gets its own code echoed; a peer that stops
// answering pings is dropped without a close frame.
var codes = map[string]codeInfo{
	CodeBadParameter:     {status: http.StatusBadRequest},
	CodeUnknownParameter: {status: http.StatusBadRequest},
	CodeInvalidEvent:     {status: http.StatusBadRequest},
	CodeInvalidBatch:     {status: http.StatusBadRequest},
	CodeBadHandshake:     {status: http.StatusBadRequest},
	CodeForbidden:        {status: http.StatusForbidden},
	CodeUnauthorized:     {status: http.StatusUnauthorized, close: CloseUnauthorized, end: EndUnauthorized},
	CodeMisdirected:      {status: http.StatusMisdirectedRequest},
	CodeNotFound:         {status: http.StatusNotFound},
	CodeMethodNotAllowed: {status: http.StatusMethodNotAllowed},
	CodeCursorExpired:    {status: http.StatusGone, close: CloseCursorExpired, end: EndCursorExpired},
	CodeBodyTooLarge:     {status: http.StatusRequestEntityTooLarge},
	CodeUnsupportedMedia: {status: http.StatusUnsupportedMediaType},
	CodeUpgradeRequired:  {status: http.StatusUpgradeRequired},
	CodeNotReady:         {status: http.StatusServiceUnavailable},
	CodeCommitFailing:    {status: http.StatusServiceUnavailable, warn: true},
	CodeNotCaughtUp:      {status: http.StatusServiceUnavailable},
	CodeStateDamaged:     {status: http.StatusServiceUnavailable, close: websocket.StatusInternalError, end: EndError, warn: true},
	CodeShuttingDown:     {status: http.StatusServiceUnavailable, close: websocket.StatusGoingAway, end: EndShutdown},
	CodeUnavailable:      {status: http.StatusServiceUnavailable, close: websocket.StatusInternalError, end: EndError, warn: true},
	CodeSlowClient:       {status: http.StatusServiceUnavailable, close: CloseSlowClient, end: EndSlow, warn: true},
	CodeInternal:         {status: http.StatusInternalServerError, close: websocket.StatusInternalError, end: EndError, warn: true},
}

// infoOf is the row of code; an unknown code is internal.
func infoOf(code string) codeInfo {
	if ci, ok := codes[code]; ok {
		return ci
	}
	return codes[CodeInternal]
}

// Error is an API error: a machine code and a message for people.
type Error struct {
	Code    string
	Message string
	// Extra fields are added to the error object (for example firstSeq).
	Extra map[string]any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an API error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// writeError renders err; anything that is not an *Error is internal and
// is the only kind logged as an error.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if errors.Is(err, projector.ErrStateDamaged) {
		e = Errorf(CodeStateDamaged, "%v; retry shortly", err)
	} else if !errors.As(err, &e) {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = Errorf(CodeInternal, "internal error")
	}
	ci := infoOf(e.Code)
	status := ci.status
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cellos-allinone"`)
	}
	body := map[string]any{"code": e.Code, "message": e.Message}
	for k, v := range e.Extra {
		body[k] = v
	}
	if ci.warn {
		s.log.Warn("request refused", "path", r.URL.Path, "code", e.Code, "msg", e.Message)
	} else {
		s.log.Debug("request refused", "path", r.URL.Path, "code", e.Code, "msg", e.Message)
	}
	writeJSON(w, status, map[string]any{"error": body})
}

// errorRecorder captures the status the mux would answer for a request it
// has no route for (404, or 405 with Allow), so that it is rendered as a
// JSON error instead of plain text.
type errorRecorder struct {
	header http.Header
	status int
}

func (r *errorRecorder) Header() http.Header         { return r.header }
func (r *errorRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *errorRecorder) WriteHeader(status int)      { r.status = status }

func (s *Server) noRoute(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &errorRecorder{header: w.Header(), status: http.StatusOK}
	h.ServeHTTP(rec, r)
	w.Header().Del("Content-Type")
	w.Header().Del("X-Content-Type-Options")
	w.Header().Del("Location") // the mux's redirect to a cleaned path that has no route either
	if rec.status == http.StatusMethodNotAllowed {
		s.writeError(w, r, Errorf(CodeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	s.writeError(w, r, Errorf(CodeNotFound, "no such endpoint: %s", r.URL.Path))
}

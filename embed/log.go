package embed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// logAdapter routes nats-server's printf-style log into slog.
type logAdapter struct {
	l *slog.Logger
	// known, when set, says whether a user name is a principal's. A
	// refused login's line quotes the user name the client sent, which
	// may be a secret typed into the wrong field: only a principal's name
	// is kept.
	known func(name string) bool
}

func (a *logAdapter) log(level slog.Level, format string, v []any) {
	if a.l.Enabled(context.Background(), level) {
		a.l.Log(context.Background(), level, fmt.Sprintf(format, a.redact(format, v)...))
	}
}

// redact replaces the user of a refused login ("%v - %s" with
// server.ErrAuthentication and `User "<name>"`) when it names no principal.
// Passwords and tokens never reach the log: nats-server prints only
// `Token "[REDACTED]"` and traces (which would show the CONNECT) are off.
func (a *logAdapter) redact(format string, v []any) []any {
	if a.known == nil || len(v) != 2 || !strings.HasSuffix(format, "%v - %s") {
		return v
	}
	if err, ok := v[0].(error); !ok || !errors.Is(err, server.ErrAuthentication) {
		return v
	}
	if who, ok := v[1].(string); ok {
		if name, ok := strings.CutPrefix(who, `User "`); ok && !a.known(strings.TrimSuffix(name, `"`)) {
			return []any{v[0], `User "[REDACTED]"`}
		}
	}
	return v
}

// Notices (banner, config dump) go to debug: our own log says what matters.
func (a *logAdapter) Noticef(format string, v ...any) { a.log(slog.LevelDebug, format, v) }
func (a *logAdapter) Warnf(format string, v ...any)   { a.log(slog.LevelWarn, format, v) }
func (a *logAdapter) Fatalf(format string, v ...any)  { a.log(slog.LevelError, format, v) }
func (a *logAdapter) Errorf(format string, v ...any)  { a.log(slog.LevelError, format, v) }
func (a *logAdapter) Debugf(format string, v ...any)  { a.log(slog.LevelDebug, format, v) }
func (a *logAdapter) Tracef(format string, v ...any)  { a.log(slog.LevelDebug-4, format, v) }

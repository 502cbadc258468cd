package embed

import (
	"context"
	"fmt"
	"log/slog"
)

// logAdapter routes nats-server's printf-style log into slog.
type logAdapter struct{ l *slog.Logger }

func (a *logAdapter) log(level slog.Level, format string, v []any) {
	if a.l.Enabled(context.Background(), level) {
		a.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

// Notices (banner, config dump) go to debug: our own log says what matters.
func (a *logAdapter) Noticef(format string, v ...any) { a.log(slog.LevelDebug, format, v) }
func (a *logAdapter) Warnf(format string, v ...any)   { a.log(slog.LevelWarn, format, v) }
func (a *logAdapter) Fatalf(format string, v ...any)  { a.log(slog.LevelError, format, v) }
func (a *logAdapter) Errorf(format string, v ...any)  { a.log(slog.LevelError, format, v) }
func (a *logAdapter) Debugf(format string, v ...any)  { a.log(slog.LevelDebug, format, v) }
func (a *logAdapter) Tracef(format string, v ...any)  { a.log(slog.LevelDebug-4, format, v) }

package web

import (
	"context"
	"net/http"
	"time"
)

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r.URL); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := s.proj.Status(ctx, s.cfg.Version)
	if err != nil {
		return Errorf(CodeUnavailable, "event log unavailable: %v", err)
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if !s.proj.Ready() {
		return Errorf(CodeNotReady, "boot replay in progress")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

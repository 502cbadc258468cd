package embed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
)

// SyncStream makes a stream's existence and its message blocks' names
// durable, which nats-server v2.15 leaves to chance (docs/durability.md,
// "Power cuts"). Call it right after the stream was created and at every
// start; it is cheap and idempotent.
//
// It fsyncs the stream's meta files (meta.inf, meta.sum), its directories
// (the stream's own, msgs and obs) and every directory above it up to the
// data dir (streams, the account's, jetstream, the data dir). nats-server
// writes meta.inf without fsync unless it syncs every write and never
// syncs the directories above the stream's (nats-server issues #3753,
// #5876): a power cut soon after the creation loses the meta files, the
// next start skips the stream ("checksums do not match") and creates it
// again over the old blocks with a new creation time, a new epoch.
//
// It then watches the stream's msgs directory and fsyncs it whenever a
// file appears there: nats-server fsyncs a new message block's data (every
// write under SyncAlways) but not the directory entry that names it, so a
// power cut after a block rollover loses the whole new block, acknowledged
// messages included, even with SyncAlways. The watch narrows that window
// to the moment between the block's creation and the fsync that follows
// it; it cannot close it (nats-server acknowledges without waiting for
// this process).
func (s *Server) SyncStream(name string) error {
	store := s.ns.StoreDir() // <data dir>/jetstream
	if store == "" {
		return errors.New("embed: JetStream is not enabled")
	}
	// The file store's layout: <store>/<account>/streams/<name>/meta.inf.
	// This process and its clients all live in the global account.
	account := filepath.Join(store, s.ns.GlobalAccount().Name)
	streams := filepath.Join(account, "streams")
	dir := filepath.Join(streams, name)
	msgs := filepath.Join(dir, "msgs")
	paths := []string{
		filepath.Join(dir, server.JetStreamMetaFile),
		filepath.Join(dir, server.JetStreamMetaFileSum),
		msgs, filepath.Join(dir, "obs"),
		dir, streams, account, store, filepath.Dir(store),
	}
	// The watch first: the fsyncs below then cover every block created
	// before it began.
	if err := s.watch(name, msgs); err != nil {
		return fmt.Errorf("embed: watch the message blocks of stream %s: %w", name, err)
	}
	for _, p := range paths {
		if err := fsync(p); err != nil {
			return fmt.Errorf("embed: make stream %s durable: %w", name, err)
		}
	}
	return nil
}

// fsync syncs a file or directory. The msgs and obs directories may be
// missing in another nats-server version's layout: then there is nothing
// of theirs to make durable.
func fsync(p string) error {
	f, err := os.Open(p)
	if base := filepath.Base(p); errors.Is(err, os.ErrNotExist) && (base == "msgs" || base == "obs") {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

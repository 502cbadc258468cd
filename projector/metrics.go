package projector

import (
	"github.com/prometheus/client_golang/prometheus"

	"cellos-allinone/projection"
	"cellos-allinone/store"
)

type metrics struct {
	checkpointSeconds  prometheus.Histogram
	checkpointFailures prometheus.Counter
	replayDuration     prometheus.Gauge
	compactions        *prometheus.CounterVec
	compactedBytes     prometheus.Counter
	compactDuration    prometheus.Gauge
	compactLast        prometheus.Gauge
	scrubPasses        prometheus.Counter
	scrubKeys          prometheus.Counter
	scrubDamage        prometheus.Counter
}

func newMetrics(p *Projector, reg prometheus.Registerer) *metrics {
	m := &metrics{
		checkpointSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cellos_checkpoint_duration_seconds",
			Help:    "Time to write one commit of the state to bbolt (fsync included).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 1.5, 24), // 0.5 ms to 5.6 s, a step of 1.5
		}),
		checkpointFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellos_checkpoint_failures_total",
			Help: "Checkpoint writes that failed (the previous checkpoint stayed intact).",
		}),
		replayDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cellos_boot_replay_duration_seconds",
			Help: "Time from start of boot until the replay reached the stream's last sequence read at boot.",
		}),
		compactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellos_state_file_compactions_total",
			Help: "Compactions of the state file: result done (swapped in) or failed (the file is served as it was).",
		}, []string{"result"}),
		compactedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellos_state_file_compacted_bytes_total",
			Help: "Bytes the compactions of the state file gave back to the file system.",
		}),
		compactDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cellos_state_file_last_compaction_duration_seconds",
			Help: "How long the last compaction swapped in took: the fold paused that long (reads went on).",
		}),
		compactLast: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cellos_state_file_last_compaction_timestamp_seconds",
			Help: "When the last compaction swapped in began (Unix time); 0 when none was.",
		}),
		scrubPasses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellos_scrub_passes_total",
			Help: "Scrub passes over the state that ended: complete, or at the damage they found.",
		}),
		scrubKeys: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellos_scrub_keys_checked_total",
			Help: "Keys of the state (records, index entries, counts, aggregates) the scrub checked.",
		}),
		scrubDamage: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellos_scrub_damage_found_total",
			Help: "Damage the scrub found in the state; each finding starts a rebuild from the stream.",
		}),
	}
	for _, r := range []string{"done", "failed"} {
		m.compactions.WithLabelValues(r)
	}
	if reg == nil {
		return m
	}
	counter := func(name, help string, get func(projection.Counters) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			var c projection.Counters
			_ = p.Read(func(v View) { c = v.Counters() })
			return float64(get(c))
		})
	}
	pruned := func(name, help string, get func(projection.Pruned) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			var pr projection.Pruned
			_ = p.Read(func(v View) { pr = v.Pruned() })
			return float64(get(pr))
		})
	}
	cursor := func() uint64 {
		var c uint64
		_ = p.Read(func(v View) { c = v.Cursor() })
		return c
	}
	fileStat := func(get func(store.FileStats) int64) func() float64 {
		return func() float64 {
			fs, _ := p.fileStats()
			return float64(get(fs))
		}
	}
	reg.MustRegister(
		m.checkpointSeconds, m.checkpointFailures, m.replayDuration,
		m.compactions, m.compactedBytes, m.compactDuration, m.compactLast,
		m.scrubPasses, m.scrubKeys, m.scrubDamage,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_scrub_last_complete_timestamp_seconds",
			Help: "When the last complete scrub pass over the state ended (Unix time, kept across restarts); 0 before one.",
		}, p.integ.lastComplete),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_scrub_running", Help: "1 while a scrub pass over the state runs.",
		}, func() float64 {
			if p.integ.scrubbing() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_state_file_bytes", Help: "Size of the state file (checkpoint.db).",
		}, fileStat(func(fs store.FileStats) int64 { return fs.FileBytes })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_state_file_live_bytes", Help: "What the state's pages take in the state file.",
		}, fileStat(func(fs store.FileStats) int64 { return fs.LiveBytes })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_state_file_free_bytes", Help: "Free pages of the state file: reused by commits, given back by a compaction.",
		}, fileStat(func(fs store.FileStats) int64 { return fs.FreeBytes })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_state_file_compacting", Help: "1 while the state file is compacted: the fold is paused, reads go on.",
		}, func() float64 {
			if p.compacted.since.Load() != nil {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_projection_cursor", Help: "Last stream sequence applied to the projection.",
		}, func() float64 { return float64(cursor()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_stream_last_sequence", Help: "Last stream sequence, as last measured by the projector (every second).",
		}, func() float64 { _, _, last := p.lag.get(); return float64(last) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_stream_bytes", Help: "Bytes the stream holds, as last measured by the projector (every second).",
		}, func() float64 { b, _ := p.lag.size(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_stream_max_bytes", Help: "The stream's byte cap (its MaxBytes on the server); 0 when it has none.",
		}, func() float64 { _, m := p.lag.size(); return float64(m) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_projection_lag", Help: "Events stored but not yet applied to the projection (measured every second).",
		}, func() float64 { n, _, _ := p.lag.get(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_projection_lag_seconds", Help: "Age of the oldest event not yet applied to the projection; 0 when none waits (measured every second).",
		}, func() float64 { _, s, _ := p.lag.get(); return s }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_projection_stale", Help: "1 while a new stream incarnation is rebuilt and the old view is still served.",
		}, func() float64 {
			if p.rebuilding.Load() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_checkpoint_cursor", Help: "Cursor of the last checkpoint written.",
		}, func() float64 { return float64(p.cpCursor.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_ready", Help: "1 once the boot replay is done and while commits succeed (what /readyz answers).",
		}, func() float64 {
			if p.Ready() && p.failing.Load() == nil {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cellos_checkpoint_failing", Help: "1 while a commit keeps failing: the fold has stopped and retries it; reads serve the last commit.",
		}, func() float64 {
			if p.failing.Load() != nil {
				return 1
			}
			return 0
		}),
		counter("cellos_events_applied_total", "Events of a known type applied (survives restarts).",
			func(c projection.Counters) uint64 { return c.Applied }),
		counter("cellos_events_ignored_total", "Events of an unknown type (survives restarts).",
			func(c projection.Counters) uint64 { return c.Ignored }),
		counter("cellos_events_malformed_total", "Malformed events skipped (survives restarts).",
			func(c projection.Counters) uint64 { return c.Malformed }),
		counter("cellos_events_rejected_total", "Events skipped for a tenant claim fold v3 refuses (survives restarts).",
			func(c projection.Counters) uint64 { return c.Rejected }),
		pruned("cellos_pruned_formations_total", "Formations the retention rule removed from the registry: ended, their last event expired (survives restarts).",
			func(pr projection.Pruned) uint64 { return pr.Formations }),
		pruned("cellos_pruned_cells_total", "Cells the retention rule removed from the registry: destroyed, or finished with their formation gone, their last event expired (survives restarts).",
			func(pr projection.Pruned) uint64 { return pr.Cells }),
	)
	return m
}

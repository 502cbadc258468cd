package main

import (
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plots draws the PNGs the report links into dir and returns their names.
func (r *run) plots(dir string) ([]string, error) {
	var names []string
	for _, p := range []struct {
		name string
		draw func() (*plot.Plot, error)
	}{
		{"bench-ready.png", r.readyPlot},
		{"bench-rss.png", r.rssPlot},
		{"bench-fanout.png", r.fanoutPlot},
		{"bench-months-state.png", r.monthsStatePlot},
		{"bench-months-entities.png", r.monthsEntitiesPlot},
		{"bench-ryw.png", r.rywPlot},
	} {
		pl, err := p.draw()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		if pl == nil {
			continue
		}
		if err := pl.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, p.name)); err != nil {
			return nil, err
		}
		names = append(names, p.name)
	}
	return names, nil
}

// line is the series of one figure of one binary over its points.
func line[T any](xs []T, x, y func(T) float64) plotter.XYs {
	var pts plotter.XYs
	for _, v := range xs {
		if yv := y(v); !bad(yv) {
			pts = append(pts, plotter.XY{X: x(v), Y: yv})
		}
	}
	return pts
}

func sizeX(p sizePoint) float64 { return float64(p.Events) / 1000 }

// series adds named series (name, points, name, points, …) for every
// binary.
func (r *run) series(pl *plot.Plot, each func(res *result) []any) error {
	var args []any
	for _, res := range r.Results {
		args = append(args, each(res)...)
	}
	return plotutil.AddLinePoints(pl, args...)
}

func newPlot(title, x, y string) *plot.Plot {
	pl := plot.New()
	pl.Title.Text = title
	pl.X.Label.Text = x
	pl.Y.Label.Text = y
	pl.X.Min, pl.Y.Min = 0, 0
	pl.Legend.Top, pl.Legend.Left = true, true
	pl.Add(plotter.NewGrid())
	return pl
}

func (r *run) readyPlot() (*plot.Plot, error) {
	pl := newPlot("Time to ready against events (medians)", "events in the stream (thousands)", "start → /readyz 200 (s)")
	err := r.series(pl, func(res *result) []any {
		return []any{
			res.Bin.Label + ": full rebuild", line(res.Sizes, sizeX, func(p sizePoint) float64 { return medianOf(p.Rebuild, ready) }),
			res.Bin.Label + ": from checkpoint", line(res.Sizes, sizeX, func(p sizePoint) float64 { return medianOf(p.Checkpoint, ready) }),
		}
	})
	return pl, err
}

func (r *run) rssPlot() (*plot.Plot, error) {
	pl := newPlot("Peak RSS right after boot against events (medians)", "events in the stream (thousands)", "VmHWM at ready (MiB)")
	err := r.series(pl, func(res *result) []any {
		return []any{
			res.Bin.Label + ": after boot from checkpoint", line(res.Sizes, sizeX, func(p sizePoint) float64 { return medianOf(p.Checkpoint, hwm) }),
			res.Bin.Label + ": after full rebuild", line(res.Sizes, sizeX, func(p sizePoint) float64 { return medianOf(p.Rebuild, hwm) }),
		}
	})
	return pl, err
}

func (r *run) fanoutPlot() (*plot.Plot, error) {
	if len(r.now().Fanout) == 0 {
		return nil, nil
	}
	rate := r.now().Fanout[0].Rate
	pl := newPlot(fmt.Sprintf("WebSocket fan-out at %d events/s: publish → receipt", rate), "sockets", "latency (ms, log scale)")
	// From a few ms on a quiet machine to seconds when it falls behind.
	pl.Y.Min = 0.1
	pl.Y.Scale, pl.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	x := func(p fanoutPoint) float64 { return float64(p.Sockets) }
	err := r.series(pl, func(res *result) []any {
		return []any{
			res.Bin.Label + ": p50", line(res.Fanout, x, func(p fanoutPoint) float64 { return max(p.Latency.P50*1000, 0.01) }),
			res.Bin.Label + ": p99", line(res.Fanout, x, func(p fanoutPoint) float64 { return max(p.Latency.P99*1000, 0.01) }),
		}
	})
	return pl, err
}

func monthsX(p monthsPoint) float64 { return float64(p.Events) / 1e6 }

func (r *run) monthsStatePlot() (*plot.Plot, error) {
	if len(r.now().Months.Points) == 0 {
		return nil, nil
	}
	pl := newPlot("State file and memory against events published", "events published (millions)", "MiB")
	err := r.series(pl, func(res *result) []any {
		return []any{
			res.Bin.Label + ": checkpoint.db", line(res.Months.Points, monthsX, func(p monthsPoint) float64 { return float64(p.StateBytes) / (1 << 20) }),
			res.Bin.Label + ": RSS", line(res.Months.Points, monthsX, func(p monthsPoint) float64 { return p.RSSMiB }),
			res.Bin.Label + ": rebuild's peak RSS", line(res.Months.Points, monthsX, func(p monthsPoint) float64 { return p.Rebuild.HWMMiB }),
		}
	})
	return pl, err
}

func (r *run) monthsEntitiesPlot() (*plot.Plot, error) {
	if len(r.now().Months.Points) == 0 {
		return nil, nil
	}
	pl := newPlot("Registry against events published", "events published (millions)", "thousands")
	err := r.series(pl, func(res *result) []any {
		return []any{
			res.Bin.Label + ": formations + cells held", line(res.Months.Points, monthsX, func(p monthsPoint) float64 { return float64(p.Formations+p.Cells) / 1000 }),
			res.Bin.Label + ": events retained", line(res.Months.Points, monthsX, func(p monthsPoint) float64 { return float64(p.StreamMsgs) / 1000 }),
		}
	})
	return pl, err
}

func (r *run) rywPlot() (*plot.Plot, error) {
	if len(r.now().RYW.Points) == 0 {
		return nil, nil
	}
	pl := newPlot("Read your writes: GET with min_seq right after the POST", "events/s published meanwhile over NATS", "GET latency (ms)")
	x := func(p rywPoint) float64 { return float64(p.Rate) }
	err := r.series(pl, func(res *result) []any {
		return []any{
			res.Bin.Label + ": p50", line(res.RYW.Points, x, func(p rywPoint) float64 { return p.Get.P50 * 1000 }),
			res.Bin.Label + ": p99", line(res.RYW.Points, x, func(p rywPoint) float64 { return p.Get.P99 * 1000 }),
		}
	})
	return pl, err
}

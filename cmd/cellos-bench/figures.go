package main

import "math"

// The figures of one binary's result, as the report and the plots use
// them: medians over repetitions, at the full size unless named.

func (r *result) full() sizePoint {
	if len(r.Sizes) == 0 {
		return sizePoint{}
	}
	return r.Sizes[len(r.Sizes)-1]
}

func ready(b bootTiming) float64   { return b.Ready.Seconds() }
func natsUp(b bootTiming) float64  { return b.NATS.Seconds() }
func healthz(b bootTiming) float64 { return b.Healthz.Seconds() }
func hwm(b bootTiming) float64     { return b.HWMMiB }

// rebuildRate is events/s of the median full rebuild at p.
func (p sizePoint) rebuildRate() float64 {
	s := medianOf(p.Rebuild, ready)
	if s <= 0 || math.IsNaN(s) {
		return math.NaN()
	}
	return float64(p.Events) / s
}

// rssPer100k is the growth of the peak RSS after a checkpoint boot per
// 100,000 registry entities, MiB (the slope over the sizes).
func (r *result) rssPer100k() float64 {
	var x, y []float64
	for _, p := range r.Sizes {
		x = append(x, float64(p.entities()))
		y = append(y, medianOf(p.Checkpoint, hwm))
	}
	return slope(x, y) * 100_000
}

// fanoutLargest is the fan-out point of the most sockets.
func (r *result) fanoutLargest() (fanoutPoint, bool) {
	if len(r.Fanout) == 0 {
		return fanoutPoint{}, false
	}
	best := r.Fanout[0]
	for _, p := range r.Fanout {
		if p.Sockets > best.Sockets {
			best = p
		}
	}
	return best, true
}

func (r *result) webFirstRows() float64 { return median(r.Web.FirstRowsMs) / 1000 }

// ceilingRate is the median of the bare nats-server's publish rates.
func (r *run) ceilingRate() float64 {
	return medianOf(r.Ceiling, func(c ceilingResult) float64 { return c.Rate })
}

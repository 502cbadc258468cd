package projection

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"cellos-allinone/event"
)

// Decoded is one message read for the fold: what Apply needs of it and
// nothing more. Decoding is the expensive part of the fold, and it depends
// on the message alone, so it can run apart from the fold (the projector
// decodes on one core while it folds on the other).
type Decoded struct {
	Seq uint64
	// Outcome is Applied for a well-formed event of a known type, else
	// Ignored or Malformed, or Rejected when the message alone breaks a
	// tenant rule (Apply may still turn it into Stale, or an Applied one
	// into Rejected).
	Outcome Outcome
	// Rejection is the rule that rejected the event when Outcome is
	// Rejected.
	Rejection Rejection
	// ID identifies the message: its CloudEvent id, or a digest of its
	// bytes when it is not a CloudEvent (event.MessageID).
	ID string

	Kind     event.Kind
	Phase    string
	EntityID string
	At       time.Time // the CloudEvent time, else the stored time (rule 1)

	FormationID string
	// TenantID is the event's tenant (rule 1): the subject's when the
	// subject has the tenant form, else data.tenantId, else
	// data.correlation.tenantId; "" makes no claim.
	TenantID string
	// TenantForm is true when the subject carries the tenant.
	TenantForm  bool
	SpecID      string
	RunID       string
	Name        string
	Reason      string
	ExitCode    *int64
	Labels      map[string]string
	Correlation json.RawMessage // data.correlation when an object
	Data        json.RawMessage // the whole data object, for compliance summaries
}

// Decoder decodes messages. It keeps a parser to reuse between calls: one
// Decoder per goroutine.
type Decoder struct {
	p fastjson.Parser
}

// Decode reads m. It never fails: what is not a usable CloudEvent comes
// back as Malformed.
//
// Where this reading is stricter than a generic JSON decoder: attribute
// names match exactly (CloudEvents names are lowercase), and of duplicate
// names the first counts.
func (dec *Decoder) Decode(m Message) Decoded {
	d := Decoded{Seq: m.Seq, Outcome: Malformed}
	if fastjson.ValidateBytes(m.Payload) != nil {
		d.ID = event.MessageID(m.Payload)
		return d
	}
	v, err := dec.p.ParseBytes(m.Payload)
	if err != nil || v.Type() != fastjson.TypeObject {
		d.ID = event.MessageID(m.Payload)
		return d
	}
	// The envelope: every attribute the fold reads must be a string (or
	// null); specversion 1.0 and a non-empty id, type and source.
	attrs := [...]string{"specversion", "id", "source", "type", "subject", "time"}
	var vals [len(attrs)]string
	for i, name := range attrs {
		a := v.Get(name)
		switch {
		case a == nil || a.Type() == fastjson.TypeNull:
		case a.Type() == fastjson.TypeString:
			vals[i] = string(a.GetStringBytes())
		default:
			d.ID = event.MessageID(m.Payload)
			return d
		}
	}
	specversion, id, source, typ, ceTime := vals[0], vals[1], vals[2], vals[3], vals[5]
	if specversion != "1.0" || id == "" || typ == "" || source == "" {
		d.ID = event.MessageID(m.Payload)
		return d
	}
	d.ID = id
	kind, phase, ok := event.Classify(typ)
	if !ok {
		d.Outcome = Ignored
		return d
	}
	data := v.Get("data")
	if data != nil && data.Type() != fastjson.TypeObject {
		data = nil
	}
	d.EntityID = str(data, event.EntityIDField(kind))
	if !event.ValidID(d.EntityID) {
		return d // malformed: a known type without its entity id
	}
	d.Outcome, d.Kind, d.Phase = Applied, kind, phase
	d.At = eventTime(ceTime, m.Time)
	d.FormationID = str(data, "formationId")
	d.SpecID = str(data, "specId")
	d.RunID = str(data, "runId")
	d.Name = str(data, "name")
	d.Reason = str(data, "reason")
	d.ExitCode = int64Of(data, "exitCode")
	d.Labels = labelsOf(data)
	declared := str(data, "tenantId")
	var corr *fastjson.Value
	if c := data.Get("correlation"); c != nil && c.Type() == fastjson.TypeObject {
		corr = c
		d.Correlation = c.MarshalTo(nil)
	}
	if tenant, ok := event.SubjectTenant(m.Subject); ok {
		// The subject is the server's word for the tenant (docs/design.md
		// §3, rule 1); data that declares another one is rejected.
		d.TenantID, d.TenantForm = tenant, true
		if other(declared, tenant) || other(str(corr, "tenantId"), tenant) {
			d.Outcome, d.Rejection = Rejected, RejectedSubjectTenant
		}
	} else if d.TenantID = declared; d.TenantID == "" {
		d.TenantID = str(corr, "tenantId")
	}
	if phase == "summary" {
		d.Data = sortedObject(data)
	}
	return d
}

// other reports whether declared names a tenant other than tenant.
func other(declared, tenant string) bool { return declared != "" && declared != tenant }

// str reads a string field; a field of another type reads as absent.
func str(v *fastjson.Value, key string) string {
	if v == nil {
		return ""
	}
	f := v.Get(key)
	if f == nil || f.Type() != fastjson.TypeString {
		return ""
	}
	return validUTF8(f.GetStringBytes())
}

func validUTF8(b []byte) string {
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// int64Of reads an integer field: a JSON number that is an integer in
// int64's range. Anything else, null included, reads as absent.
func int64Of(v *fastjson.Value, key string) *int64 {
	if v == nil {
		return nil
	}
	f := v.Get(key)
	if f == nil || f.Type() != fastjson.TypeNumber {
		return nil
	}
	n, err := strconv.ParseInt(string(f.MarshalTo(nil)), 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

// labelsOf reads data.labels: an object of strings, at least one;
// anything else reads as absent.
func labelsOf(v *fastjson.Value) map[string]string {
	if v == nil {
		return nil
	}
	l := v.Get("labels")
	if l == nil || l.Type() != fastjson.TypeObject {
		return nil
	}
	o, _ := l.Object()
	if o.Len() == 0 {
		return nil
	}
	out := make(map[string]string, o.Len())
	ok := true
	o.Visit(func(k []byte, lv *fastjson.Value) {
		if lv.Type() != fastjson.TypeString {
			ok = false
			return
		}
		out[validUTF8(k)] = validUTF8(lv.GetStringBytes())
	})
	if !ok {
		return nil
	}
	return out
}

// sortedObject encodes an object compactly with its top-level keys sorted
// (the first of duplicate keys kept): a compliance summary's canonical
// form. A missing data object is {}.
func sortedObject(v *fastjson.Value) json.RawMessage {
	if v == nil || v.Type() != fastjson.TypeObject {
		return json.RawMessage("{}")
	}
	o, _ := v.Object()
	type kv struct {
		k string
		v *fastjson.Value
	}
	var fields []kv
	seen := map[string]bool{}
	o.Visit(func(k []byte, fv *fastjson.Value) {
		if ks := string(k); !seen[ks] {
			seen[ks] = true
			fields = append(fields, kv{ks, fv})
		}
	})
	slices.SortFunc(fields, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	out := []byte{'{'}
	for i, f := range fields {
		if i > 0 {
			out = append(out, ',')
		}
		kb, _ := json.Marshal(f.k)
		out = append(out, kb...)
		out = append(out, ':')
		out = f.v.MarshalTo(out)
	}
	return append(out, '}')
}

// eventTime implements fold rule 1: the CloudEvent time, else the
// JetStream message time. A time whose UTC year falls outside 0–9999 (a
// zone offset can push "0000-01-01T00:00:00+01:00" there) counts as
// unusable: JSON cannot encode it, and the state could not be written.
func eventTime(ceTime string, msgTime time.Time) time.Time {
	if ceTime != "" {
		if t, err := time.Parse(time.RFC3339Nano, ceTime); err == nil {
			if y := t.UTC().Year(); y >= 0 && y <= 9999 {
				return t.UTC()
			}
		}
	}
	return msgTime.UTC()
}

package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxIDAttrLen bounds the CloudEvent id, which becomes the JetStream
// message id (Nats-Msg-Id header).
const MaxIDAttrLen = 256

// Invalid says why an event is refused, naming the first attribute that
// is wrong.
type Invalid struct{ Reason string }

func (e *Invalid) Error() string { return e.Reason }

func invalid(format string, args ...any) error {
	return &Invalid{Reason: fmt.Sprintf(format, args...)}
}

// Checked is an event that passed Check: ready to publish.
type Checked struct {
	ID       string // the CloudEvent id: the JetStream message id
	Subject  string // where it is stored
	Kind     Kind
	EntityID string
	Phase    string
	Payload  []byte // the event as stored: the body with insignificant whitespace removed
	// Tenants are the tenants the event declares in its data
	// (data.tenantId, data.correlation.tenantId), each once: a tenant
	// publisher may declare only its own (docs/design.md §6).
	Tenants []string
}

// Check validates body as one CloudEvents 1.0 JSON event of a v1 type and
// derives its subject; an *Invalid error names the first attribute that
// is wrong. Unknown types are refused: their subject cannot be derived
// with certainty. The rules, in order: UTF-8, a JSON object, specversion
// "1.0", id (1–256 characters, no control characters), source (a URI
// reference), type (a v1 type), optional subject (string), time (RFC
// 3339), datacontenttype (a JSON media type), no data_base64, data (an
// object carrying formationId or cellId, a valid id), attribute names
// (lowercase letters and digits).
func Check(body []byte) (Checked, error) {
	if !utf8.Valid(body) {
		return Checked{}, invalid("the body is not UTF-8")
	}
	var attrs map[string]json.RawMessage
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return Checked{}, invalid("the body must be one CloudEvent, a JSON object")
	}
	if err := json.Unmarshal(body, &attrs); err != nil {
		return Checked{}, invalid("the body is not a JSON object: %v", err)
	}
	a := attributes(attrs)
	specversion, err := a.str("specversion", true)
	if err != nil {
		return Checked{}, err
	}
	if specversion != "1.0" {
		return Checked{}, invalid("specversion: must be \"1.0\", got %q", specversion)
	}
	id, err := a.str("id", true)
	if err != nil {
		return Checked{}, err
	}
	if len(id) > MaxIDAttrLen || strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return Checked{}, invalid("id: at most %d characters without control characters", MaxIDAttrLen)
	}
	source, err := a.str("source", true)
	if err != nil {
		return Checked{}, err
	}
	if _, err := url.Parse(source); err != nil {
		return Checked{}, invalid("source: not a URI reference: %v", err)
	}
	typ, err := a.str("type", true)
	if err != nil {
		return Checked{}, err
	}
	kind, phase, ok := Classify(typ)
	if !ok {
		return Checked{}, invalid("type: %q is not a v1 CellOS event type (%s*, %s*, %s), so its subject cannot be derived", typ, FormationPrefix, CellPrefix, ComplianceType)
	}
	if _, err := a.str("subject", false); err != nil {
		return Checked{}, err
	}
	if t, err := a.str("time", false); err != nil {
		return Checked{}, err
	} else if t != "" {
		if _, err := time.Parse(time.RFC3339Nano, t); err != nil {
			return Checked{}, invalid("time: not an RFC 3339 timestamp: %q", t)
		}
	}
	if ct, err := a.str("datacontenttype", false); err != nil {
		return Checked{}, err
	} else if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return Checked{}, invalid("datacontenttype: %q is not JSON; data must be a JSON object", ct)
		}
	}
	if _, ok := attrs["data_base64"]; ok {
		return Checked{}, invalid("data_base64: not supported; data must be a JSON object")
	}
	entityID, err := entityIDOf(attrs["data"], kind)
	if err != nil {
		return Checked{}, err
	}
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		if !validAttributeName(name) {
			return Checked{}, invalid("attribute name %q: CloudEvents attribute names are lowercase letters and digits", name)
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		return Checked{}, invalid("the body is not JSON: %v", err)
	}
	return Checked{
		ID: id, Subject: Subject(kind, entityID, phase),
		Kind: kind, EntityID: entityID, Phase: phase, Payload: compact.Bytes(),
		Tenants: declaredTenants(attrs["data"]),
	}, nil
}

// declaredTenants reads the tenants data declares: data.tenantId and
// data.correlation.tenantId, the strings among them, each once. A value of
// another type declares nothing, as the fold reads it.
func declaredTenants(data json.RawMessage) []string {
	var d struct {
		TenantID    any `json:"tenantId"`
		Correlation struct {
			TenantID any `json:"tenantId"`
		} `json:"correlation"`
	}
	_ = json.Unmarshal(data, &d) // data is an object: Check read it already
	var out []string
	for _, v := range []any{d.TenantID, d.Correlation.TenantID} {
		if s, ok := v.(string); ok && s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Route derives where a supervisor stores an event of the CellOS
// namespace, of a v1 type or not: cellos.events.<entity>.<id>.<phase>,
// with the entity the token after dev.cellos.events. (formation or cell),
// the id from data.formationId or data.cellId, and the phase the type's
// last token. It is how events of types the API refuses (unknown to v1)
// still reach the stream over NATS.
func Route(payload []byte) (subject, id string, err error) {
	var e struct {
		ID   string          `json:"id"`
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(payload, &e); err != nil {
		return "", "", invalid("not a JSON object: %v", err)
	}
	rest, ok := strings.CutPrefix(e.Type, TypePrefix)
	token, _, _ := strings.Cut(rest, ".")
	kind := kindOf(token)
	if !ok || kind == KindUnknown {
		return "", "", invalid("type: %q is not in %sformation.* or %scell.*", e.Type, TypePrefix, TypePrefix)
	}
	entityID, err := entityIDOf(e.Data, kind)
	if err != nil {
		return "", "", err
	}
	return Subject(kind, entityID, e.Type[strings.LastIndexByte(e.Type, '.')+1:]), e.ID, nil
}

// attributes reads string attributes of an event object.
type attributes map[string]json.RawMessage

// str is a string attribute; absent or null is "" (an error if required),
// and an empty or non-string value is an error.
func (a attributes) str(name string, required bool) (string, error) {
	raw, ok := a[name]
	if !ok || string(raw) == "null" {
		if required {
			return "", invalid("%s: the required attribute is missing", name)
		}
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", invalid("%s: must be a string, got %s", name, clip(raw))
	}
	if v == "" {
		return "", invalid("%s: must not be empty", name)
	}
	return v, nil
}

// entityIDOf reads data.formationId or data.cellId: the subject's id token.
func entityIDOf(data json.RawMessage, kind Kind) (string, error) {
	field := EntityIDField(kind)
	var obj map[string]json.RawMessage
	if len(data) == 0 || json.Unmarshal(data, &obj) != nil || obj == nil {
		return "", invalid("data: must be a JSON object carrying %s", field)
	}
	raw, ok := obj[field]
	if !ok {
		return "", invalid("data.%s: missing; a %s event needs it", field, kind)
	}
	var id string
	if err := json.Unmarshal(raw, &id); err != nil {
		return "", invalid("data.%s: must be a string, got %s", field, clip(raw))
	}
	if !ValidID(id) {
		return "", invalid("data.%s: %q is not a valid id (1-%d letters, digits, '-' or '_')", field, id, MaxIDLen)
	}
	return id, nil
}

func validAttributeName(name string) bool {
	if name == "data_base64" || name == "" {
		return name != ""
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// clip shortens a JSON value quoted in an error message.
func clip(raw json.RawMessage) string {
	const most = 40
	if len(raw) > most {
		return fmt.Sprintf("%s…", raw[:most])
	}
	return string(raw)
}

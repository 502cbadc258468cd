package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	cellevent "cellos-allinone/event"
	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

// The bad input of TestBadInputChangesNothing, endpoint by endpoint.

// qv is one query parameter, its value escaped.
func qv(name, value string) string { return name + "=" + url.QueryEscape(value) }

const (
	badParam     = web.CodeBadParameter
	unknownParam = web.CodeUnknownParameter
	badEvent     = web.CodeInvalidEvent
)

// Values that are not a decimal uint64 (since) or not 1..1000 (limit).
var (
	badSeqs = []string{
		"abc", "-1", "1.5", "+1", "", " 1", "1 ", "1e3", "0x10", "1_000", "١",
		"18446744073709551616", "99999999999999999999999", "\xff", "1\x00",
	}
	badLimits = []string{
		"abc", "-1", "0", "1.5", "+", "", " 5", "1e2", "0x10", "1001",
		"99999999999999999999", "18446744073709551616", "\xff",
	}
	// badWaits are not durations from 0s to 30s.
	badWaits = []string{"abc", "5", "-1s", "31s", "1m", "1h", "", "1.5.s", "\xff", "5 s"}
	// badPrefixes are longer than an id can be (128 characters); 300
	// bytes is refused as any parameter over 256 bytes is.
	badPrefixes = []string{strings.Repeat("p", 129), strings.Repeat("é", 100) + strings.Repeat("x", 29), strings.Repeat("p", 256)}
	// badSubjects are not NATS subject filters inside cellos.events.>.
	badSubjects = []string{
		"cellos.events.>.x", "cellos.events.*x", "cellos.events.x*", "cellos.events.>x",
		"cellos.>", "cellos.*.x", "*.events.x", "foo.bar", ">", "*", "",
		"cellos.events", "cellos.events.", "cellos.events..x", "cellos.events.x.", ".cellos.events.x",
		"cellos.events.a b", "cellos.events. ", "cellos.events.a\tb", "cellos.events.a\u00a0b",
		"cellos.events.a\u2028b", "cellos.events.a\x00b", "cellos.events.a\x7fb", "cellos.events.a\nb",
		"CELLOS.EVENTS.>", "cellos.events.\xff", "cellos.events." + strings.Repeat("x", 300),
	}
)

// paramRefusals refuse a wrong use of the parameter p of path (v is a
// valid value of it): repeated, under another case, not UTF-8, badly
// escaped, too long.
func paramRefusals(path, p, v string) []refusal {
	g := func(query string, code, names string) refusal {
		return refusal{method: "GET", target: path + "?" + query, status: 400, code: code, names: names}
	}
	return []refusal{
		g(qv(p, v)+"&"+qv(p, v), badParam, p),
		g(qv(strings.ToUpper(p), v), unknownParam, strings.ToUpper(p)),
		g(p+"=%ff", badParam, p),
		g(p+"=%zz", badParam, "query"),
		g(qv(p, strings.Repeat("x", 300)), badParam, p),
	}
}

// queryRefusals refuse query strings of path that are wrong whatever its
// parameters: unknown names, a name that is not UTF-8, bad escapes, ';'.
func queryRefusals(path string) []refusal {
	g := func(query string, code, names string) refusal {
		return refusal{method: "GET", target: path + "?" + query, status: 400, code: code, names: names}
	}
	return []refusal{
		g("colour=red", unknownParam, "colour"),
		g("colour", unknownParam, "colour"),
		g("%ff=1", unknownParam, ""),
		g("%zz=1", badParam, "query"),
		g("a=1;b=2", badParam, "query"),
	}
}

// noQueryRefusals are the refusals of an endpoint without parameters.
func noQueryRefusals(path string) []refusal {
	var out []refusal
	for _, query := range []string{"x", "x=1", "since=1", "limit=10", "subject=cellos.events.>", "%ff=%ff"} {
		out = append(out, refusal{method: "GET", target: path + "?" + query, status: 400, code: unknownParam})
	}
	return append(out, refusal{method: "GET", target: path + "?a=%zz", status: 400, code: badParam, names: "query"})
}

// param is a query parameter of an endpoint: a good value, bad ones.
type param struct {
	name, good string
	bad        []string
}

// endpointRefusals refuse the wrong queries of path that takes params:
// those wrong whatever the parameters, and each wrong use and bad value of
// each parameter.
func endpointRefusals(path string, params ...param) []refusal {
	out := queryRefusals(path)
	for _, p := range params {
		out = append(out, paramRefusals(path, p.name, p.good)...)
		out = append(out, valueRefusals(path, p.name, p.bad)...)
	}
	return out
}

// valueRefusals refuse each of values as the parameter name of path.
func valueRefusals(path, name string, values []string) []refusal {
	var out []refusal
	for _, v := range values {
		out = append(out, refusal{method: "GET", target: path + "?" + qv(name, v), status: 400, code: badParam, names: name})
	}
	return out
}

// wsQueries are the query strings /ws/events refuses with 400 before the
// upgrade.
func wsQueries() []refusal {
	out := endpointRefusals("/ws/events",
		param{"since", "0", badSeqs}, param{"subject", "cellos.events.>", badSubjects}, param{"epoch", "2026-01-01T00:00:00Z", nil})
	for _, q := range []string{"limit=10", "after=x", "since=0&limit=10"} {
		out = append(out, refusal{method: "GET", target: "/ws/events?" + q, status: 400, code: unknownParam})
	}
	return append(out, refusal{method: "GET", target: "/ws/events?epoch=", status: 400, code: badParam, names: "epoch"})
}

// event is a valid CloudEvent for the cell c-1 with change applied.
func event(change func(ev, data map[string]any)) []byte {
	data := map[string]any{"cellId": "c-1"}
	ev := map[string]any{
		"specversion": "1.0", "id": "bad-input", "source": "/test/bad-input",
		"type": testutil.CellType + "started", "data": data,
	}
	if change != nil {
		change(ev, data)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

func without(name string) func(ev, data map[string]any) {
	return func(ev, _ map[string]any) { delete(ev, name) }
}

func with(name string, v any) func(ev, data map[string]any) {
	return func(ev, _ map[string]any) { ev[name] = v }
}

func withData(name string, v any) func(ev, data map[string]any) {
	return func(_, data map[string]any) {
		if v == nil {
			delete(data, name)
			return
		}
		data[name] = v
	}
}

// postRefusals are bodies, content types and sizes POST /v1/events
// refuses.
func postRefusals() []refusal {
	post := func(name string, body []byte, ct string, status int, code, names string) refusal {
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		return refusal{name: "POST /v1/events " + name, method: "POST", target: "/v1/events", header: h,
			body: func() io.Reader { return bytes.NewReader(body) }, status: status, code: code, names: names}
	}
	const ce = "application/cloudevents+json"
	const batch = "application/cloudevents-batch+json"
	// binary is a binary-mode request: the attributes of a good event as
	// ce-* headers (set overrides them, "" deletes), data as the body.
	binary := func(name string, set map[string]string, data []byte, names string) refusal {
		r := post(name, data, "application/json", 400, badEvent, names)
		for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "e-bin", "ce-source": "/s",
			"ce-type": "dev.cellos.events.cell.lifecycle.v1.started"} {
			r.header.Set(k, v)
		}
		for k, v := range set {
			r.header.Del(k)
			if v != "" {
				r.header.Set(k, v)
			}
		}
		return r
	}
	invalid := func(name string, body []byte, names string) refusal {
		return post(name, body, ce, 400, badEvent, names)
	}
	good := event(nil)
	longID := strings.Repeat("c", cellevent.MaxIDLen+1)
	out := []refusal{
		// Content types (the body is a valid event).
		post("without Content-Type", good, "", 415, web.CodeUnsupportedMedia, "Content-Type"),
		post("as text/plain", good, "text/plain", 415, web.CodeUnsupportedMedia, "Content-Type"),
		post("as a form", good, "application/x-www-form-urlencoded", 415, web.CodeUnsupportedMedia, "Content-Type"),
		post("as multipart", good, "multipart/form-data; boundary=x", 415, web.CodeUnsupportedMedia, "Content-Type"),
		post("as a batch", good, batch, 400, web.CodeInvalidBatch, "JSON array"),
		post("as an XML CloudEvent", good, "application/cloudevents+xml", 415, web.CodeUnsupportedMedia, "Content-Type"),
		post("as XML", good, "application/xml", 415, web.CodeUnsupportedMedia, "Content-Type"),
		post("in latin1", good, "application/json; charset=latin1", 415, web.CodeUnsupportedMedia, "charset"),
		post("with a broken media type", good, "application/json; charset", 415, web.CodeUnsupportedMedia, "Content-Type"),
		// Bodies that are not one JSON object.
		invalid("empty", nil, ""),
		invalid("blank", []byte(" \n"), ""),
		invalid("not JSON", []byte("hello"), ""),
		invalid("a JSON array", []byte("["+string(good)+"]"), ""),
		invalid("a JSON string", []byte(`"event"`), ""),
		invalid("a JSON number", []byte(`42`), ""),
		invalid("JSON null", []byte(`null`), ""),
		invalid("truncated", good[:len(good)-1], ""),
		invalid("two objects", append(slices.Clip(good), good...), ""),
		invalid("trailing garbage", append(slices.Clip(good), " x"...), ""),
		invalid("not UTF-8", bytes.Replace(good, []byte("c-1"), []byte("c-\xff"), 1), "UTF-8"),
		// A CloudEvent missing each required attribute, or with a wrong one.
		invalid("without specversion", event(without("specversion")), "specversion"),
		invalid("without id", event(without("id")), "id"),
		invalid("without source", event(without("source")), "source"),
		invalid("without type", event(without("type")), "type"),
		invalid("without data", event(without("data")), "data"),
		invalid("with specversion 0.3", event(with("specversion", "0.3")), "specversion"),
		invalid("with a null id", event(with("id", nil)), "id"),
		invalid("with an empty id", event(with("id", "")), "id"),
		invalid("with a numeric id", event(with("id", 7)), "id"),
		invalid("with a control character in the id", event(with("id", "a\nb")), "id"),
		invalid("with an id of 257 characters", event(with("id", strings.Repeat("i", 257))), "id"),
		invalid("with a numeric source", event(with("source", 1)), "source"),
		invalid("with an unknown type", event(with("type", "com.example.unknown")), "type"),
		invalid("with an unknown phase", event(with("type", testutil.CellType+"exploded")), "type"),
		invalid("with a type prefix only", event(with("type", strings.TrimSuffix(testutil.CellType, "."))), "type"),
		invalid("with a numeric subject", event(with("subject", 5)), "subject"),
		invalid("with a bad time", event(with("time", "yesterday")), "time"),
		invalid("with a non-JSON datacontenttype", event(with("datacontenttype", "text/plain")), "datacontenttype"),
		invalid("with data_base64", event(with("data_base64", "e30=")), "data_base64"),
		invalid("with an upper-case attribute", event(with("Extra", "x")), "Extra"),
		invalid("with data an array", event(with("data", []int{1})), "data"),
		invalid("with data a string", event(with("data", "c-1")), "data"),
		invalid("with data null", event(with("data", nil)), "data"),
		// Entity ids that are not one valid token.
		invalid("without data.cellId", event(withData("cellId", nil)), "data.cellId"),
		invalid("with a formationId instead of a cellId", event(func(_, d map[string]any) { delete(d, "cellId"); d["formationId"] = "f-1" }), "data.cellId"),
		invalid("formation event without data.formationId", event(with("type", testutil.FormationType+"created")), "data.formationId"),
		invalid("with a numeric cellId", event(withData("cellId", 1)), "data.cellId"),
		invalid("with an empty cellId", event(withData("cellId", "")), "data.cellId"),
	}
	for _, id := range []string{"a.b", "a b", "*", ">", "a/b", "é", "a\x00b", longID} {
		out = append(out, invalid(fmt.Sprintf("with cellId %.20q", id), event(withData("cellId", id)), "data.cellId"))
	}
	// Binary mode (ce-* headers) and batches.
	cellData := []byte(`{"cellId":"c-1"}`)
	out = append(out,
		binary("in binary mode without ce-specversion", map[string]string{"ce-specversion": ""}, cellData, "ce-specversion"),
		binary("in binary mode with ce-specversion 2.0", map[string]string{"ce-specversion": "2.0"}, cellData, "ce-specversion"),
		binary("in binary mode without ce-id", map[string]string{"ce-id": ""}, cellData, "id"),
		binary("in binary mode with an unknown type", map[string]string{"ce-type": "com.example.x"}, cellData, "type"),
		binary("in binary mode with a bad ce-time", map[string]string{"ce-time": "noon"}, cellData, "time"),
		binary("in binary mode with data not JSON", nil, []byte(`{"cellId":`), "data"),
		binary("in binary mode without data", nil, nil, "data"),
		binary("in binary mode with text data", map[string]string{"Content-Type": "text/plain"}, []byte("c-1"), "datacontenttype"),
		post("as a batch, not UTF-8", []byte("[\"\xff\"]"), batch, 400, web.CodeInvalidBatch, "UTF-8"),
		post("as a batch, truncated", []byte("["+string(good)), batch, 400, web.CodeInvalidBatch, "JSON array"),
		post("as a batch of too many events", []byte("["+strings.Repeat("{},", web.MaxBatchEvents)+"{}]"), batch, 413, web.CodeBodyTooLarge, "1000"),
		post("as a batch in latin1", []byte("[]"), batch+"; charset=latin1", 415, web.CodeUnsupportedMedia, "charset"),
	)
	// A valid event with a query parameter: the endpoint takes none.
	unknownQ := post("with a query parameter", good, ce, 400, unknownParam, "dryRun")
	unknownQ.target = "/v1/events?dryRun=1"
	out = append(out, unknownQ)

	// Sizes. A valid event of more than 1 MiB, sent with its
	// Content-Length: the server answers before reading the body and closes
	// the connection, so a client still sending it may see its write fail
	// before it reads the answer; with "Expect: 100-continue" the client
	// waits for the answer first and sends nothing.
	huge := event(withData("pad", strings.Repeat("x", web.MaxEventBytes)))
	overMiB := post("over 1 MiB", huge, ce, 413, web.CodeBodyTooLarge, "")
	overMiB.header.Set("Expect", "100-continue")
	// The same without a Content-Length: the server stops reading at 1 MiB.
	chunked := post("over 1 MiB chunked", huge, ce, 413, web.CodeBodyTooLarge, "")
	chunked.body = func() io.Reader {
		return io.MultiReader(bytes.NewReader(huge)) // not a *bytes.Reader: sent chunked
	}
	// Exactly 1 MiB: within the body limit, but with its Nats-Msg-Id
	// header it does not fit NATS's max_payload (1 MiB by default).
	mib := event(withData("pad", ""))
	mib = event(withData("pad", strings.Repeat("x", web.MaxEventBytes-len(mib))))
	// A header block beyond the server's 16 KiB: net/http answers 431.
	bigHeader := post("with a 32 KiB header", good, ce, http.StatusRequestHeaderFieldsTooLarge, "", "")
	bigHeader.header.Set("X-Padding", strings.Repeat("p", 32<<10))
	out = append(out, overMiB, chunked, bigHeader,
		post("of exactly 1 MiB", mib, ce, 413, web.CodeBodyTooLarge, "max_payload"))
	return out
}

// refusals is every refused HTTP request.
func refusals() []refusal {
	get := func(target string, status int, code, names string) refusal {
		return refusal{method: "GET", target: target, status: status, code: code, names: names}
	}
	var out []refusal
	// GET /v1/formations, /v1/cells: limit, after, filters.
	for _, path := range []string{"/v1/formations", "/v1/cells"} {
		out = append(out, endpointRefusals(path, param{"limit", "10", badLimits}, param{"after", "f-00000", nil}, param{"tenant", "tenant-1", nil},
			param{"prefix", "f-0", badPrefixes})...)
		out = append(out,
			get(path+"?since=1", 400, unknownParam, "since"),
			get(path+"?subject=cellos.events.>", 400, unknownParam, "subject"),
		)
	}
	out = append(out,
		get("/v1/formations?status=sleeping", 400, badParam, "status"),
		get("/v1/cells?state=running2", 400, badParam, "state"),
		get("/v1/cells?outcome=oom", 400, badParam, "outcome"),
		get("/v1/formations?outcome=failed", 400, unknownParam, "outcome"),
		get("/v1/cells?formation=%ff", 400, badParam, "formation"),
	)

	out = append(out, paramRefusals("/v1/cells", "outcome", "failed")...)

	// GET /v1/summary: tenant only.
	out = append(out, endpointRefusals("/v1/summary", param{"tenant", "tenant-1", nil})...)
	for _, q := range []string{"limit=10", "after=f-00000", "prefix=f", "status=running", "since=1"} {
		name := strings.SplitN(q, "=", 2)[0]
		out = append(out, get("/v1/summary?"+q, 400, unknownParam, name))
	}

	// Every registry read: min_seq (a decimal uint64) and wait (a
	// duration up to 30s, only with min_seq).
	for _, path := range []string{"/v1/formations", "/v1/cells", "/v1/summary", "/v1/formations/f-00000", "/v1/cells/f-00000-c00"} {
		out = append(out, paramRefusals(path, "min_seq", "1")...)
		out = append(out, valueRefusals(path, "min_seq", badSeqs)...)
		for _, rc := range paramRefusals(path, "wait", "1s") {
			rc.target = strings.Replace(rc.target, "?", "?min_seq=1&", 1)
			out = append(out, rc)
		}
		out = append(out, get(path+"?wait=1s", 400, badParam, "wait"))
		for _, v := range badWaits {
			out = append(out, get(path+"?min_seq=1&"+qv("wait", v), 400, badParam, "wait"))
		}
	}

	// GET /v1/formations/{id}: limit, the page of its cells.
	out = append(out, queryRefusals("/v1/formations/f-00000")...)
	out = append(out, paramRefusals("/v1/formations/f-00000", "limit", "10")...)
	out = append(out, valueRefusals("/v1/formations/f-00000", "limit", badLimits)...)
	for _, q := range []string{"after=x", "since=1", "tenant=acme", "state=running", "prefix=f"} {
		out = append(out, get("/v1/formations/f-00000?"+q, 400, unknownParam, strings.SplitN(q, "=", 2)[0]))
	}
	// GET /v1/cells/{id}, /v1/status: no other parameters; ids that
	// cannot exist are not found.
	out = append(out, noQueryRefusals("/v1/cells/f-00000-c00")...)
	// GET /v1/status: hash=1 or 0, nothing else.
	out = append(out, endpointRefusals("/v1/status", param{name: "hash", good: "0", bad: []string{"", "2", "true", "01", "-1", " 1"}})...)
	for _, path := range []string{"/v1/formations/", "/v1/cells/"} {
		for _, id := range []string{"%ff", "%00", "a%20b", "a.b", "%2F", "*", strings.Repeat("x", 200), "nope"} {
			out = append(out, get(path+id, 404, web.CodeNotFound, ""))
		}
		// A path that does not unescape is refused by net/http itself.
		out = append(out, get(path+"%zz", 400, "", ""))
	}

	// GET /v1/events.
	out = append(out, endpointRefusals("/v1/events", param{"since", "0", badSeqs}, param{"limit", "10", badLimits},
		param{"subject", "cellos.events.>", badSubjects}, param{"epoch", "2026-01-01T00:00:00Z", nil})...)
	out = append(out,
		get("/v1/events?epoch=", 400, badParam, "epoch"),
		// An epoch that is not the stream's: the cursor is of another incarnation.
		get("/v1/events?epoch=x", 410, web.CodeCursorExpired, "epoch"),
		// Well-formed cursors beyond the stream's end.
		get("/v1/events?since=18446744073709551615", 410, web.CodeCursorExpired, "since"),
		get("/v1/events?since=1000000", 410, web.CodeCursorExpired, "since"),
	)

	// GET /ws/events without a handshake: the parameters are checked
	// first, then the handshake.
	out = append(out, wsQueries()...)
	out = append(out,
		get("/ws/events", 426, web.CodeUpgradeRequired, "WebSocket"),
		get("/ws/events?since=0&subject=cellos.events.>", 426, web.CodeUpgradeRequired, "WebSocket"),
	)
	// Handshakes websocket.Accept would refuse in plain text.
	for _, h := range []struct {
		name, version string
		keys          []string
	}{
		{"without a version", "", []string{handshakeKey}},
		{"of version 12", "12", []string{handshakeKey}},
		{"without a key", "13", nil},
		{"with two keys", "13", []string{handshakeKey, handshakeKey}},
		{"with a short key", "13", []string{"c2hvcnQ="}},
		{"with a key that is not base64", "13", []string{"not base64 at all!!"}},
	} {
		hdr := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": h.keys}
		names := "Sec-WebSocket-Key"
		if h.version != "13" {
			names = "Sec-WebSocket-Version"
		}
		if h.version != "" {
			hdr.Set("Sec-WebSocket-Version", h.version)
		}
		out = append(out, refusal{name: "GET /ws/events handshake " + h.name, method: "GET", target: "/ws/events?since=0",
			header: hdr, status: 400, code: web.CodeBadHandshake, names: names})
	}

	out = append(out, postRefusals()...)

	// Methods the routes do not take.
	for _, m := range []struct{ method, path string }{
		{"POST", "/v1/formations"}, {"PUT", "/v1/formations"}, {"DELETE", "/v1/formations/f-00000"},
		{"PATCH", "/v1/cells"}, {"POST", "/v1/cells/f-00000-c00"}, {"DELETE", "/v1/cells/f-00000-c00"},
		{"POST", "/v1/summary"}, {"PUT", "/v1/summary"},
		{"PUT", "/v1/events"}, {"DELETE", "/v1/events"}, {"PATCH", "/v1/events"},
		{"POST", "/ws/events"}, {"POST", "/v1/status"}, {"DELETE", "/v1/status"},
	} {
		out = append(out, refusal{method: m.method, target: m.path, status: 405, code: web.CodeMethodNotAllowed, names: m.method})
	}

	// A header block beyond the server's limit on a read.
	out = append(out, refusal{name: "GET /v1/formations with a 32 KiB header", method: "GET", target: "/v1/formations",
		header: http.Header{"X-Padding": {strings.Repeat("p", 32<<10)}}, status: http.StatusRequestHeaderFieldsTooLarge})
	return out
}

// handshakeKey is a valid Sec-WebSocket-Key.
const handshakeKey = "dGhlIHNhbXBsZSBub25jZQ=="

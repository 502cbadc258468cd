package embed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"cellos-allinone/auth"
	"cellos-allinone/eventlog"
)

// The gate judges the two JetStream API requests of readers whose
// subject alone cannot say whether they are harmless, and passes them on
// to JetStream:
//
//   - consumer create: nats-server's filtered-subject form
//     ($JS.API.CONSUMER.CREATE.<stream>.<consumer>.<filter>) pins the
//     filter, but not the rest of the configuration. A push consumer is
//     delivered by JetStream in $G, to whatever deliver subject the reader
//     names: the reader would choose where the stream's messages go in an
//     account it must not reach (nats-server v2.15.2 ignores such
//     deliveries to its own API; nothing here relies on that). A durable
//     stays on disk for good, and the create-or-update action would let a
//     reader re-point someone else's consumer it knows the name of. The gate lets through ephemeral pull
//     consumers whose filters lie in the reader's sub-tree, as a create,
//     in memory, left inactive for 5 minutes at most (what nats.go's
//     ordered consumer asks; a reader may not delete its consumers).
//   - stream info: its request may ask for every subject of the stream
//     with its count (other tenants' entity ids) and for deleted
//     sequences; the gate sends it without a body.
//
// Pulls ($JS.API.CONSUMER.MSG.NEXT) go from the reader's account straight
// to JetStream: the gate is not on the path of the messages.

// maxReaderInactive bounds how long a reader's consumer outlives its last
// pull: readers cannot delete consumers, so an abandoned one lingers that
// long.
const maxReaderInactive = 5 * time.Minute

// startGate subscribes the gate on its own in-process connection, so that
// its work never queues behind the process's reads.
func (s *Server) startGate() error {
	nc, err := s.Connect(nats.Name("cellos-allinone gate"))
	if err != nil {
		return fmt.Errorf("embed: connect the JetStream gate: %w", err)
	}
	if _, err := nc.Subscribe(gatePrefix+">", func(m *nats.Msg) { s.judge(nc, m) }); err != nil {
		nc.Close()
		return fmt.Errorf("embed: subscribe the JetStream gate: %w", err)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return fmt.Errorf("embed: subscribe the JetStream gate: %w", err)
	}
	s.gate = nc
	return nil
}

// judge checks a reader's request, answers an error itself, and passes
// the rest on to JetStream. nats-server lets no client publish with the
// reserved reply subject a service import gives a request (_R_.…), so the
// gate asks JetStream itself and relays the answer, on a goroutine of its
// own (at most gateInFlight at a time; beyond that the subscription's
// callback waits and its pending limits drop what a flood sends).
func (s *Server) judge(nc *nats.Conn, m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	sc, api, ok := parseGate(m.Subject)
	var fwd *nats.Msg
	var err error
	respType := server.JSApiConsumerCreateResponseType
	switch {
	case !ok:
		err = fmt.Errorf("not a gate subject")
	case api == jsInfo:
		respType = server.JSApiStreamInfoResponseType
		fwd = &nats.Msg{Subject: jsInfo}
	case strings.HasPrefix(api, jsCreate+"."):
		fwd, err = sc.createRequest(api, m.Data)
	default:
		err = fmt.Errorf("not an API request a reader may make")
	}
	if err != nil {
		s.log.Debug("NATS reader request refused", "subject", api, "account", sc.account(), "err", err)
		refuse(nc, m.Reply, respType, 403, err)
		return
	}
	if lvl := m.Header.Get(server.JSRequiredApiLevel); lvl != "" {
		fwd.Header = nats.Header{server.JSRequiredApiLevel: []string{lvl}}
	}
	s.gateSlots <- struct{}{}
	go func() {
		defer func() { <-s.gateSlots }()
		resp, err := nc.RequestMsg(fwd, gateTimeout)
		if err != nil {
			s.log.Warn("NATS reader request got no answer from JetStream", "subject", api, "err", err)
			refuse(nc, m.Reply, respType, 503, fmt.Errorf("JetStream did not answer: %v", err))
			return
		}
		_ = nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: resp.Header, Data: resp.Data})
	}()
}

// Bounds of the gate's work.
const (
	gateInFlight = 64
	gateTimeout  = 5 * time.Second
)

// parseGate splits a gate subject into the scope its import gave it and
// the JetStream API subject the client used.
func parseGate(subject string) (sc scope, api string, ok bool) {
	rest, ok := strings.CutPrefix(subject, gatePrefix)
	if !ok {
		return scope{}, "", false
	}
	if api, ok := strings.CutPrefix(rest, "U."); ok {
		return scope{}, api, true
	}
	if rest, ok := strings.CutPrefix(rest, "T."); ok {
		t, api, ok := strings.Cut(rest, ".")
		return scope{tenant: t}, api, ok && auth.ValidTenant(t)
	}
	return scope{}, "", false
}

// createRequest checks a consumer create request of the scope and
// returns the request to pass on.
func (sc scope) createRequest(subject string, data []byte) (*nats.Msg, error) {
	_, filter, _ := strings.Cut(strings.TrimPrefix(subject, jsCreate+"."), ".")
	var req server.CreateConsumerRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("consumer create request: %v", err)
	}
	c := &req.Config
	filters := c.FilterSubjects
	if c.FilterSubject != "" {
		filters = append(filters, c.FilterSubject)
	}
	switch {
	case req.Stream != eventlog.StreamName:
		return nil, fmt.Errorf("stream %q is not %s", req.Stream, eventlog.StreamName)
	case c.DeliverSubject != "" || c.DeliverGroup != "":
		return nil, fmt.Errorf("a reader creates pull consumers only (no deliver subject)")
	case c.Durable != "":
		return nil, fmt.Errorf("a reader creates ephemeral consumers only (no durable name)")
	case c.Direct || c.Sourcing:
		return nil, fmt.Errorf("a reader creates ordinary consumers only")
	case filter != "" && (c.FilterSubject != filter || len(c.FilterSubjects) > 0):
		return nil, fmt.Errorf("the configuration's filter is not the subject's")
	case len(filters) == 0 && sc.tenant != "":
		return nil, fmt.Errorf("a tenant's consumer filters on %s", sc.tree())
	}
	for _, f := range filters {
		if !within(f, sc.tree()) {
			return nil, fmt.Errorf("filter %q is outside %s", f, sc.tree())
		}
	}
	c.MemoryStorage = true
	if c.InactiveThreshold > maxReaderInactive {
		c.InactiveThreshold = maxReaderInactive
	}
	req.Action = server.ActionCreate
	body, err := json.Marshal(&req)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: subject, Data: body}, nil
}

// within reports whether every subject that filter matches lies in tree
// (a prefix of literal tokens ending in >).
func within(filter, tree string) bool {
	prefix := strings.Split(strings.TrimSuffix(tree, ".>"), ".")
	tokens := strings.Split(filter, ".")
	if len(tokens) <= len(prefix) {
		return false
	}
	for i, t := range prefix {
		if tokens[i] != t {
			return false
		}
	}
	for _, t := range tokens {
		if t == "" {
			return false
		}
	}
	return true
}

// refuse answers a request as JetStream answers an error, so that the
// client's library reports it as one.
func refuse(nc *nats.Conn, reply, respType string, code int, why error) {
	resp := server.ApiResponse{Type: respType, Error: &server.ApiError{Code: code, Description: "cellos: " + why.Error()}}
	body, err := json.Marshal(&resp)
	if err == nil {
		_ = nc.Publish(reply, body)
	}
}

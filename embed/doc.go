// Package embed runs nats-server with file-backed JetStream inside this
// process.
//
// The server listens for external producers on a loopback TCP port by
// default; this process itself connects in-process (no socket) through
// Server.Connect. The server never installs signal handlers: the program
// owns SIGINT/SIGTERM and calls Shutdown.
//
// # Principals, accounts and permissions
//
// Without Options.Auth every client is anonymous in the global account
// $G, where the stream lives (its files stay under jetstream/$G). With
// it, nats-server asks login.go for every client (CustomClientAuthentication,
// a nonce in every INFO): a user name and password or an auth_token is
// looked up like an HTTP bearer token, an NKey user proves its key by
// signing the nonce, and this process's own connections log in as an
// internal user that exists only in-process (a net.Pipe) with a secret
// made at Start and kept in memory. Everything else is refused.
//
//	account       who                              reaches the stream by
//	$G            the stream, this process, admins  everything (no permissions)
//	TENANT_<t>    tenant t's publishers, readers    service imports from $G
//	UNTENANTED    other publishers and readers      service imports from $G
//
// Each account's _INBOX.> is its own: replies never cross accounts except
// through the response mappings of the imports. What a principal may do:
//
//	publisher of tenant t  publish cellos.events.formation.>, cellos.events.cell.>
//	                       (stored as cellos.events.<t>.formation.>, … by the
//	                       import's subject mapping) and cellos.events.<t>.>;
//	                       subscribe _INBOX.> (its acks)
//	untenanted publisher   publish cellos.events.>; subscribe _INBOX.>
//	reader of tenant t     publish $JS.API.CONSUMER.CREATE.CELLOS_EVENTS.*.cellos.events.<t>.>,
//	                       $JS.API.CONSUMER.MSG.NEXT.CELLOS_EVENTS.*,
//	                       $JS.API.STREAM.INFO.CELLOS_EVENTS; subscribe _INBOX.>
//	untenanted reader      the same with any filter inside cellos.events.> or none
//
// Nothing else: no other JetStream API (no purge, delete, consumer
// delete or list), no subscription outside _INBOX.>. Publish and subscribe
// permissions are checked by nats-server before an import is looked at,
// and an account has no import for what its permissions refuse.
//
// Consumer creation and stream info pass a gate (gate.go) on their way
// to JetStream: a reader's consumer is an ephemeral pull consumer inside
// its sub-tree, created (never updated) in memory; stream info is
// answered without per-subject counts. Pulls go straight to JetStream.
//
// SetAuth swaps the principals atomically: new tenants get their
// accounts, the connections of principals the new set removes or changes
// are closed, all others stay open. SetCertificate swaps the client
// port's TLS certificate (TLS 1.2 or later; Connect never uses TLS).
//
// # The nats CLI
//
// A tenant reader reads its sub-tree from the start and stops at its end
// (drop -T to follow it live):
//
//	nats --server tls://host:4222 --user acme-read --password "$TOKEN" \
//	  sub 'cellos.events.acme.>' --stream CELLOS_EVENTS --all -T
//
// A tenant publisher publishes the seed's subjects with its credentials;
// a message id prefixed with the tenant deduplicates:
//
//	nats --server tls://host:4222 --user acme-pub --password "$TOKEN" \
//	  pub --jetstream -H Nats-Msg-Id:acme/<event id> \
//	  cellos.events.formation.<id>.created "$EVENT"
//
// (--token "$TOKEN" instead of --user/--password works too; an NKey
// principal uses --nkey <seed file>.)
//
// Import it under an alias (for example natsembed): its name is the
// standard library's embed.
package embed

// Package auth reads the auth file (--auth-file, docs/security.md) into one
// immutable Set of principals, and answers who a credential belongs to.
//
// One line is one principal:
//
//	<name> <secret> <role>[,<role>…] [<tenant>]
//
// with '#' starting a comment. The secret is sha256:<hex> (the SHA-256 of a
// bearer token or password), nkey:<public user key> (a NATS NKey user, for
// NATS only), or anything else taken literally. Roles are admin (everything),
// reader (the read API, /v1/events, /ws/events, the web view; reading the
// stream over NATS) and publisher (POST /v1/events; publishing over NATS). A
// tenant confines the principal to that tenant everywhere; an admin has none.
//
// The same Set feeds HTTP (web) and NATS (embed): both hold a pointer to the
// current one and swap it atomically on reload (SIGHUP). Secrets are compared
// in constant time and never formatted into an error or a log line: an error
// names the file's line, not its content.
package auth

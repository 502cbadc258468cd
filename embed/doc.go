// Package embed runs nats-server with file-backed JetStream inside this
// process.
//
// The server listens for external producers on a loopback TCP port by
// default; this process itself connects in-process (no socket) through
// Server.Connect. The server never installs signal handlers: the program
// owns SIGINT/SIGTERM and calls Shutdown.
//
// Import it under an alias (for example natsembed): its name is the
// standard library's embed.
package embed

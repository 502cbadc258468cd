// Command cellos-allinone runs the CellOS event log, its projection and
// its API in one process, and offers the terminal commands around it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is every subcommand, in the order help lists them; each lives
// in the file of its name. It is the one list: help, dispatch and the
// tests read it.
var commands = []command{
	{"serve", "run NATS JetStream, the projection, the API and the web view (the default)", serve},
	{"demo", "generate realistic formation and cell traffic (with its own server, or --target URL)", demoCmd},
	{"tail", "follow the live event stream, one line per event (alias: follow)", tail},
	{"follow", "same as tail", tail},
	{"get", "list formations or cells, or show one, from a running server", get},
	{"publish", "publish a CloudEvent, or a JSONL file of them, to a running server", publish},
	{"snapshot", "inspect, verify, rebuild or hash the projection's checkpoint", snapshot},
	{"version", "print the version, commit, Go and nats-server versions (also --version)", versionCmd},
}

// lookup finds a subcommand by name.
func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usageError makes the process exit with code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code: 0 ok, 1
// runtime failure, 2 usage error.
//
// No command means serve ("cellos-allinone --data-dir x" serves); -h,
// --help and help list the commands; "help CMD" and "CMD --help" print the
// command's flags on stdout; --version is the version command.
func run(args []string, stdout, stderr io.Writer) int {
	name := "serve"
	switch {
	case len(args) == 0:
	case isHelpFlag(args[0]) || args[0] == "help":
		if len(args) == 1 || strings.HasPrefix(args[1], "-") {
			printUsage(stdout)
			return 0
		}
		// "help snapshot verify" is "snapshot verify --help".
		name, args = args[1], append(args[2:len(args):len(args)], "--help")
	case args[0] == "--version" || args[0] == "-version":
		name, args = "version", args[1:]
	case args[0] != "" && args[0][0] != '-':
		name, args = args[0], args[1:]
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "cellos-allinone: unknown command %q\n\n", name)
		printUsage(stderr)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	err := cmd.run(ctx, args, stdout, stderr)
	var ue usageError
	var help helpRequested
	switch {
	case err == nil:
		return 0
	case errors.As(err, &help):
		fmt.Fprint(stdout, help.usage)
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "cellos-allinone %s: %s\n", name, ue.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "cellos-allinone %s: %v\n", name, err)
		return 1
	}
}

// isHelpFlag is what the flag package takes for a request for help.
func isHelpFlag(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help"
}

// exitNow ends the process; a variable so that a test can see the call.
var exitNow = os.Exit

// signalContext is cancelled by the first SIGINT/SIGTERM; a second one
// exits at once. SIGHUP never ends a command: serve (and demo's server)
// reload their credentials on it (reloadRequests); others ignore it, so
// that a closed terminal or "systemctl reload" does not kill them
// silently.
func signalContext() (context.Context, func()) {
	hups := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			select {
			case hups <- struct{}{}:
			default: // one reload pending is enough
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), reloadKey{}, (<-chan struct{})(hups)))
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		if _, ok := <-ch; !ok {
			return
		}
		cancel()
		if _, ok := <-ch; ok {
			fmt.Fprintln(os.Stderr, "cellos-allinone: second signal, exiting now")
			exitNow(1)
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(ch)
		signal.Stop(hup)
		close(hup)
		cancel()
	}
}

type reloadKey struct{}

// reloadRequests delivers a value per SIGHUP (coalesced while one waits);
// nil (never) for a context that signalContext did not make.
func reloadRequests(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(reloadKey{}).(<-chan struct{})
	return ch
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "cellos-allinone %s: the CellOS event log, projection, API and web view in one binary.\n\n", versionString())
	fmt.Fprintln(w, "Usage: cellos-allinone [command] [flags]   (no command = serve)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'cellos-allinone help COMMAND' (or 'cellos-allinone COMMAND --help') for its flags and an example.")
	fmt.Fprintln(w, "Every flag has an environment twin: --data-dir is CELLOS_DATA_DIR; the flag wins.")
}

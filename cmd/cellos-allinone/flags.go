package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// envPrefix: every flag --some-name has the environment twin
// CELLOS_SOME_NAME; a flag given on the command line wins.
const envPrefix = "CELLOS_"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet returns a flag set whose usage shows what the command does and
// an example.
func newFlagSet(name, about, example string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: cellos-allinone %s [flags]\n\n", name)
		if about != "" {
			fmt.Fprintf(w, "%s\n\n", about)
		}
		if example != "" {
			fmt.Fprintf(w, "Example:\n  %s\n\n", example)
		}
		fmt.Fprintln(w, "Flags (each has an environment twin CELLOS_<FLAG_NAME>; the flag wins):")
		fs.PrintDefaults()
	}
	return fs
}

// helpRequested carries a command's usage after -h or --help: no failure,
// and run prints it on stdout (a help that was asked for is the output, and
// pipes into a pager), where a bad flag's usage goes to stderr.
type helpRequested struct{ usage string }

func (helpRequested) Error() string { return flag.ErrHelp.Error() }
func (helpRequested) Unwrap() error { return flag.ErrHelp }

// parseFlags is fs.Parse with the usage text of -h/--help returned as a
// helpRequested instead of written to fs's output.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		return helpRequested{buf.String()}
	}
	_, _ = buf.WriteTo(out)
	return err
}

// parse parses args, then fills every flag not given from its environment
// twin. Errors are usage errors (exit 2).
func parse(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %v", envName(f.Name), v, err))
			}
		}
	})
	if len(errs) > 0 {
		return usageError{errors.Join(errs...).Error()}
	}
	return nil
}

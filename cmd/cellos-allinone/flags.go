package main

import (
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

// parse parses args, then fills every flag not given from its environment
// twin. Errors are usage errors (exit 2).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
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

// Package realbinary runs the real cellos-allinone binary as a child
// process and kills it again and again while events are being published,
// proving after every round that
//
//  1. the projection it serves equals a fold of the event log
//     (snapshot verify exits 0; cursor = stream last sequence), and
//  2. no event whose publish was acknowledged was lost to the crash.
//
// It also checks a graceful SIGTERM shutdown of the binary. The tests are
// long: they are skipped unless CELLOS_LONG=1 is set:
//
//	CELLOS_LONG=1 go test -race -count=1 -v ./test/realbinary/
//
// CELLOS_CRASHLOOP_SEED replays a logged seed (kill delays and traffic);
// CELLOS_CRASHLOOP_ROUNDS changes the number of rounds (default 24).
//
// The power-cut loops (TestPowerCut*) run the binary with its data dir on
// test/lazyfs and cut the power after each SIGKILL: unsynced data is lost,
// whole or torn (docs/durability.md, "Power cuts"). They need root and
// FUSE (skipped without, failed with CI=true). CELLOS_POWERCUT_ROUNDS sets
// the rounds of each loop (default 20), CELLOS_POWERCUT_SEED replays one.
package realbinary

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
package realbinary

//go:build race

package app_test

// raceDetector: this test binary was built with -race (CI's main run),
// which makes the server's fold and queries several times slower.
const raceDetector = true

//go:build !race

package web_test

// raceDetector: this test binary was built without -race.
const raceDetector = false

//go:build !race

package app_test

// raceDetector: this test binary was built without -race.
const raceDetector = false

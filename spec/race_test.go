//go:build race

package spec

// raceEnabled makes timing assertions skip under the race detector, which
// slows parsing several times over.
const raceEnabled = true

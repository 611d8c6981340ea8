package main

import (
	"os"
	"path/filepath"
	"strings"
)

// A program that drives smolvm may give it a minimal environment of its own
// choosing (bottle-reconcile does), so the SMOLVM_EMU_* settings can also
// come from a file in the data dir: <data>/emu/faults.env, one KEY=VALUE a
// line. The environment wins over the file.

// faultFile is where the settings file lives, under the data dir.
const faultFile = "emu/faults.env"

// withFaultFile returns lookup, falling back to the settings file for
// SMOLVM_EMU_* names.
func withFaultFile(lookup func(string) (string, bool), home string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if v, ok := lookup(k); ok || !strings.HasPrefix(k, "SMOLVM_EMU_") {
			return v, ok
		}
		b, err := os.ReadFile(filepath.Join(home, faultFile))
		if err != nil {
			return "", false
		}
		for _, line := range strings.Split(string(b), "\n") {
			if key, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && key == k {
				return v, true
			}
		}
		return "", false
	}
}

package main

import (
	"runtime/debug"
	"testing"
)

func TestOneShotGC(t *testing.T) {
	tests := []struct {
		name, gogc string
		want       int
	}{
		{"default: the one-shot target", "", oneShotGCPercent},
		{"GOGC set: left alone", "50", 77},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOGC", tt.gogc)
			orig := debug.SetGCPercent(77)
			defer debug.SetGCPercent(orig)
			oneShotGC()
			if got := debug.SetGCPercent(77); got != tt.want {
				t.Errorf("GC percent = %d, want %d", got, tt.want)
			}
		})
	}
}

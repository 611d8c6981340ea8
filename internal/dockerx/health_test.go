package dockerx

import (
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/docker/docker/api/types/container"
)

func TestHealthFromStatus(t *testing.T) {
	tests := []struct {
		status string
		want   bottle.Health
	}{
		{"Up 3 seconds (healthy)", bottle.HealthHealthy},
		{"Up 2 minutes (unhealthy)", bottle.HealthUnhealthy},
		{"Up 1 second (health: starting)", bottle.HealthStarting},
		{"Up 3 seconds", bottle.HealthNone},
		{"Up About a minute (Paused)", bottle.HealthNone},
		{"Exited (137) 5 seconds ago", bottle.HealthNone},
		{"Created", bottle.HealthNone},
		{"", bottle.HealthNone},
	}
	for _, tt := range tests {
		if got := HealthFromStatus(tt.status); got != tt.want {
			t.Errorf("HealthFromStatus(%q) = %q, want %q", tt.status, got, tt.want)
		}
	}
}

func TestStateOf(t *testing.T) {
	tests := []struct {
		state      container.ContainerState
		status     string
		want       bottle.State
		wantDetail string
	}{
		{container.StateRunning, "Up 3 seconds (healthy)", bottle.StateRunning, ""},
		{container.StateCreated, "Created", bottle.StateCreated, "created"},
		{container.StateExited, "Exited (137) 5 seconds ago", bottle.StateStopped, "exited (137)"},
		{container.StateExited, "Exited (0) About a minute ago", bottle.StateStopped, "exited (0)"},
		{container.StateDead, "Dead", bottle.StateStopped, "dead"},
		{container.StatePaused, "Up 3 seconds (Paused)", bottle.StateStopped, "paused"},
		{"weird", "?", bottle.StateUnknown, "weird"},
	}
	for _, tt := range tests {
		got, detail := StateOf(container.Summary{State: tt.state, Status: tt.status})
		if got != tt.want || detail != tt.wantDetail {
			t.Errorf("StateOf(%s, %q) = %s, %q; want %s, %q", tt.state, tt.status, got, detail, tt.want, tt.wantDetail)
		}
	}
}

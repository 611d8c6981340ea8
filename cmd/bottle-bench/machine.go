package main

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
)

// machine is what the figures were measured on.
type machine struct {
	Cores          int    `json:"cores"`
	MemoryMiB      int64  `json:"memoryMiB"`
	Kernel         string `json:"kernel"`
	Docker         string `json:"docker"`
	DockerAPI      string `json:"dockerAPI"`
	Compose        string `json:"compose,omitempty"`
	Commit         string `json:"commit,omitempty"`
	BundleImage    string `json:"bundleImage"`
	GoVersion      string `json:"go"`
	BenchStartedAt string `json:"date"`
	// What else the host was doing: the figures are only as quiet as it.
	LoadStart       string `json:"loadavgStart"`
	LoadEnd         string `json:"loadavgEnd"`
	OtherContainers int    `json:"otherContainersAtStart"`
}

// describeMachine gathers the header; what cannot be read stays empty.
// start is what hostLoad said when the benchmark started.
func describeMachine(ctx context.Context, w *world, started time.Time, start hostLoad) machine {
	m := machine{
		Cores: runtime.NumCPU(), MemoryMiB: memTotalMiB(), Kernel: kernel(),
		BundleImage: w.bundleImage, GoVersion: runtime.Version(),
		BenchStartedAt: started.UTC().Format(time.RFC3339),
		LoadStart:      start.avg, LoadEnd: loadavg(), OtherContainers: start.containers,
	}
	if v, err := w.docker.ServerVersion(ctx); err == nil {
		m.Docker, m.DockerAPI = v.Version, v.APIVersion
	}
	if composeMissing() == "" {
		if out, err := runOutput(ctx, "docker-compose version", nil, "docker-compose", "version", "--short"); err == nil {
			m.Compose = strings.TrimSpace(string(out))
		}
	}
	if out, err := runOutput(ctx, "git rev-parse", nil, "git", "rev-parse", "--short", "HEAD"); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		// Uncommitted changes make the commit only an approximation.
		if st, err := runOutput(ctx, "git status", nil, "git", "status", "--porcelain", "--untracked-files=no"); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			m.Commit += "+dirty"
		}
	}
	return m
}

func memTotalMiB() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb / 1024
		}
	}
	return 0
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return "Linux " + strings.TrimSpace(string(b))
}

// hostLoad is how busy the host was before the benchmark touched it.
type hostLoad struct {
	avg        string
	containers int // running containers, none of them ours yet
}

func measureLoad(ctx context.Context, w *world) hostLoad {
	l := hostLoad{avg: loadavg()}
	if cs, err := w.docker.ContainerList(ctx, container.ListOptions{}); err == nil {
		l.containers = len(cs)
	}
	return l
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

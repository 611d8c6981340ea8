package dockertest

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder stands in for a test: it records how it was ended.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper() {}

// Fatalf and Skipf end the calling goroutine, as the real ones do.
func (r *recorder) Fatalf(f string, args ...any) {
	r.failed = fmt.Sprintf(f, args...)
	runtime.Goexit()
}
func (r *recorder) Skipf(f string, args ...any) {
	r.skipped = fmt.Sprintf(f, args...)
	runtime.Goexit()
}

func TestEndsSkipOrFail(t *testing.T) {
	why := errors.New("no iptables")
	for _, tt := range []struct {
		env        string
		end        func(testing.TB, error)
		name       string
		wantFailed bool
	}{
		{"", Lacks, "Lacks", false},
		{"1", Lacks, "Lacks", true},
		{"0", Lacks, "Lacks", false},
		{"", Unusable, "Unusable", false},
		{"1", Unusable, "Unusable", true},
	} {
		t.Run(tt.name+"/"+RequireEnv+"="+tt.env, func(t *testing.T) {
			t.Setenv(RequireEnv, tt.env)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() { defer close(done); tt.end(r, why) }()
			<-done
			got := r.skipped
			if tt.wantFailed {
				got = r.failed
			}
			if got == "" || !strings.Contains(got, "no iptables") {
				t.Errorf("failed %q, skipped %q; want it %s with the reason", r.failed, r.skipped, map[bool]string{true: "failed", false: "skipped"}[tt.wantFailed])
			}
			if r.failed != "" && r.skipped != "" {
				t.Errorf("both failed and skipped")
			}
		})
	}
}

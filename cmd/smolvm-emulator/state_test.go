package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestConcurrentCreates(t *testing.T) {
	t.Run("distinct names all succeed", func(t *testing.T) {
		e := newEmu(t)
		const n = 20
		results := make([]result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i] = e.run("machine", "create", "-n", fmt.Sprintf("vm-%d", i)) })
		}
		wg.Wait()
		for i, r := range results {
			if r.code != 0 {
				t.Errorf("create vm-%d: exit %d: %s", i, r.code, r.stderr)
			}
		}
		var arr []map[string]any
		json.Unmarshal([]byte(e.must("machine", "ls", "--json").stdout), &arr)
		if len(arr) != n {
			t.Errorf("ls has %d machines, want %d", len(arr), n)
		}
	})
	t.Run("same name exactly one wins", func(t *testing.T) {
		e := newEmu(t)
		const n = 10
		results := make([]result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i] = e.run("machine", "create", "-n", "same", "--cpus", fmt.Sprint(i+1)) })
		}
		wg.Wait()
		ok := 0
		for _, r := range results {
			switch {
			case r.code == 0:
				ok++
			case r.code == 1 && r.stderr == "Error: config operation failed: create machine: machine 'same' already exists or is being created\n":
			default:
				t.Errorf("unexpected result: exit %d: %q", r.code, r.stderr)
			}
		}
		if ok != 1 {
			t.Errorf("%d creates succeeded, want 1", ok)
		}
		if out := e.must("machine", "ls", "--json").stdout; strings.Count(out, `"name": "same"`) != 1 {
			t.Errorf("ls: %s", out)
		}
	})
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCompletionScriptsAreValid(t *testing.T) {
	for _, sh := range shells {
		t.Run(sh, func(t *testing.T) {
			code, out, errs := runCmd(t, "completion", sh)
			if code != 0 || out == "" {
				t.Fatalf("completion %s: exit %d: %s", sh, code, errs)
			}
			bin, err := exec.LookPath(sh)
			if err != nil {
				t.Skipf("%s is not installed: only generated", sh)
			}
			f := filepath.Join(t.TempDir(), "c."+sh)
			if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command(bin, "-n", f).CombinedOutput(); err != nil {
				t.Fatalf("%s -n: %v\n%s", sh, err, b)
			}
		})
	}
	if code, _, _ := runCmd(t, "completion", "fish"); code != exitUsage {
		t.Fatalf("completion fish: exit %d, want %d", code, exitUsage)
	}
}

// TestCompletionFollowsTheFlagSets checks that the scripts list every
// listed command and, for each, every flag of its real flag set.
func TestCompletionFollowsTheFlagSets(t *testing.T) {
	cmds := collectFlags()
	byName := map[string]cmdFlags{}
	for _, c := range cmds {
		byName[c.name] = c
	}
	for _, c := range commands() {
		if _, listed := byName[c.name]; listed == c.hidden {
			t.Errorf("command %q: listed %v, hidden %v", c.name, listed, c.hidden)
		}
	}
	for _, want := range []struct{ cmd, flag string }{{"plan", "detailed-exitcode"}, {"diff", "detailed-exitcode"}, {"down", "dir"}, {"", "once"}, {"validate", "format"}} {
		found := false
		for _, f := range byName[want.cmd].flags {
			found = found || f.Name == want.flag
		}
		if !found {
			t.Errorf("command %q: flag --%s not collected", want.cmd, want.flag)
		}
	}
	_, script, _ := runCmd(t, "completion", "bash")
	for _, c := range cmds {
		label := c.name
		if label == "" {
			label = `""`
		}
		i := strings.Index(script, "\n    "+label+") flags=")
		if i < 0 {
			t.Fatalf("bash script has no case for %q", c.name)
		}
		line := script[i+1:]
		line = line[:strings.Index(line, "\n")]
		for _, f := range c.flags {
			if !strings.Contains(line, dashed(f.Name)+" ") && !strings.Contains(line, dashed(f.Name)+`"`) {
				t.Errorf("bash: %q lacks %s", c.name, dashed(f.Name))
			}
		}
	}
}

func TestFlagValuesNameRealFlags(t *testing.T) {
	all := map[string]bool{}
	for _, c := range collectFlags() {
		for _, f := range c.flags {
			all[f.Name] = true
		}
	}
	for name := range flagValues {
		if !all[name] {
			t.Errorf("flagValues names --%s, which no command has", name)
		}
	}
}

// TestBashCompletes runs the bash script's function as bash would.
func TestBashCompletes(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	_, script, _ := runCmd(t, "completion", "bash")
	dir := t.TempDir()
	scriptFile := filepath.Join(dir, "c.bash")
	specs := specDir(t, map[string]string{"alice.yaml": goodSpec, "bob.yaml": badSpec})
	// A stand-in for the binary: completion asks it for bottle names.
	stub := filepath.Join(dir, "bottle-reconcile")
	names := strings.Join(bottleNames(t, specs), "\n")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\n[ \"$1\" = __bottles ] && [ \"$2\" = '"+specs+"' ] && printf '"+names+"\\n'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(scriptFile, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"pl"}, "plan"},
		{[]string{"di"}, "diff"},
		{[]string{"plan", "--det"}, "--detailed-exitcode"},
		{[]string{"diff", "-o", ""}, "text json"},
		{[]string{"validate", "--format", "g"}, "github"},
		{[]string{"--log-format", "=", "j"}, "json"},
		{[]string{"completion", ""}, "bash zsh"},
		{[]string{"down", "--dir", specs, ""}, "alice bob"},
		{[]string{"probe", "--dir", "=", specs, "b"}, "bob"},
	} {
		words := append([]string{stub}, tc.words...)
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		prog := "source " + scriptFile + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" + itoa(len(words)-1) + "\n_bottle_reconcile\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("%v: got %q (%v), want %q", tc.words, out, err, tc.want)
		}
	}
}

func bottleNames(t *testing.T, dir string) []string {
	t.Helper()
	code, out, _ := runCmd(t, "__bottles", dir)
	if code != 0 {
		t.Fatalf("__bottles: exit %d", code)
	}
	return strings.Fields(out)
}

func itoa(n int) string { return strconv.Itoa(n) }

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// deployDir is the repository's deploy/ directory.
const deployDir = "../../deploy"

// TestDeployFilesUseRealFlags parses the deploy files and checks that every
// bottle-reconcile command line in them names a real command and only
// flags that command has, so they cannot rot.
func TestDeployFilesUseRealFlags(t *testing.T) {
	flags := map[string]map[string]bool{}
	for _, c := range collectFlags() {
		flags[c.name] = map[string]bool{}
		for _, f := range c.flags {
			flags[c.name][f.Name] = true
		}
	}
	for _, tc := range []struct {
		file  string
		lines func(t *testing.T, data []byte) [][]string
		want  int // command lines at least
	}{
		{"systemd/bottle-reconcile.service", unitCommands, 1},
		{"kubernetes/daemonset.yaml", podCommands, 1},
		{"github/bottle-review.yml", workflowCommands, 3},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(deployDir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			lines := tc.lines(t, data)
			if len(lines) < tc.want {
				t.Fatalf("%d bottle-reconcile command lines found, want at least %d", len(lines), tc.want)
			}
			for _, words := range lines {
				cmd, rest := "", words
				if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
					if _, ok := flags[rest[0]]; ok {
						cmd, rest = rest[0], rest[1:]
					}
				}
				for _, w := range rest {
					if !strings.HasPrefix(w, "-") {
						continue
					}
					name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
					if !flags[cmd][name] {
						t.Errorf("%v: bottle-reconcile %s has no flag %s", words, orElse(cmd, "(watch)"), w)
					}
				}
			}
		})
	}
}

// commandWords returns the arguments of each bottle-reconcile invocation
// in a shell text, up to the end of its command.
func commandWords(text string) [][]string {
	var out [][]string
	for _, line := range strings.Split(text, "\n") {
		words := strings.Fields(strings.NewReplacer(`"`, "", `'`, "").Replace(line))
		for i, w := range words {
			if filepath.Base(w) != "bottle-reconcile" {
				continue
			}
			var args []string
			for _, a := range words[i+1:] {
				if strings.ContainsAny(a[:1], "|>;&") {
					break
				}
				args = append(args, a)
			}
			out = append(out, args)
		}
	}
	return out
}

func unitCommands(t *testing.T, data []byte) [][]string {
	var out [][]string
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			out = append(out, commandWords(v)...)
		}
	}
	return out
}

func podCommands(t *testing.T, data []byte) [][]string {
	var out [][]string
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var obj struct {
			Kind string `json:"kind"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Command []string `json:"command"`
							Args    []string `json:"args"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("parse: %v", err)
		}
		for _, c := range obj.Spec.Template.Spec.Containers {
			words := append(c.Command[:len(c.Command):len(c.Command)], c.Args...)
			if len(words) > 0 && filepath.Base(words[0]) == "bottle-reconcile" {
				out = append(out, words[1:])
			}
		}
	}
	return out
}

func workflowCommands(t *testing.T, data []byte) [][]string {
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Run string `json:"run"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatalf("parse: %v", err)
	}
	var out [][]string
	for _, j := range wf.Jobs {
		for _, s := range j.Steps {
			out = append(out, commandWords(s.Run)...)
		}
	}
	return out
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit, with
// ExecStart pointed at a binary that exists here.
func TestSystemdUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	data, err := os.ReadFile(filepath.Join(deployDir, "systemd/bottle-reconcile.service"))
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "bottle-reconcile.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/bottle-reconcile", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", unit).CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/review"
)

func bottleSpec(name string, extra ...string) string {
	s := "apiVersion: bottle-reconcile/v1alpha1\nkind: Bottle\nmetadata: {name: " + name + "}\nspec:\n  image: agent:1\n"
	for _, e := range extra {
		s += "  " + e + "\n"
	}
	return s
}

func TestDiff(t *testing.T) {
	base := specDir(t, map[string]string{
		"same.yaml":    bottleSpec("same"),
		"img.yaml":     bottleSpec("img", "env: {TOKEN: hunter2}"),
		"allow.yaml":   bottleSpec("allow"),
		"daemons.yaml": bottleSpec("daemons"),
		"kind.yaml":    bottleSpec("kind"),
		"gone.yaml":    bottleSpec("gone"),
		"broken.yaml":  bottleSpec("broken"),
		"pull.yaml":    bottleSpec("pull"),
	})
	head := specDir(t, map[string]string{
		"same.yaml":    bottleSpec("same"),
		"img.yaml":     bottleSpec("img", "env: {TOKEN: hunter3}"),
		"allow.yaml":   bottleSpec("allow", "egress: {allow: [example.com]}"),
		"daemons.yaml": bottleSpec("daemons", "daemons: [dns]"),
		"kind.yaml":    bottleSpec("kind", "guest: docker"),
		"new.yaml":     bottleSpec("new"),
		"broken.yaml":  bottleSpec("broken", "allowCIDRs: [127.0.0.0/8]"),
		"pull.yaml":    bottleSpec("pull", "pullPolicy: always"),
	})
	code, out, errs := runCmd(t, "diff", "-o", "json", base, head)
	if code != exitFail {
		t.Fatalf("exit %d with an invalid head spec, want 1: %s", code, errs)
	}
	if strings.Contains(out, "hunter") {
		t.Fatalf("an env value reached the output:\n%s", out)
	}
	var got struct {
		Changes  bool            `json:"changes"`
		Bottles  []review.Bottle `json:"bottles"`
		Problems struct {
			Head []struct{ File, Field string } `json:"head"`
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := map[string]struct {
		change review.Change
		fields string
	}{
		"same":    {review.NoChange, ""},
		"img":     {review.ReplaceGuest, "spec.env"},
		"allow":   {review.ReplaceBundle, "spec.egress.allow"},
		"daemons": {review.ReplaceBoth, "spec.daemons"},
		"kind":    {review.Recreate, "spec.guest"},
		"gone":    {review.Delete, ""},
		"new":     {review.Create, ""},
		"broken":  {review.Held, ""},
		"pull":    {review.NoChange, "spec.pullPolicy"},
	}
	if len(got.Bottles) != len(want) {
		t.Fatalf("%d bottles, want %d:\n%s", len(got.Bottles), len(want), out)
	}
	for _, b := range got.Bottles {
		w := want[b.Name]
		if b.Change != w.change || strings.Join(b.Fields, ",") != w.fields {
			t.Errorf("bottle %s: %s %v, want %s %s", b.Name, b.Change, b.Fields, w.change, w.fields)
		}
	}
	if !got.Changes || len(got.Problems.Head) != 1 || got.Problems.Head[0].Field != "spec.allowCIDRs[0]" ||
		got.Problems.Head[0].File != filepath.Join(head, "broken.yaml") {
		t.Fatalf("changes/problems: %+v", got)
	}

	code, out, _ = runCmd(t, "diff", base, head)
	for _, s := range []string{
		"bottle broken: held (invalid): " + filepath.Join(head, "broken.yaml") + " is invalid",
		"bottle img: replace the guest only (changed: spec.env)",
		"bottle gone: delete",
		"bottle pull: no change (changed: spec.pullPolicy)",
		filepath.Join(head, "broken.yaml") + ":6:16: spec.allowCIDRs[0]:",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("text output lacks %q:\n%s", s, out)
		}
	}
	if code != exitFail || strings.Contains(out, "hunter") {
		t.Fatalf("text: exit %d\n%s", code, out)
	}
}

func TestDiffExitCodesAndInputs(t *testing.T) {
	a := specDir(t, map[string]string{"a.yaml": bottleSpec("a")})
	b := specDir(t, map[string]string{"a.yaml": bottleSpec("a", "resources: {cpus: 4}")})
	badBase := specDir(t, map[string]string{"a.yaml": bottleSpec("a", "cpus: 4")})
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"same", []string{a, a}, 0, "bottle a: no change"},
		{"same, detailed", []string{"--detailed-exitcode", a, a}, 0, "bottle a: no change"},
		{"changed", []string{a, b}, 0, "bottle a: replace the guest only (changed: spec.resources.cpus)"},
		{"changed, detailed", []string{a, b, "--detailed-exitcode"}, 2, "replace the guest only"},
		{"files", []string{filepath.Join(a, "a.yaml"), filepath.Join(b, "a.yaml")}, 0, "replace the guest only"},
		{"invalid base", []string{badBase, b}, 0, "bottle a: unknown: " + filepath.Join(badBase, "a.yaml") + " is invalid in the base"},
		{"missing base", []string{filepath.Join(a, "nope"), b}, 1, ""},
		{"one argument", []string{a}, 2, ""},
		{"bad output", []string{"-o", "yaml", a, b}, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCmd(t, append([]string{"diff"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d (want %d)\n%s%s", code, tc.code, out, errs)
			}
		})
	}
}

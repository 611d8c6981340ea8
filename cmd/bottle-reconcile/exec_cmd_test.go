package main

import (
	"io"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		args                 string
		wantName, wantCmd    string
		wantI, wantT         bool
		wantEnv, wantErrPart string
	}{
		{args: "alice -- sh -c x", wantName: "alice", wantCmd: "sh -c x"},
		{args: "-it alice -- bash", wantName: "alice", wantCmd: "bash", wantI: true, wantT: true},
		{args: "alice -i -e K=V -- cat -t", wantName: "alice", wantCmd: "cat -t", wantI: true, wantEnv: "K=V"},
		{args: "alice -t ls -l", wantName: "alice", wantCmd: "ls -l", wantT: true},
		{args: "alice --", wantErrPart: "no command"},
		{args: "alice bob -- ls", wantErrPart: "one bottle NAME"},
		{args: "alice -e =s3cr3t -- ls", wantErrPart: "empty KEY"},
		{args: "alice -e USE_TEST_FROM_HERE -e USE_TEST_UNSET -- ls", wantName: "alice", wantCmd: "ls", wantEnv: "USE_TEST_FROM_HERE=here"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			fs := newFlagSet("exec", io.Discard, "")
			i, tty := fs.Bool("i", false, ""), fs.Bool("t", false, "")
			var env envFlag
			fs.Var(&env, "e", "")
			t.Setenv("USE_TEST_FROM_HERE", "here")
			name, argv, err := splitCommand(fs, strings.Fields(tc.args))
			if err == nil {
				err = env.check()
			}
			if tc.wantErrPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrPart) || strings.Contains(err.Error(), "s3cr3t") {
					t.Fatalf("err %v, want one saying %q", err, tc.wantErrPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name != tc.wantName || strings.Join(argv, " ") != tc.wantCmd || *i != tc.wantI || *tty != tc.wantT || strings.Join(env.kv, ",") != tc.wantEnv {
				t.Errorf("got %q %q i=%v t=%v env=%v", name, argv, *i, *tty, env)
			}
		})
	}
}

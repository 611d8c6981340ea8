package smolvm

import (
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/internal/guestio"
)

func TestExecCall(t *testing.T) {
	const secret = "s3cr3t-value"
	for _, tc := range []struct {
		name     string
		x        guestio.Exec
		wantArgs string
		wantEnv  string
		wantErr  string
	}{
		{
			name:     "output streams, env by name only",
			x:        guestio.Exec{Cmd: []string{"sh", "-c", "echo $TOKEN"}, Env: []string{"TOKEN=" + secret}, Dir: "/work"},
			wantArgs: "machine exec --name m --stream -w /work -e TOKEN -- sh -c echo $TOKEN",
			wantEnv:  "TOKEN=" + secret,
		},
		{
			name:     "stdin",
			x:        guestio.Exec{Cmd: []string{"cat"}, Stdin: strings.NewReader("")},
			wantArgs: "machine exec --name m -i -- cat",
		},
		{
			name:     "tty",
			x:        guestio.Exec{Cmd: []string{"sh"}, Stdin: strings.NewReader(""), TTY: true},
			wantArgs: "machine exec --name m -i -t -- sh",
		},
		{
			name:    "a name smolvm reads is refused without its value",
			x:       guestio.Exec{Cmd: []string{"true"}, Env: []string{"PATH=" + secret}},
			wantErr: "smolvm itself reads PATH",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := execCall("m", tc.x)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), secret) {
					t.Fatalf("err %v, want one saying %q, without the value", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(c.args, " "); got != tc.wantArgs {
				t.Errorf("args %q\nwant %q", got, tc.wantArgs)
			}
			if got := strings.Join(c.env, ","); got != tc.wantEnv {
				t.Errorf("env %q, want %q", got, tc.wantEnv)
			}
			if strings.Contains(strings.Join(c.args, " "), secret) {
				t.Error("an -e value is on smolvm's command line")
			}
			if c.timeout != 0 || c.stdin != tc.x.Stdin {
				t.Errorf("timeout %v (want none), stdin passed: %v", c.timeout, c.stdin == tc.x.Stdin)
			}
		})
	}
}

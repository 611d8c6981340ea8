package bottle

import (
	"fmt"
	"io"
)

// EnvSource says where a guest variable's value comes from.
type EnvSource string

// The sources of a guest's environment.
const (
	// EnvFromSpec: spec.env; the value is written in the spec.
	EnvFromSpec EnvSource = "env"
	// EnvFromHost: the reconciler's environment, named by spec.envFromHost
	// and read when the guest is created; the value is a secret.
	EnvFromHost EnvSource = "envFromHost"
	// EnvFromBundle: the proxy settings that point the guest at its bundle.
	EnvFromBundle EnvSource = "bundle"
)

// EnvVar is one variable of a guest's environment. Its value never leaves
// the process except into the guest: it is not marshalled (json:"-"), and
// printing the variable in any verb, or logging it, shows only its name and
// source.
type EnvVar struct {
	Name   string    `json:"name"`
	Source EnvSource `json:"source"`
	Value  string    `json:"-"`
}

const redacted = "<redacted>"

// String is the variable with its value redacted, e.g. "TOKEN=<redacted> (envFromHost)".
func (v EnvVar) String() string { return v.Name + "=" + redacted + " (" + string(v.Source) + ")" }

// GoString keeps %#v from printing the value.
func (v EnvVar) GoString() string { return "bottle.EnvVar{" + v.String() + "}" }

// Format keeps every verb (%v, %+v, %#v, %s, %q...) from printing the value.
func (v EnvVar) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, v.GoString())
		return
	}
	_, _ = io.WriteString(f, v.String())
}

// MarshalLog is what a logr sink that understands logr.Marshaler logs.
func (v EnvVar) MarshalLog() any {
	return struct {
		Name   string    `json:"name"`
		Source EnvSource `json:"source"`
	}{v.Name, v.Source}
}

package dockerguest

import "errors"

// Defaults for Options.
const DefaultPidsLimit = 1024

// Options configures the driver. The zero value means every default.
type Options struct {
	// PidsLimit caps the guest's processes; default DefaultPidsLimit.
	PidsLimit int64
	// Images makes a guest's image present before it is created; default
	// an images.Docker over the driver's client: the daemon's own pull,
	// with the host's docker CLI credentials.
	Images ImageSource
}

func (o Options) withDefaults() (Options, error) {
	if o.PidsLimit == 0 {
		o.PidsLimit = DefaultPidsLimit
	}
	if o.PidsLimit < 0 {
		return o, errors.New("dockerguest: pids limit must be positive")
	}
	return o, nil
}

package bottle

import "errors"

// ErrUnobservable marks an Observe error meaning the runtime cannot be
// asked at all (its binary is gone from PATH, a broken upgrade), as opposed
// to one failed call. Only a guest driver may report it: the pass goes on
// for the other guest kinds, and every bottle whose guest might be of that
// kind is held, never torn down, since a live guest could be left running
// with its egress allowed to an address the pool hands to the next bottle.
var ErrUnobservable = errors.New("runtime cannot be observed")

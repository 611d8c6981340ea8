package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// streamError reads a pull's progress stream (JSON messages, one after
// another) to its end and returns the first error it reports. Only the
// error fields are decoded: the client's own decoder (pkg/jsonmessage)
// needs modules this module does not otherwise use.
func streamError(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		err := dec.Decode(&msg)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read pull progress: %w", err)
		}
		if m := msg.ErrorDetail.Message; m != "" {
			return fmt.Errorf("%s: %w", m, errPullFailed)
		}
		if msg.Error != "" {
			return fmt.Errorf("%s: %w", msg.Error, errPullFailed)
		}
	}
}

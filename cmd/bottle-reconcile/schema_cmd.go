package main

import (
	"fmt"
	"io"

	"github.com/bottle-reconcile/bottle-reconcile/schema"
)

// cmdSchema prints the embedded JSON Schema, for editors.
func cmdSchema(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: bottle-reconcile schema")
		return exitUsage
	}
	_, _ = stdout.Write(schema.JSON)
	return exitOK
}

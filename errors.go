package swha

import (
	"fmt"
	"strings"
)

// wrap prefixes err with the package and the operation. An error that
// already begins "swha: " (the Node's own sentinels) loses that prefix in
// the text, so that the message reads "swha: begin: node closed", not
// "swha: begin: swha: node closed"; errors.Is still finds the sentinel.
func wrap(op string, err error) error {
	return fmt.Errorf("swha: %s: %w", op, unprefixed{err})
}

type unprefixed struct{ err error }

func (e unprefixed) Error() string { return strings.TrimPrefix(e.err.Error(), "swha: ") }
func (e unprefixed) Unwrap() error { return e.err }

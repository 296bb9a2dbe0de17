package swha

import "fmt"

// wrap prefixes err with the package and the operation, unless err already
// is one of the Node's own errors, which say "swha:" themselves.
func wrap(op string, err error) error {
	return fmt.Errorf("swha: %s: %w", op, trimPrefix(err))
}

// trimPrefix keeps "swha: begin: swha: node closed" from happening: the
// Node's sentinels are wrapped as they are, with only the operation added.
type plainErr struct{ err error }

func (e plainErr) Error() string {
	s := e.err.Error()
	if len(s) > 6 && s[:6] == "swha: " {
		return s[6:]
	}
	return s
}
func (e plainErr) Unwrap() error { return e.err }

func trimPrefix(err error) error { return plainErr{err} }

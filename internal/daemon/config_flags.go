package daemon

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Overrides are command-line settings that override the file: each
// "key.path=value", the value in YAML ("node.id=3", "fib.tables=[main, 100]",
// `virtual_addresses=[{interface: eth2, address: 10.1.0.1/24}]`,
// "metrics.listen=" to turn metrics off). It is a flag.Value, so that
//
//	var ov daemon.Overrides
//	fs.Var(&ov, "set", "override a config key: key.path=value (repeatable)")
//
// collects every -set; Config.Apply applies them in order.
type Overrides []string

func (o *Overrides) String() string { return strings.Join(*o, " ") }

// Set checks the form only; Apply checks the key and the value.
func (o *Overrides) Set(s string) error {
	if k, _, ok := strings.Cut(s, "="); !ok || k == "" {
		return fmt.Errorf("want key.path=value, got %q", s)
	}
	*o = append(*o, s)
	return nil
}

// overrideFile names overrides in errors, in place of the file and line.
const overrideFile = "flag -set"

// Apply applies ov over c and validates the result again; the error joins
// every problem, as Parse's does. On error c may be half changed: do not
// use it.
func (c *Config) Apply(ov Overrides) error {
	if c.lines == nil {
		c.lines = map[string]int{}
	}
	if c.flagged == nil {
		c.flagged = map[string]bool{}
	}
	if c.failed == nil {
		c.failed = map[string]bool{}
	}
	d := decoder{file: overrideFile, lines: map[string]int{}, failed: c.failed}
	for _, s := range ov {
		key, value, _ := strings.Cut(s, "=")
		field, err := c.field(key)
		if err != nil {
			d.errs = append(d.errs, &Error{File: overrideFile, Path: key, Msg: err.Error()})
			continue
		}
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
			d.errs = append(d.errs, &Error{File: overrideFile, Path: key, Value: value, Msg: fmt.Sprintf("not YAML: %v", err)})
			continue
		}
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str"} // an empty value is the empty string, not null
		if len(doc.Content) > 0 {
			n = doc.Content[0]
		}
		// Line numbers would be the value's own, not the file's.
		clearLines(n)
		c.flagged[key] = true
		d.decode(n, field, key)
	}
	d.errs = append(d.errs, c.validate()...)
	return errors.Join(d.errs...)
}

func clearLines(n *yaml.Node) {
	n.Line = 0
	for _, c := range n.Content {
		clearLines(c)
	}
}

// field finds the field of key path p ("heartbeat.secondary.local").
func (c *Config) field(p string) (reflect.Value, error) {
	v := reflect.ValueOf(c).Elem()
	done := ""
	for part := range strings.SplitSeq(p, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, fmt.Errorf("%s has no keys inside: set it whole", done)
		}
		var names []string
		found := false
		for i := range v.NumField() {
			tag := v.Type().Field(i).Tag.Get("yaml")
			if tag == "" || tag == "-" {
				continue
			}
			names = append(names, tag)
			if tag == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}, fmt.Errorf("unknown key %q (known: %s)", part, strings.Join(names, ", "))
		}
		done = join(done, part)
	}
	return v, nil
}

// fileOf is the file to name in an error about path: the override's, if a
// flag set it or a key above it.
func (c *Config) fileOf(path string) (string, int) {
	for k := range c.flagged {
		if within(path, k) {
			return overrideFile, 0
		}
	}
	return c.File, c.lines[path]
}

// within reports whether path is key or inside it; every path is inside
// the root, "".
func within(path, key string) bool {
	return key == "" || path == key || strings.HasPrefix(path, key+".") || strings.HasPrefix(path, key+"[")
}

// related reports whether a key of set is path, inside it or above it.
func (c *Config) related(set map[string]bool, path string) bool {
	for k := range set {
		if within(path, k) || within(k, path) {
			return true
		}
	}
	return false
}

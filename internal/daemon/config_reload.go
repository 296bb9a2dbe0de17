package daemon

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// LiveKeys are the keys a SIGHUP applies without a restart; every other
// key needs one. They are what touches neither the pair's identity, the
// sockets the node holds, nor the detector's timers, which both switches
// must agree on:
//   - log.level, log.format: a new slog handler;
//   - virtual_addresses: the active adds and announces the new ones and
//     removes the dropped ones;
//   - metrics.listen: the HTTP listener is cheap to reopen.
var LiveKeys = []string{"log.level", "log.format", "virtual_addresses", "metrics.listen"}

// Reload compares the running configuration with a new one and returns
// the changed key paths that apply live and those that need a restart,
// each sorted. A list (fib.tables, virtual_addresses) counts as one key.
func Reload(old, next *Config) (live, restart []string) {
	a, b := map[string]string{}, map[string]string{}
	flatten(reflect.ValueOf(old).Elem(), "", a)
	flatten(reflect.ValueOf(next).Elem(), "", b)
	for k, v := range b {
		if a[k] == v {
			continue
		}
		if isLive(k) {
			live = append(live, k)
		} else {
			restart = append(restart, k)
		}
	}
	slices.Sort(live)
	slices.Sort(restart)
	return live, restart
}

func isLive(path string) bool {
	for _, k := range LiveKeys {
		if path == k || strings.HasPrefix(path, k+".") {
			return true
		}
	}
	return false
}

// flatten maps every leaf key path of v to its value as text. Every
// config has every leaf, so both maps of Reload hold the same keys.
func flatten(v reflect.Value, path string, out map[string]string) {
	if v.Kind() == reflect.Struct && v.Type().PkgPath() == reflect.TypeFor[Config]().PkgPath() {
		for i := range v.NumField() {
			tag := v.Type().Field(i).Tag.Get("yaml")
			if tag == "" || tag == "-" {
				continue
			}
			flatten(v.Field(i), join(path, tag), out)
		}
		return
	}
	out[path] = fmt.Sprint(v.Interface())
}

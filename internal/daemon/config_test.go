package daemon

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swha/swha/frame"
)

const exampleFile = "../../docs/swhad.example.yaml"

// minimal is the smallest valid file: the three required keys.
const minimal = "node: {id: 1, peer_id: 2}\nha_link: {interface: eth1, auth: none}\n"

func joined(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		return u.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("swhad.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Node.ID, want.Node.PeerID, want.HALink.Interface, want.HALink.Auth = 1, 2, "eth1", AuthNone
	got := *c
	got.File, got.lines, got.flagged, got.failed = "", nil, nil, nil
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", got, *want)
	}
	// The defaults the daemon relies on, spelt out so that a change of
	// Default shows here.
	if c.Heartbeat.Interval != 5*time.Millisecond || c.Node.Priority != 100 || c.FIB.Install != InstallWarm ||
		!c.FIB.Enabled || !slices.Equal(c.FIB.Tables, []Table{TableMain}) || c.FIB.Protocol != 201 ||
		c.Metrics.Listen != "127.0.0.1:9470" || c.Log.Level != LevelInfo || c.Log.Format != FormatText ||
		c.API.Socket != "/run/swhad/swhad.sock" || c.HALink.Auth != AuthNone || c.Heartbeat.Secondary.Enabled() ||
		c.Heartbeat.Beacon.Enabled() {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestEmptyFileNamesRequiredKeys(t *testing.T) {
	_, err := Parse("swhad.yaml", nil)
	errs := joined(err)
	var paths []string
	for _, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("%v is not an *Error", e)
		}
		paths = append(paths, ce.Path)
	}
	slices.Sort(paths)
	if want := []string{"ha_link.auth", "ha_link.interface", "node.id", "node.peer_id"}; !slices.Equal(paths, want) {
		t.Fatalf("errors for %v, want %v: %v", paths, want, err)
	}
}

func TestExampleFile(t *testing.T) {
	c, err := Load(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.ID != 1 || c.HALink.Interface != "eth1" || len(c.VirtualAddresses) != 2 ||
		c.Heartbeat.Secondary.Peer != netip.MustParseAddrPort("10.0.0.2:7777") || c.Heartbeat.Beacon.Listen != "10.0.0.1:7778" {
		t.Fatalf("example parsed as %+v", c)
	}
	// Every key of the schema is in the example, so that it documents
	// them all; and in docs/OPERATIONS.md.
	ops, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	flatten(reflect.ValueOf(c).Elem(), "", keys)
	for k := range keys {
		if _, ok := c.lines[k]; !ok {
			t.Errorf("key %s is not in %s", k, exampleFile)
		}
		if !strings.Contains(string(ops), "`"+k+"`") {
			t.Errorf("key %s is not in docs/OPERATIONS.md", k)
		}
	}
	if len(keys) < 30 {
		t.Fatalf("only %d keys flattened: %v", len(keys), keys)
	}
}

func TestBadKeysAndValues(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string // the whole message of the only error, or a prefix ending in "…"
	}{
		{"unknown top key", minimal + "hearbeat: {interval: 5ms}\n",
			`swhad.yaml:3: hearbeat: unknown key at the top level (known: node, ha_link, heartbeat, fib, virtual_addresses, api, metrics, log)`},
		{"unknown nested key", minimal + "heartbeat:\n  interval: 5ms\n  intervall: 6ms\n",
			`swhad.yaml:5: heartbeat.intervall: unknown key in heartbeat (known: …`},
		{"unknown key in list item", minimal + "virtual_addresses:\n  - interface: eth2\n    address: 10.1.0.1/24\n    mask: 24\n",
			`swhad.yaml:6: virtual_addresses[0].mask: unknown key in virtual_addresses[0] (known: interface, address)`},
		{"duplicate key", minimal + "log: {level: info, level: debug}\n",
			`swhad.yaml:3: log.level: duplicate key (first at line 3)`},
		{"bad duration", minimal + "heartbeat:\n  interval: 5x\n",
			`swhad.yaml:4: heartbeat.interval: "5x": not a duration (e.g. 5ms, 1s)`},
		{"duration without unit", minimal + "heartbeat: {interval: 5}\n",
			`swhad.yaml:3: heartbeat.interval: "5": not a duration (e.g. 5ms, 1s)`},
		{"duration too short", minimal + "heartbeat: {interval: 500us}\n",
			`swhad.yaml:3: heartbeat.interval: "500µs": want from 1ms to 1h`},
		{"negative duration", minimal + "heartbeat: {interval: -5ms}\n",
			`swhad.yaml:3: heartbeat.interval: "-5ms": want from 1ms to 1h`},
		{"multiplier", minimal + "heartbeat: {multiplier: 300}\n",
			`swhad.yaml:3: heartbeat.multiplier: "300": want 0 (the default) to 255`},
		{"not an int", minimal + "heartbeat: {multiplier: four}\n",
			`swhad.yaml:3: heartbeat.multiplier: "four": not an integer`},
		{"bool", minimal + "heartbeat: {real_time: yes}\n",
			`swhad.yaml:3: heartbeat.real_time: "yes": not a boolean (true or false)`},
		{"priority range", "node: {id: 1, peer_id: 2, priority: 256}\nha_link: {interface: eth1, auth: none}\n",
			`swhad.yaml:1: node.priority: "256": not an integer from 0 to 255`},
		{"zero id", "node: {id: 0, peer_id: 2}\nha_link: {interface: eth1, auth: none}\n",
			`swhad.yaml:1: node.id: required, non-zero (each switch of the pair has its own)`},
		{"same ids", "node:\n  id: 2\n  peer_id: 2\nha_link: {interface: eth1, auth: none}\n",
			`swhad.yaml:3: node.peer_id: "2": equals node.id: the two switches need different IDs`},
		{"relative state dir", "node: {id: 1, peer_id: 2, state_dir: var/swhad}\nha_link: {interface: eth1, auth: none}\n",
			`swhad.yaml:1: node.state_dir: "var/swhad": want an absolute path`},
		{"duplicate section", minimal + "ha_link: {interface: eth1, auth: none}\n",
			`swhad.yaml:3: ha_link: duplicate key (first at line 2)`},
		{"bad mac value", "node: {id: 1, peer_id: 2}\nha_link:\n  interface: eth1\n  auth: none\n  peer_mac: 02:zz:00:00:00:01\n",
			`swhad.yaml:5: ha_link.peer_mac: "02:zz:00:00:00:01": not an Ethernet MAC address (e.g. 02:00:00:00:00:02)`},
		{"bad auth", "node: {id: 1, peer_id: 2}\nha_link: {interface: eth1, auth: md5}\n",
			`swhad.yaml:2: ha_link.auth: "md5": want one of none, hmac, aead`},
		{"auth without key file", "node: {id: 1, peer_id: 2}\nha_link: {interface: eth1, auth: hmac}\n",
			`swhad.yaml: ha_link.key_file: required with ha_link.auth hmac`},
		{"no auth", "node: {id: 1, peer_id: 2}\nha_link: {interface: eth1}\n",
			`swhad.yaml: ha_link.auth: required: hmac or aead (with key_file), or none to run the HA link unauthenticated`},
		{"key file without auth", "node: {id: 1, peer_id: 2}\nha_link: {interface: eth1, auth: none, key_file: /etc/swhad/keys}\n",
			`swhad.yaml:2: ha_link.key_file: "/etc/swhad/keys": set but ha_link.auth is none: set auth to hmac or aead, or remove the key file`},
		{"interface name", "node: {id: 1, peer_id: 2}\nha_link: {interface: a-very-long-interface-name, auth: none}\n",
			`swhad.yaml:2: ha_link.interface: "a-very-long-interface-name": not an interface name (at most 15 characters, no '/', ':' or spaces)`},
		{"bad addrport", minimal + "heartbeat:\n  secondary: {local: 10.0.0.1, peer: 10.0.0.2:7777}\n",
			`swhad.yaml:4: heartbeat.secondary.local: "10.0.0.1": not an IP address and port (e.g. 10.0.0.1:7777, [fd00::1]:7777)`},
		{"half a secondary", minimal + "heartbeat:\n  secondary:\n    local: 10.0.0.1:7777\n",
			`swhad.yaml:5: heartbeat.secondary: set both local and peer, or neither`},
		{"mixed families", minimal + "heartbeat:\n  secondary: {local: 10.0.0.1:7777, peer: \"[fd00::2]:7777\"}\n",
			`swhad.yaml:4: heartbeat.secondary.peer: "[fd00::2]:7777": not the same address family as heartbeat.secondary.local`},
		{"half a beacon", minimal + "heartbeat:\n  beacon: {peer: 10.0.0.2:7778}\n",
			`swhad.yaml:4: heartbeat.beacon: set both listen and peer, or neither`},
		{"beacon listen by name", minimal + "heartbeat:\n  beacon: {listen: localhost:7778, peer: 10.0.0.2:7778}\n",
			`swhad.yaml:4: heartbeat.beacon.listen: "localhost:7778": the host is not an IP address (names are not resolved)`},
		{"bad table", minimal + "fib:\n  tables: [main, mian]\n",
			`swhad.yaml:4: fib.tables[1]: "mian": not a table: want all, main, local, default or a number from 1 to 4294967295`},
		{"all not alone", minimal + "fib:\n  tables: [all, 100]\n",
			`swhad.yaml:4: fib.tables: all must stand alone`},
		{"table twice", minimal + "fib:\n  tables: [main, 254]\n",
			`swhad.yaml:4: fib.tables[1]: "main": listed twice (also fib.tables[0])`},
		{"tables not a list", minimal + "fib: {tables: main}\n",
			`swhad.yaml:3: fib.tables: "main": want a list, got a single value`},
		{"bad family", minimal + "fib: {families: [ipv4, inet6]}\n",
			`swhad.yaml:3: fib.families[1]: "inet6": want one of ipv4, ipv6`},
		{"no families", minimal + "fib: {families: []}\n",
			`swhad.yaml:3: fib.families: empty: name ipv4, ipv6 or both`},
		{"bad install", minimal + "fib: {install: cold}\n",
			`swhad.yaml:3: fib.install: "cold": want one of warm, promotion`},
		{"kernel protocol", minimal + "fib: {protocol: 2}\n",
			`swhad.yaml:3: fib.protocol: "2": 0 to 4 are the kernel's own (unspec, redirect, kernel, boot, static): want 5 to 255`},
		{"fib not a mapping", minimal + "fib: true\n",
			`swhad.yaml:3: fib: "true": want a mapping, got a single value`},
		{"bad prefix", minimal + "virtual_addresses:\n  - {interface: eth2, address: 10.1.0.300/24}\n",
			`swhad.yaml:4: virtual_addresses[0].address: "10.1.0.300/24": not an address with prefix length (e.g. 10.1.0.1/24)`},
		{"virtual address on the HA link", minimal + "virtual_addresses:\n  - {interface: eth1, address: 10.1.0.1/24}\n",
			`swhad.yaml:4: virtual_addresses[0].interface: "eth1": is the HA link: a virtual address belongs on a served interface`},
		{"virtual address twice", minimal + "virtual_addresses:\n  - {interface: eth2, address: 10.1.0.1/24}\n  - {interface: eth3, address: 10.1.0.1/16}\n",
			`swhad.yaml:5: virtual_addresses[1].address: "10.1.0.1/16": listed twice (also virtual_addresses[0])`},
		{"virtual address missing", minimal + "virtual_addresses:\n  - {interface: eth2}\n",
			`swhad.yaml: virtual_addresses[0].address: required (e.g. 10.1.0.1/24)`},
		{"relative socket", minimal + "api: {socket: swhad.sock}\n",
			`swhad.yaml:3: api.socket: "swhad.sock": want an absolute path`},
		{"bad metrics port", minimal + "metrics: {listen: \"127.0.0.1:99999\"}\n",
			`swhad.yaml:3: metrics.listen: "127.0.0.1:99999": the port is not a number from 1 to 65535`},
		{"metrics without port", minimal + "metrics: {listen: 127.0.0.1}\n",
			`swhad.yaml:3: metrics.listen: "127.0.0.1": not host:port (e.g. 127.0.0.1:9470, [::1]:9470, :9470)`},
		{"bad level", minimal + "log:\n  level: verbose\n",
			`swhad.yaml:4: log.level: "verbose": want one of debug, info, warn, error`},
		{"bad format", minimal + "log: {format: xml}\n",
			`swhad.yaml:3: log.format: "xml": want one of text, json`},
		{"not a mapping at top", "- node\n",
			`swhad.yaml:1: want a mapping, got a list`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("swhad.yaml", []byte(tc.yaml))
			errs := joined(err)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1: %v", len(errs), err)
			}
			got := errs[0].Error()
			if p, ok := strings.CutSuffix(tc.want, "…"); ok {
				if !strings.HasPrefix(got, p) {
					t.Fatalf("got  %s\nwant %s", got, tc.want)
				}
			} else if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Every problem is reported at once, not the first only.
func TestAllErrorsReported(t *testing.T) {
	data := `node: {id: 1, peer_id: 1}
ha_link: {interface: eth1, auth: md5}
heartbeat: {interval: 5x, multiplier: -1, colour: blue}
log: {level: loud}
`
	_, err := Parse("swhad.yaml", []byte(data))
	want := []string{
		`swhad.yaml:1: node.peer_id: "1": equals node.id`,
		`swhad.yaml:2: ha_link.auth: "md5"`,
		`swhad.yaml:3: heartbeat.interval: "5x": not a duration`,
		`swhad.yaml:3: heartbeat.colour: unknown key`,
		`swhad.yaml:3: heartbeat.multiplier: "-1": want 0`,
		`swhad.yaml:4: log.level: "loud"`,
	}
	errs := joined(err)
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d: %v", len(errs), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := Parse("swhad.yaml", []byte("node: {id: 1\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "swhad.yaml: ") || !strings.Contains(err.Error(), "line") {
		t.Fatalf("syntax error: %v", err)
	}
}

func TestAnchorsAndNull(t *testing.T) {
	data := minimal + `
heartbeat:
  secondary: &mgmt {local: "10.0.0.1:7777", peer: "10.0.0.2:7777"}
  interval:
log: {level: debug}
`
	c, err := Parse("swhad.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Heartbeat.Secondary.Enabled() || c.Heartbeat.Interval != 5*time.Millisecond || c.Log.Level != LevelDebug {
		t.Fatalf("parsed %+v", c.Heartbeat)
	}
}

func TestTables(t *testing.T) {
	_, err := Parse("swhad.yaml", []byte(minimal+"fib: {tables: [main, local, default, 100, 0x10]}\n"))
	if err == nil {
		t.Fatal("0x10 accepted as a table: tables are decimal")
	}
	c, err := Parse("swhad.yaml", []byte(minimal+"fib: {tables: [main, local, default, 100]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.FIB.Tables, []Table{254, 255, 253, 100}) {
		t.Fatalf("tables %v", c.FIB.Tables)
	}
	if c.FIB.Tables[0].String() != "main" || Table(100).String() != "100" {
		t.Fatal("table names")
	}
	c, err = Parse("swhad.yaml", []byte(minimal+"fib: {tables: [all]}\n"))
	if err != nil || !slices.Equal(c.FIB.Tables, []Table{AllTables}) {
		t.Fatalf("all: %v %v", c, err)
	}
}

func TestOverrides(t *testing.T) {
	fs := flag.NewFlagSet("swhad", flag.ContinueOnError)
	var ov Overrides
	fs.Var(&ov, "set", "")
	if err := fs.Parse([]string{"-set", "node.id=3", "-set", "heartbeat.interval=10ms",
		"-set", "fib.tables=[main, 100]", "-set", "metrics.listen=",
		"-set", "virtual_addresses=[{interface: eth2, address: 10.1.0.1/24}]"}); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"-set", "novalue"}); err == nil {
		t.Fatal("-set without = accepted")
	}
	c, err := Load(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(ov); err != nil {
		t.Fatal(err)
	}
	if c.Node.ID != 3 || c.Heartbeat.Interval != 10*time.Millisecond || !slices.Equal(c.FIB.Tables, []Table{254, 100}) ||
		c.Metrics.Listen != "" || len(c.VirtualAddresses) != 1 || c.Node.PeerID != 2 {
		t.Fatalf("after overrides: %+v", c)
	}

	for _, tc := range []struct{ set, want string }{
		{"heartbeat.interval=5x", `flag -set: heartbeat.interval: "5x": not a duration (e.g. 5ms, 1s)`},
		{"heartbeat.intervall=5ms", `flag -set: heartbeat.intervall: unknown key "intervall" (known: interval, multiplier, real_time, secondary, beacon, negotiate_timeout, promote_unsynced)`},
		{"node.id.x=1", `flag -set: node.id.x: node.id has no keys inside: set it whole`},
		// A value valid alone but not with the file: the error names the flag.
		{"node.id=2", `flag -set: node.id: "2": equals node.peer_id: the two switches need different IDs`},
		{"node.priority=[1", `flag -set: node.priority: "[1": not YAML: …`},
	} {
		c, err := Load(exampleFile)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Apply(Overrides{tc.set})
		errs := joined(err)
		if len(errs) != 1 {
			t.Fatalf("%s: %d errors: %v", tc.set, len(errs), err)
		}
		got := errs[0].Error()
		if p, ok := strings.CutSuffix(tc.want, "…"); ok {
			if !strings.HasPrefix(got, p) {
				t.Errorf("%s:\n got %s\nwant %s", tc.set, got, tc.want)
			}
		} else if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.set, got, tc.want)
		}
	}
}

func TestReload(t *testing.T) {
	old, err := Load(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	same, _ := Load(exampleFile)
	if live, restart := Reload(old, same); live != nil || restart != nil {
		t.Fatalf("unchanged file: live %v restart %v", live, restart)
	}
	next, _ := Load(exampleFile)
	if err := next.Apply(Overrides{"log.level=debug", "log.format=json", "fib.install=promotion",
		"virtual_addresses=[]", "metrics.listen=:9471",
		"heartbeat.interval=10ms", "node.priority=1", "fib.tables=[all]", "ha_link.peer_mac=02:00:00:00:00:02",
		"heartbeat.secondary.local=10.0.0.9:7777"}); err != nil {
		t.Fatal(err)
	}
	live, restart := Reload(old, next)
	if want := []string{"log.format", "log.level", "metrics.listen", "virtual_addresses"}; !slices.Equal(live, want) {
		t.Errorf("live %v, want %v", live, want)
	}
	if want := []string{"fib.install", "fib.tables", "ha_link.peer_mac", "heartbeat.interval", "heartbeat.secondary.local", "node.priority"}; !slices.Equal(restart, want) {
		t.Errorf("restart %v, want %v", restart, want)
	}
}

func writeKeys(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func keyConfig(t *testing.T, auth AuthMode, file string, send uint32) *Config {
	t.Helper()
	c, err := Parse("swhad.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	c.HALink.Auth, c.HALink.KeyFile, c.HALink.SendKeyID = auth, file, send
	return c
}

const (
	secret1 = "00112233445566778899aabbccddeeff"
	secret2 = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
)

func TestLoadKeyring(t *testing.T) {
	if kr, err := LoadKeyring(keyConfig(t, AuthNone, "", 0)); kr != nil || err != nil {
		t.Fatalf("auth none: %v %v", kr, err)
	}
	one := writeKeys(t, "# a comment\n\n7 "+secret1+"   # trailing comment\n", 0o600)
	kr, err := LoadKeyring(keyConfig(t, AuthHMAC, one, 0))
	if err != nil {
		t.Fatal(err)
	}
	if kr.Mode() != frame.ModeHMAC || kr.SendKeyID() != 7 {
		t.Fatalf("ring mode %v send %d", kr.Mode(), kr.SendKeyID())
	}
	two := writeKeys(t, "1 "+secret1+" node=1\n2 "+secret2+" node=2\n", 0o600)
	kr, err = LoadKeyring(keyConfig(t, AuthAEAD, two, 1))
	if err != nil {
		t.Fatal(err)
	}
	if n, bound := kr.NodeOf(2); kr.Mode() != frame.ModeAEAD || !bound || n != 2 || !slices.Equal(kr.KeyIDs(), []uint32{1, 2}) {
		t.Fatalf("ring %v %v", kr.Mode(), kr.KeyIDs())
	}

	for _, tc := range []struct {
		name, text string
		mode       os.FileMode
		send       uint32
		want       string
	}{
		{"readable by others", "1 " + secret1 + "\n", 0o644, 0, "lets group or others read the keys: chmod 600 it"},
		{"two keys no send", "1 " + secret1 + "\n2 " + secret2 + "\n", 0o600, 0, "2 keys: set ha_link.send_key_id"},
		{"send not in file", "1 " + secret1 + "\n", 0o600, 9, "ha_link.send_key_id 9 is not in the file"},
		{"short", "1 00112233\n", 0o600, 0, ":1: key 1: 4 bytes, want at least 16"},
		{"not hex", "# keys\n1 0011zz\n", 0o600, 0, ":2: key 1: the secret is not hex"},
		{"bad id", "x " + secret1 + "\n", 0o600, 0, `:1: key ID "x": want a number`},
		{"dup", "1 " + secret1 + "\n1 " + secret2 + "\n", 0o600, 1, ":2: key 1 listed twice (first at line 1)"},
		{"foreign node", "1 " + secret1 + " node=5\n", 0o600, 0, ":1: key 1: node=5 is neither node.id (1) nor node.peer_id (2)"},
		{"send bound to peer", "1 " + secret1 + " node=2\n", 0o600, 0, "send key 1 is bound to node 2, not to this node"},
		{"empty", "# nothing\n", 0o600, 0, ": no keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadKeyring(keyConfig(t, AuthHMAC, writeKeys(t, tc.text, tc.mode), tc.send))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret1) || strings.Contains(err.Error(), secret2) {
				t.Fatalf("the error quotes a secret: %v", err)
			}
		})
	}
}

// Parse never panics, whatever the YAML: the decoder walks arbitrary node
// shapes (aliases, lists where mappings belong) by reflection.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(exampleFile)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{string(example), minimal, "", "- a\n", "node: &a {id: *a}\n",
		"fib: {tables: [{a: 1}]}\n", "virtual_addresses: {interface: eth2}\n", "heartbeat: [1, 2]\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		c, err := Parse("f.yaml", []byte(data))
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", c, err)
		}
	})
}

// Package daemon assembles swhad: its configuration (this file), its
// metrics (metrics.go) and, in run.go, the daemon itself.
//
// The configuration is YAML, decoded through yaml.Node so that every error
// names the key path, the value and the line: unknown keys are errors, not
// warnings, because a misspelt key that is silently skipped leaves a switch
// running on a default nobody chose. docs/swhad.example.yaml documents every
// key; docs/OPERATIONS.md lists them.
package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/swha/swha/heartbeat"
)

// Config is swhad's configuration. Parse and Load return one with every
// default filled in and every value validated.
type Config struct {
	Node             NodeConfig       `yaml:"node"`
	HALink           HALinkConfig     `yaml:"ha_link"`
	Heartbeat        HeartbeatConfig  `yaml:"heartbeat"`
	FIB              FIBConfig        `yaml:"fib"`
	VirtualAddresses []VirtualAddress `yaml:"virtual_addresses"`
	API              APIConfig        `yaml:"api"`
	Metrics          MetricsConfig    `yaml:"metrics"`
	Log              LogConfig        `yaml:"log"`

	// File is the name the configuration was parsed under; errors of
	// Apply and of the key file name it too.
	File string `yaml:"-"`
	// lines maps a key path ("heartbeat.interval", "fib.tables[1]") to
	// the line its value is on, for the errors of validation.
	lines map[string]int
	// flagged holds the key paths Apply set; failed those that did not
	// decode, whose validation would only repeat the error.
	flagged, failed map[string]bool
}

// NodeConfig is this switch's identity in the pair.
type NodeConfig struct {
	// ID and PeerID are required: a default would give both switches the
	// same ID, and two nodes that each refuse the other as the wrong peer
	// both go active.
	ID       uint64 `yaml:"id"`
	PeerID   uint64 `yaml:"peer_id"`
	Priority uint8  `yaml:"priority"`
	StateDir string `yaml:"state_dir"`
	// Checkpoint, if set, is an absolute path (swha.Config.Checkpoint).
	Checkpoint string `yaml:"checkpoint"`
}

// HALinkConfig is the link that carries replication and heartbeats.
type HALinkConfig struct {
	Interface string `yaml:"interface"`
	// PeerMAC, if set, is the peer's MAC; unset, the link learns it.
	PeerMAC MAC      `yaml:"peer_mac"`
	Auth    AuthMode `yaml:"auth"`
	// KeyFile holds the keys for hmac and aead (see LoadKeyring).
	KeyFile string `yaml:"key_file"`
	// SendKeyID is the key that signs; 0 means the file's only key.
	SendKeyID uint32 `yaml:"send_key_id"`
}

// HeartbeatConfig tunes failure detection.
type HeartbeatConfig struct {
	Interval time.Duration `yaml:"interval"`
	// Multiplier 0 means the library's default (4, or the beacon's when a
	// beacon is configured).
	Multiplier int             `yaml:"multiplier"`
	RealTime   bool            `yaml:"real_time"`
	Secondary  SecondaryConfig `yaml:"secondary"`
	Beacon     BeaconConfig    `yaml:"beacon"`
	// NegotiateTimeout is how long a starting node listens for its peer
	// before it goes active alone; 0 means the library's default.
	NegotiateTimeout time.Duration `yaml:"negotiate_timeout"`
	// PromoteUnsynced lets a standby that is not hot promote (it would
	// lose what it lacks).
	PromoteUnsynced bool `yaml:"promote_unsynced"`
}

// SecondaryConfig is the optional second liveness path over UDP (both
// addresses, or neither).
type SecondaryConfig struct {
	Local netip.AddrPort `yaml:"local"`
	Peer  netip.AddrPort `yaml:"peer"`
}

// Enabled reports whether the secondary path is configured.
func (s SecondaryConfig) Enabled() bool { return s.Local.IsValid() }

// BeaconConfig is the optional death beacon over TCP (both, or neither).
type BeaconConfig struct {
	Listen ListenAddr     `yaml:"listen"`
	Peer   netip.AddrPort `yaml:"peer"`
}

// Enabled reports whether the beacon is configured.
func (b BeaconConfig) Enabled() bool { return b.Listen != "" }

// FIBConfig configures the replication of the kernel's routes and
// neighbours.
type FIBConfig struct {
	Enabled bool `yaml:"enabled"`
	// Tables are routing table IDs; AllTables alone means every table.
	Tables     []Table     `yaml:"tables"`
	Families   []Family    `yaml:"families"`
	Neighbours bool        `yaml:"neighbours"`
	Install    InstallMode `yaml:"install"`
	// Protocol is the rtm_protocol of the routes swhad installs, by which
	// it tells them from the others at reconciliation.
	Protocol uint8 `yaml:"protocol"`
}

// VirtualAddress is an address that moves to the active.
type VirtualAddress struct {
	Interface string       `yaml:"interface"`
	Address   netip.Prefix `yaml:"address"`
}

// APIConfig is the local API's Unix socket.
type APIConfig struct {
	Socket string `yaml:"socket"`
	// Group, if set, owns the socket (mode 0660); unset, root's group.
	Group string `yaml:"group"`
}

// MetricsConfig is the Prometheus endpoint.
type MetricsConfig struct {
	// Listen is host:port for /metrics; empty turns it off.
	Listen ListenAddr `yaml:"listen"`
}

// LogConfig configures the slog handler.
type LogConfig struct {
	Level  LogLevel  `yaml:"level"`
	Format LogFormat `yaml:"format"`
}

// Defaults. DefaultProtocol is a value of the rtm_protocol range that
// iproute2's rt_protos leaves unassigned.
const (
	DefaultPriority      = 100
	DefaultStateDir      = "/var/lib/swhad"
	DefaultSocket        = "/run/swhad/swhad.sock"
	DefaultMetricsListen = "127.0.0.1:9470"
	DefaultProtocol      = 201
)

// Default returns the configuration of an empty file: everything but
// node.id, node.peer_id and ha_link.interface, which have no sensible
// default and which Parse requires.
func Default() *Config {
	return &Config{
		Node:      NodeConfig{Priority: DefaultPriority, StateDir: DefaultStateDir},
		Heartbeat: HeartbeatConfig{Interval: heartbeat.DefaultInterval},
		FIB: FIBConfig{Enabled: true, Tables: []Table{TableMain}, Families: []Family{IPv4, IPv6},
			Neighbours: true, Install: InstallWarm, Protocol: DefaultProtocol},
		API:     APIConfig{Socket: DefaultSocket},
		Metrics: MetricsConfig{Listen: DefaultMetricsListen},
		Log:     LogConfig{Level: LevelInfo, Format: FormatText},
	}
}

// Load reads and parses the file at path (Parse). It does not read the key
// file: LoadKeyring does, when the daemon starts.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes data, named name in errors, over the defaults and
// validates it. The error joins every problem found (errors.Join), each an
// *Error naming the file, line, key path and value.
func Parse(name string, data []byte) (*Config, error) {
	c := Default()
	c.File = name
	c.lines = map[string]int{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c.failed = map[string]bool{}
	d := decoder{file: name, lines: c.lines, failed: c.failed}
	if len(doc.Content) > 0 {
		d.decode(doc.Content[0], reflect.ValueOf(c).Elem(), "")
	}
	d.errs = append(d.errs, c.validate()...)
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return c, nil
}

// Error is one problem of a configuration.
type Error struct {
	File  string
	Line  int    // 0 if the key is absent (a required one) or set by a flag
	Path  string // the key path: "heartbeat.interval", "fib.tables[1]"
	Value string // the value as written, if any
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Value != "" {
		fmt.Fprintf(&b, "%q: ", e.Value)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// scalar is a type that parses itself from a YAML scalar; the error is the
// reason only ("not a duration"): the decoder adds file, line, key, value.
type scalar interface{ parseScalar(s string) error }

type decoder struct {
	file   string
	lines  map[string]int
	failed map[string]bool
	errs   []error
}

func (d *decoder) fail(n *yaml.Node, path, value, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.failed[path] = true
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Path: path, Value: value, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var kindNames = map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: "a single value"}

// decode sets v from n. An explicit null (key with no value) keeps the
// default.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.lines[path] = n.Line
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if s, ok := v.Addr().Interface().(scalar); ok {
		d.decodeScalar(n, path, s.parseScalar)
		return
	}
	switch v.Type() {
	case reflect.TypeFor[time.Duration]():
		d.decodeScalar(n, path, func(s string) error {
			t, err := time.ParseDuration(s)
			if err != nil {
				return errors.New("not a duration (e.g. 5ms, 1s)")
			}
			v.SetInt(int64(t))
			return nil
		})
		return
	case reflect.TypeFor[netip.AddrPort]():
		d.decodeScalar(n, path, func(s string) error {
			if s == "" {
				v.Set(reflect.ValueOf(netip.AddrPort{}))
				return nil
			}
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				return errors.New("not an IP address and port (e.g. 10.0.0.1:7777, [fd00::1]:7777)")
			}
			v.Set(reflect.ValueOf(ap))
			return nil
		})
		return
	case reflect.TypeFor[netip.Prefix]():
		d.decodeScalar(n, path, func(s string) error {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return errors.New("not an address with prefix length (e.g. 10.1.0.1/24)")
			}
			v.Set(reflect.ValueOf(p))
			return nil
		})
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, scalarValue(n), "want a list, got %s", kindNames[n.Kind])
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			d.decode(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		d.decodeScalar(n, path, func(s string) error { v.SetString(s); return nil })
	case reflect.Bool:
		d.decodeScalar(n, path, func(s string) error {
			// YAML 1.1's yes/no/on/off are refused: "no" as a country code
			// or an interface name should not turn into false.
			switch s {
			case "true":
				v.SetBool(true)
			case "false":
				v.SetBool(false)
			default:
				return errors.New("not a boolean (true or false)")
			}
			return nil
		})
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.decodeScalar(n, path, func(s string) error {
			u, err := strconv.ParseUint(s, 0, v.Type().Bits())
			if err != nil {
				return fmt.Errorf("not an integer from 0 to %d", uint64(1)<<v.Type().Bits()-1)
			}
			v.SetUint(u)
			return nil
		})
	case reflect.Int, reflect.Int64:
		d.decodeScalar(n, path, func(s string) error {
			i, err := strconv.ParseInt(s, 0, 64)
			if err != nil {
				return errors.New("not an integer")
			}
			v.SetInt(i)
			return nil
		})
	default:
		panic(fmt.Sprintf("config: %s: no decoder for %s", path, v.Type()))
	}
}

func scalarValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

func (d *decoder) decodeScalar(n *yaml.Node, path string, parse func(string) error) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "", "want a single value, got %s", kindNames[n.Kind])
		return
	}
	if err := parse(n.Value); err != nil {
		d.fail(n, path, n.Value, "%v", err)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, scalarValue(n), "want a mapping, got %s", kindNames[n.Kind])
		return
	}
	fields := map[string]int{}
	var names []string
	for i := range v.NumField() {
		tag := v.Type().Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = i
		names = append(names, tag)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.fail(k, kp, "", "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			where := "at the top level"
			if path != "" {
				where = "in " + path
			}
			d.fail(k, kp, "", "unknown key %s (known: %s)", where, strings.Join(names, ", "))
			continue
		}
		d.decode(val, v.Field(f), kp)
	}
}

// validate checks what the types alone do not: ranges, required keys and
// keys that depend on each other.
func (c *Config) validate() []error {
	var errs []error
	bad := func(path string, value any, format string, args ...any) {
		if c.related(c.failed, path) {
			return
		}
		file, line := c.fileOf(path)
		e := &Error{File: file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)}
		if value != nil {
			e.Value = fmt.Sprint(value)
		}
		errs = append(errs, e)
	}
	n := &c.Node
	switch {
	case n.ID == 0:
		bad("node.id", nil, "required, non-zero (each switch of the pair has its own)")
	case n.ID == n.PeerID && c.flagged["node.id"]:
		bad("node.id", n.ID, "equals node.peer_id: the two switches need different IDs")
	case n.ID == n.PeerID:
		bad("node.peer_id", n.PeerID, "equals node.id: the two switches need different IDs")
	}
	if n.PeerID == 0 {
		bad("node.peer_id", nil, "required, non-zero (the other switch's node.id)")
	}
	if !filepath.IsAbs(n.StateDir) {
		bad("node.state_dir", n.StateDir, "want an absolute path")
	}
	if n.Checkpoint != "" && !filepath.IsAbs(n.Checkpoint) {
		bad("node.checkpoint", n.Checkpoint, "want an absolute path")
	}

	l := &c.HALink
	if l.Interface == "" {
		bad("ha_link.interface", nil, "required: the interface of the HA link")
	} else if err := checkIfname(l.Interface); err != nil {
		bad("ha_link.interface", l.Interface, "%v", err)
	}
	switch {
	case l.Auth == "":
		// No default: a link that anyone on it can speak on must be chosen,
		// not inherited (issue 12).
		bad("ha_link.auth", nil, "required: hmac or aead (with key_file), or none to run the HA link unauthenticated")
	case l.Auth == AuthNone && l.KeyFile != "":
		bad("ha_link.key_file", l.KeyFile, "set but ha_link.auth is none: set auth to hmac or aead, or remove the key file")
	case l.Auth != AuthNone && l.KeyFile == "":
		bad("ha_link.key_file", nil, "required with ha_link.auth %s", l.Auth)
	case l.KeyFile != "" && !filepath.IsAbs(l.KeyFile):
		bad("ha_link.key_file", l.KeyFile, "want an absolute path")
	}
	if l.Auth == AuthNone && l.SendKeyID != 0 {
		bad("ha_link.send_key_id", l.SendKeyID, "set but ha_link.auth is none")
	}

	h := &c.Heartbeat
	if h.Interval < heartbeat.MinInterval || h.Interval > time.Hour {
		bad("heartbeat.interval", h.Interval, "want from %v to 1h", heartbeat.MinInterval)
	}
	if h.Multiplier < 0 || h.Multiplier > 255 {
		bad("heartbeat.multiplier", h.Multiplier, "want 0 (the default) to 255")
	}
	if h.NegotiateTimeout != 0 && h.NegotiateTimeout < time.Millisecond {
		bad("heartbeat.negotiate_timeout", h.NegotiateTimeout, "want 0 (the default) or at least 1ms")
	}
	if h.Secondary.Local.IsValid() != h.Secondary.Peer.IsValid() {
		bad("heartbeat.secondary", nil, "set both local and peer, or neither")
	} else if h.Secondary.Enabled() && h.Secondary.Local.Addr().Is4() != h.Secondary.Peer.Addr().Is4() {
		bad("heartbeat.secondary.peer", h.Secondary.Peer, "not the same address family as heartbeat.secondary.local")
	}
	if (h.Beacon.Listen != "") != h.Beacon.Peer.IsValid() {
		bad("heartbeat.beacon", nil, "set both listen and peer, or neither")
	}

	f := &c.FIB
	if f.Enabled {
		if len(f.Tables) == 0 {
			bad("fib.tables", nil, "empty: name at least one table, or all")
		}
		if slices.Contains(f.Tables, AllTables) && len(f.Tables) > 1 {
			bad("fib.tables", nil, "all must stand alone")
		}
		if len(f.Families) == 0 {
			bad("fib.families", nil, "empty: name ipv4, ipv6 or both")
		}
	}
	for i, t := range f.Tables {
		if j := slices.Index(f.Tables[:i], t); j >= 0 {
			bad(fmt.Sprintf("fib.tables[%d]", i), t, "listed twice (also fib.tables[%d])", j)
		}
	}
	for i, fam := range f.Families {
		if j := slices.Index(f.Families[:i], fam); j >= 0 {
			bad(fmt.Sprintf("fib.families[%d]", i), fam, "listed twice (also fib.families[%d])", j)
		}
	}
	if f.Protocol < 5 {
		bad("fib.protocol", f.Protocol, "0 to 4 are the kernel's own (unspec, redirect, kernel, boot, static): want 5 to 255")
	}

	seen := map[netip.Addr]int{}
	for i, va := range c.VirtualAddresses {
		p := fmt.Sprintf("virtual_addresses[%d]", i)
		if va.Interface == "" {
			bad(p+".interface", nil, "required")
		} else if err := checkIfname(va.Interface); err != nil {
			bad(p+".interface", va.Interface, "%v", err)
		} else if va.Interface == l.Interface {
			bad(p+".interface", va.Interface, "is the HA link: a virtual address belongs on a served interface")
		}
		if !va.Address.IsValid() {
			bad(p+".address", nil, "required (e.g. 10.1.0.1/24)")
			continue
		}
		if j, dup := seen[va.Address.Addr()]; dup {
			bad(p+".address", va.Address, "listed twice (also virtual_addresses[%d])", j)
		}
		seen[va.Address.Addr()] = i
	}

	if !filepath.IsAbs(c.API.Socket) {
		bad("api.socket", c.API.Socket, "want an absolute path")
	}
	return errs
}

func checkIfname(s string) error {
	// IFNAMSIZ is 16 with the terminating NUL.
	if len(s) > 15 || strings.ContainsAny(s, "/ \t:") {
		return errors.New("not an interface name (at most 15 characters, no '/', ':' or spaces)")
	}
	return nil
}

// AuthMode is ha_link.auth.
type AuthMode string

// Authentication modes of the HA link's frames.
const (
	AuthNone AuthMode = "none" // CRC only: for a direct cable both switches own
	AuthHMAC AuthMode = "hmac" // signed (HMAC-SHA256), payload in the clear
	AuthAEAD AuthMode = "aead" // signed and encrypted (AES-256-GCM)
)

func (m *AuthMode) parseScalar(s string) error {
	return parseEnum(m, s, AuthNone, AuthHMAC, AuthAEAD)
}

// InstallMode is fib.install.
type InstallMode string

// When the standby installs the mirrored routes into its kernel.
const (
	InstallWarm      InstallMode = "warm"      // as they arrive: forwarding-ready at promotion
	InstallPromotion InstallMode = "promotion" // only at promotion: the standby's kernel stays its own
)

func (m *InstallMode) parseScalar(s string) error {
	return parseEnum(m, s, InstallWarm, InstallPromotion)
}

// Family is an entry of fib.families.
type Family string

// Address families.
const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

func (f *Family) parseScalar(s string) error { return parseEnum(f, s, IPv4, IPv6) }

// LogLevel is log.level.
type LogLevel string

// Log levels (log/slog's).
const (
	LevelDebug LogLevel = "debug"
	LevelInfo  LogLevel = "info"
	LevelWarn  LogLevel = "warn"
	LevelError LogLevel = "error"
)

func (l *LogLevel) parseScalar(s string) error {
	return parseEnum(l, s, LevelDebug, LevelInfo, LevelWarn, LevelError)
}

// LogFormat is log.format.
type LogFormat string

// Log formats: slog's TextHandler and JSONHandler.
const (
	FormatText LogFormat = "text"
	FormatJSON LogFormat = "json"
)

func (f *LogFormat) parseScalar(s string) error { return parseEnum(f, s, FormatText, FormatJSON) }

func parseEnum[T ~string](dst *T, s string, values ...T) error {
	if slices.Contains(values, T(s)) {
		*dst = T(s)
		return nil
	}
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = string(v)
	}
	return fmt.Errorf("want one of %s", strings.Join(names, ", "))
}

// Table is a routing table ID (fib.tables): a number or one of the names
// of iproute2's rt_tables.
type Table uint32

// Named tables; AllTables (written "all") means every table.
const (
	AllTables    Table = 0
	TableDefault Table = 253
	TableMain    Table = 254
	TableLocal   Table = 255
)

var tableNames = map[string]Table{"all": AllTables, "default": TableDefault, "main": TableMain, "local": TableLocal}

func (t *Table) parseScalar(s string) error {
	if v, ok := tableNames[s]; ok {
		*t = v
		return nil
	}
	u, err := strconv.ParseUint(s, 10, 32)
	if err != nil || u == 0 {
		return errors.New("not a table: want all, main, local, default or a number from 1 to 4294967295")
	}
	*t = Table(u)
	return nil
}

func (t Table) String() string {
	for name, v := range tableNames {
		if v == t {
			return name
		}
	}
	return strconv.FormatUint(uint64(t), 10)
}

// MAC is a hardware address (ha_link.peer_mac); nil when unset.
type MAC net.HardwareAddr

func (m *MAC) parseScalar(s string) error {
	if s == "" {
		*m = nil
		return nil
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return errors.New("not an Ethernet MAC address (e.g. 02:00:00:00:00:02)")
	}
	*m = MAC(hw)
	return nil
}

func (m MAC) String() string { return net.HardwareAddr(m).String() }

// ListenAddr is host:port to listen on; the host may be empty (every
// address) or an IP literal, never a name: a daemon that must start when
// the network is half up should not wait for DNS.
type ListenAddr string

func (a *ListenAddr) parseScalar(s string) error {
	if s == "" {
		*a = ""
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("not host:port (e.g. 127.0.0.1:9470, [::1]:9470, :9470)")
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return errors.New("the host is not an IP address (names are not resolved)")
		}
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return errors.New("the port is not a number from 1 to 65535")
	}
	*a = ListenAddr(s)
	return nil
}

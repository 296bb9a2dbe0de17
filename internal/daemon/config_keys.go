package daemon

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/swha/swha/frame"
)

// LoadKeyring reads ha_link.key_file and returns the HA link's key ring,
// or nil with ha_link.auth none.
//
// The key file holds one key a line, '#' starts a comment:
//
//	# id  secret (hex, at least 16 bytes)              [node=ID]
//	1     8f3b...e1
//	2     0c77...9a                                     node=2
//
// A key with node=ID is bound to that node (frame.BindNode): only frames
// from that node ID may be signed with it, so per-node keys keep one
// switch's key from speaking as the other. The key that signs is
// ha_link.send_key_id, or the only key of the file. The file must not be
// readable by group or others (chmod 600), as ssh demands of its keys: a
// key others read is no key.
//
// To rotate: add the new key to both switches' files, restart each
// (ha_link changes need a restart, see Reload), set send_key_id to the new
// key on both, restart again, then drop the old key.
func LoadKeyring(c *Config) (*frame.Keyring, error) {
	l := &c.HALink
	if l.Auth == AuthNone {
		return nil, nil
	}
	name := l.KeyFile
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("ha_link.key_file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("ha_link.key_file: %s: mode %04o lets group or others read the keys: chmod 600 it", name, fi.Mode().Perm())
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("ha_link.key_file: %w", err)
	}
	keys, bind, err := parseKeyFile(name, data, c.Node.ID, c.Node.PeerID)
	if err != nil {
		return nil, err
	}
	send := l.SendKeyID
	if send == 0 {
		if len(keys) != 1 {
			return nil, fmt.Errorf("%s: %d keys: set ha_link.send_key_id to the one that signs", name, len(keys))
		}
		for id := range keys {
			send = id
		}
	} else if _, ok := keys[send]; !ok {
		return nil, fmt.Errorf("%s: ha_link.send_key_id %d is not in the file", name, send)
	}
	if node, ok := bind[send]; ok && node != c.Node.ID {
		return nil, fmt.Errorf("%s: send key %d is bound to node %d, not to this node (node.id %d)", name, send, node, c.Node.ID)
	}
	var opts []frame.KeyringOption
	for id, node := range bind {
		opts = append(opts, frame.BindNode(id, node))
	}
	var kr *frame.Keyring
	if l.Auth == AuthAEAD {
		kr, err = frame.NewAEADKeyring(send, keys, opts...)
	} else {
		kr, err = frame.NewKeyring(send, keys, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return kr, nil
}

func parseKeyFile(name string, data []byte, self, peer uint64) (keys map[uint32][]byte, bind map[uint32]uint64, err error) {
	keys, bind = map[uint32][]byte{}, map[uint32]uint64{}
	lineOf := map[uint32]int{}
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 || len(f) > 3 {
			bad(line, "want \"ID HEX-SECRET [node=ID]\", got %d fields", len(f))
			continue
		}
		id, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil || id == 0 {
			bad(line, "key ID %q: want a number from 1 to 4294967295", f[0])
			continue
		}
		// The secret is not quoted in errors: it may be most of a key.
		secret, err := hex.DecodeString(f[1])
		if err != nil {
			bad(line, "key %d: the secret is not hex", id)
			continue
		}
		if len(secret) < frame.MinKeyLen {
			bad(line, "key %d: %d bytes, want at least %d (openssl rand -hex 32)", id, len(secret), frame.MinKeyLen)
			continue
		}
		if first, dup := lineOf[uint32(id)]; dup {
			bad(line, "key %d listed twice (first at line %d)", id, first)
			continue
		}
		if len(f) == 3 {
			v, ok := strings.CutPrefix(f[2], "node=")
			node, err := strconv.ParseUint(v, 10, 64)
			if !ok || err != nil {
				bad(line, "key %d: %q: want node=ID", id, f[2])
				continue
			}
			if !slices.Contains([]uint64{self, peer}, node) {
				bad(line, "key %d: node=%d is neither node.id (%d) nor node.peer_id (%d)", id, node, self, peer)
				continue
			}
			bind[uint32(id)] = node
		}
		lineOf[uint32(id)] = line
		keys[uint32(id)] = secret
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	if len(errs) == 0 && len(keys) == 0 {
		errs = append(errs, fmt.Errorf("%s: no keys", name))
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return keys, bind, nil
}

package failover

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// This file is the one part of the package that does I/O; the purity test
// leaves it out.

// Store keeps a node's Persisted across restarts. Save must be durable when
// it returns nil: the core promotes to a generation only after its Save
// succeeded.
type Store interface {
	Load() (Persisted, error)
	Save(Persisted) error
}

// FileStore is a Store in one small file, written atomically: a temporary
// file in the same directory, fsync, rename over the old one, fsync of the
// directory. A crash leaves either the old file or the new one, never a
// mix.
//
// The file is 25 bytes: "swfo", version 1, generation (64), incarnation
// (64), CRC32C (Castagnoli) of what precedes it; integers big-endian.
type FileStore struct {
	Path string
}

const (
	storeMagic   = "swfo"
	storeVersion = 1
	storeSize    = 4 + 1 + 8 + 8 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorruptState wraps every error of a state file that exists but does
// not read back: a node must not start from it as if it were new, since
// it could use a generation again.
var ErrCorruptState = errors.New("failover: corrupt state file")

// Load reads the file. A file that does not exist is a first start (zero,
// nil); a file that is short, of another version or fails its CRC is an
// error naming the file and wrapping ErrCorruptState.
func (s FileStore) Load() (Persisted, error) {
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return Persisted{}, nil
	}
	if err != nil {
		return Persisted{}, fmt.Errorf("failover: load state: %w", err)
	}
	bad := func(why string) (Persisted, error) {
		return Persisted{}, fmt.Errorf("failover: load state %s: %s: %w", s.Path, why, ErrCorruptState)
	}
	switch {
	case len(b) != storeSize:
		return bad(fmt.Sprintf("%d bytes, want %d", len(b), storeSize))
	case string(b[:4]) != storeMagic:
		return bad(fmt.Sprintf("magic %q, want %q", b[:4], storeMagic))
	case b[4] != storeVersion:
		return bad(fmt.Sprintf("version %d, this build reads %d", b[4], storeVersion))
	}
	if got, want := binary.BigEndian.Uint32(b[21:]), crc32.Checksum(b[:21], castagnoli); got != want {
		return bad(fmt.Sprintf("CRC %#08x, computed %#08x", got, want))
	}
	return Persisted{Generation: binary.BigEndian.Uint64(b[5:]), Incarnation: binary.BigEndian.Uint64(b[13:])}, nil
}

func encodeState(p Persisted) []byte {
	b := make([]byte, 0, storeSize)
	b = append(b, storeMagic...)
	b = append(b, storeVersion)
	b = binary.BigEndian.AppendUint64(b, p.Generation)
	b = binary.BigEndian.AppendUint64(b, p.Incarnation)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// Save writes p durably, replacing the file atomically. On an error the
// old file is still there, whole, and no temporary file is left behind.
func (s FileStore) Save(p Persisted) (err error) {
	dir := filepath.Dir(s.Path)
	f, err := os.CreateTemp(dir, filepath.Base(s.Path)+".tmp*")
	if err != nil {
		return fmt.Errorf("failover: save state %s: %w", s.Path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("failover: save state %s: %w", s.Path, err)
		}
	}()
	if _, err = f.Write(encodeState(p)); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, s.Path); err != nil {
		return err
	}
	// The rename is durable only once the directory is.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

//go:build linux

package netnstest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NICLikeTxQueue is the pfifo limit, in frames, that Config.NICLike gives each
// veth end. It must exceed how many frames a socket's send buffer can hold
// (16 MiB is ~8,000 full 1500-byte frames, a few times more small ones), so
// that a sender blocks on its buffer while the stopped queue drains instead
// of having frames dropped at the qdisc.
const NICLikeTxQueue = 100000

// makeNICLike gives the named veth of the current namespace the two things a
// NIC has and a plain veth lacks:
//
//   - Receive processing on a CPU of its own. A veth hands a frame to the
//     peer with netif_rx, so the sending CPU also runs the whole receive path
//     (for AF_PACKET, the copy into the receiver's ring). With GRO on, the
//     peer instead gets a NAPI instance fed through a ring, but a sender with
//     TSO (a veth's default) uses it only for frames that fraglist GRO on the
//     receiver could take, which includes packet-socket frames; a threaded
//     NAPI is then polled by a kernel thread that the scheduler places on
//     whichever CPU is free, as a NIC's interrupt lands on another core.
//   - Transmit backpressure. When that ring is full, a veth with a real qdisc
//     stops its queue (as a NIC's driver does when its TX ring is full), so a
//     sender not bypassing the qdisc blocks rather than losing frames; with
//     no qdisc the frame is dropped.
//
// It unshares the calling thread's mount namespace (to mount a sysfs that
// shows this network namespace): call it on a thread that is then discarded.
func makeNICLike(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	for _, feature := range []string{"rx-gro", "rx-gro-list"} {
		if err := setFeature(name, feature, true); err != nil {
			return err
		}
	}
	if err := h.LinkSetTxQLen(l, NICLikeTxQueue); err != nil {
		return fmt.Errorf("%s: txqueuelen %d: %w", name, NICLikeTxQueue, err)
	}
	// pfifo without options takes its limit from txqueuelen.
	q := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		QdiscType:  "pfifo",
	}
	if err := h.QdiscReplace(q); err != nil {
		return fmt.Errorf("%s: pfifo qdisc: %w", name, err)
	}
	return setThreadedNAPI(name)
}

// ethtool ioctl commands and string set, from linux/ethtool.h.
const (
	ethtoolGSTRINGS   = 0x1b
	ethtoolGSSETINFO  = 0x37
	ethtoolGFEATURES  = 0x3a
	ethtoolSFEATURES  = 0x3b
	ethSSFeatures     = 4
	ethGStringLen     = 32
	ifreqSize         = 40
	ifreqDataPtrOff   = unix.IFNAMSIZ
	sfeaturesBlockLen = 8  // struct ethtool_set_features_block: valid, requested
	gfeaturesBlockLen = 16 // struct ethtool_get_features_block: available, requested, active, never_changed
)

// setFeature switches one netdev feature by its ethtool name ("rx-gro-list"),
// as `ethtool -K name feature on|off` does.
func setFeature(ifname, feature string, on bool) error {
	fd, bit, blocks, err := featureBit(ifname, feature)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// struct ethtool_sfeatures: cmd, size, features[size]{valid, requested}.
	set := make([]byte, 8+blocks*sfeaturesBlockLen)
	binary.NativeEndian.PutUint32(set[0:], ethtoolSFEATURES)
	binary.NativeEndian.PutUint32(set[4:], uint32(blocks))
	block := 8 + bit/32*sfeaturesBlockLen
	binary.NativeEndian.PutUint32(set[block:], 1<<(bit%32))
	if on {
		binary.NativeEndian.PutUint32(set[block+4:], 1<<(bit%32))
	}
	if err := ethtool(fd, ifname, set); err != nil {
		return fmt.Errorf("%s: set %s: %w", ifname, feature, err)
	}
	return nil
}

// featureActive reports whether the named feature is in effect on ifname.
func featureActive(ifname, feature string) (bool, error) {
	fd, bit, blocks, err := featureBit(ifname, feature)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	// struct ethtool_gfeatures: cmd, size, features[size]{available,
	// requested, active, never_changed}.
	get := make([]byte, 8+blocks*gfeaturesBlockLen)
	binary.NativeEndian.PutUint32(get[0:], ethtoolGFEATURES)
	binary.NativeEndian.PutUint32(get[4:], uint32(blocks))
	if err := ethtool(fd, ifname, get); err != nil {
		return false, fmt.Errorf("%s: get features: %w", ifname, err)
	}
	active := binary.NativeEndian.Uint32(get[8+bit/32*gfeaturesBlockLen+8:])
	return active&(1<<(bit%32)) != 0, nil
}

// featureBit opens an ethtool socket and finds the named feature's bit and
// the number of 32-bit blocks of the device's feature set: bit positions
// differ between kernels, so the name is looked up in the device's feature
// string set. The caller closes fd.
func featureBit(ifname, feature string) (fd, bit, blocks int, err error) {
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, 0, fmt.Errorf("ethtool socket: %w", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	// struct ethtool_sset_info: cmd, reserved, sset_mask, data[1].
	info := make([]byte, 24)
	binary.NativeEndian.PutUint32(info[0:], ethtoolGSSETINFO)
	binary.NativeEndian.PutUint64(info[8:], 1<<ethSSFeatures)
	if err := ethtool(fd, ifname, info); err != nil {
		return fd, 0, 0, fmt.Errorf("%s: feature names: %w", ifname, err)
	}
	if binary.NativeEndian.Uint64(info[8:])&(1<<ethSSFeatures) == 0 {
		return fd, 0, 0, fmt.Errorf("%s: no feature names", ifname)
	}
	count := int(binary.NativeEndian.Uint32(info[16:]))
	// struct ethtool_gstrings: cmd, string_set, len, data[len*32].
	strs := make([]byte, 12+count*ethGStringLen)
	binary.NativeEndian.PutUint32(strs[0:], ethtoolGSTRINGS)
	binary.NativeEndian.PutUint32(strs[4:], ethSSFeatures)
	binary.NativeEndian.PutUint32(strs[8:], uint32(count))
	if err := ethtool(fd, ifname, strs); err != nil {
		return fd, 0, 0, fmt.Errorf("%s: feature names: %w", ifname, err)
	}
	for i := range count {
		s := strs[12+i*ethGStringLen : 12+(i+1)*ethGStringLen]
		if string(bytes.TrimRight(s, "\x00")) == feature {
			return fd, i, (count + 31) / 32, nil
		}
	}
	return fd, 0, 0, fmt.Errorf("%s: this kernel has no feature %q", ifname, feature)
}

// ethtool issues SIOCETHTOOL for ifname with buf as the command block.
func ethtool(fd int, ifname string, buf []byte) error {
	var ifr [ifreqSize]byte
	copy(ifr[:unix.IFNAMSIZ-1], ifname)
	*(*unsafe.Pointer)(unsafe.Pointer(&ifr[ifreqDataPtrOff])) = unsafe.Pointer(&buf[0])
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(buf)
	if errno != 0 {
		return errno
	}
	return nil
}

// setThreadedNAPI turns on the interface's threaded NAPI through sysfs. sysfs
// shows the devices of the network namespace of whoever mounted it, so a
// fresh one is mounted in a private mount namespace, which the calling
// thread keeps.
func setThreadedNAPI(name string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	dir, err := os.MkdirTemp("", "netnstest-sysfs")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := unix.Mount("sysfs", dir, "sysfs", 0, ""); err != nil {
		return fmt.Errorf("mount sysfs: %w", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	if err := os.WriteFile(filepath.Join(dir, "class/net", name, "threaded"), []byte("1"), 0); err != nil {
		return fmt.Errorf("%s: threaded NAPI: %w", name, err)
	}
	return nil
}

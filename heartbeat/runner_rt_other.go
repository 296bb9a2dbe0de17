//go:build !linux

package heartbeat

import "errors"

func setRealTime(int) error { return errors.New("real-time scheduling is implemented on Linux only") }

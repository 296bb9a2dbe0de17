//go:build !linux

package heartbeat

import "errors"

func setRealTime(int) error { return errors.New("real-time scheduling is implemented on Linux only") }

func setNice(int) error { return errors.New("per-thread nice values are implemented on Linux only") }

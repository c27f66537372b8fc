//go:build unix

package results

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes f's exclusive lock (flock) without waiting: false when
// another open file holds it. The kernel drops it when f is closed or its
// process dies.
func tryLock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

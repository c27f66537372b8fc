//go:build !unix

package results

import (
	"errors"
	"os"
)

// tryLock is unsupported here: a Recorder can write its own segments but
// never claims another's.
func tryLock(*os.File) (bool, error) {
	return false, errors.New("file locks unsupported on this system")
}

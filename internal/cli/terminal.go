package cli

import "os"

// IsTerminal reports whether stream, such as stdin or stderr, is a
// terminal: an *os.File on a character device. The null device is a
// character device too, so it does not count.
func IsTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

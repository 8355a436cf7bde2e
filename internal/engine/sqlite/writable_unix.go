//go:build unix

package sqlite

import "syscall"

// writable returns why this process may not write path (as the kernel
// decides, with the process's user and groups), or nil.
func writable(path string) error {
	return syscall.Access(path, 0x2) // W_OK
}

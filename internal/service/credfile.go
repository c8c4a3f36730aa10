package service

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// maxCredFile bounds what --cred-file reads: a Keystone token is a few hundred bytes.
const maxCredFile = 64 << 10

// readCredFile reads a Keystone token from a file that only its owner, uid, can read
// or change: a token in a file anyone else can read is as exposed as one on the command
// line, and a file another user owns could swap the identity ovn-docker acts with.
// Errors never quote the file's content.
func readCredFile(path string, uid int) (string, error) {
	// O_NONBLOCK: a FIFO put in the file's place must not hang the command; the check
	// below refuses it. The checks use the opened file, not the name, so the file cannot
	// be swapped between check and read.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", fmt.Errorf("--cred-file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("--cred-file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("--cred-file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm != 0o600 && perm != 0o400 {
		return "", fmt.Errorf("--cred-file %s has mode %04o: a token file must be readable by its owner only (chmod 600 %s)",
			path, perm, path)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "", fmt.Errorf("--cred-file %s: cannot tell its owner", path)
	}
	if int(sys.Uid) != uid {
		return "", fmt.Errorf("--cred-file %s belongs to uid %d, not to the caller (uid %d): refusing a token file another user controls",
			path, sys.Uid, uid)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCredFile+1))
	if err != nil {
		return "", fmt.Errorf("--cred-file %s: %w", path, err)
	}
	if len(b) > maxCredFile {
		return "", fmt.Errorf("--cred-file %s is larger than %d KiB: not a token", path, maxCredFile>>10)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case tok == "":
		return "", fmt.Errorf("--cred-file %s is empty", path)
	case strings.ContainsAny(tok, " \t\r\n"):
		return "", fmt.Errorf("--cred-file %s holds more than one word: it must hold the token alone", path)
	}
	return tok, nil
}

package docker

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
)

// pauseLibDir is where a pause image keeps the shared libraries of a dynamically
// linked executable; the image's LD_LIBRARY_PATH names it. One directory of its own,
// rather than the host's paths, so that the image does not depend on the loader's
// built-in search list or an ld.so.cache it does not have.
const pauseLibDir = "/lib/ovn-docker"

// pauseRuntime is what an executable needs besides itself in an image that has
// nothing else.
type pauseRuntime struct {
	files  []pauseFile // the loader at the path the kernel asks for, then the libraries
	libDir string      // for LD_LIBRARY_PATH; empty for a static executable
}

// runtimeOf reads path's ELF headers (r is its content) and lists what it needs to
// run: nothing for a static executable; for a dynamic one its loader and the shared
// libraries it names, transitively, found on this host as its loader would find them.
// How the user built the binary (cgo is on by default where a C compiler exists) must
// not decide whether a sandbox can start.
func runtimeOf(path string, r io.ReaderAt) (pauseRuntime, error) {
	ef, err := elf.NewFile(r)
	if err != nil {
		return pauseRuntime{}, fmt.Errorf("pause image: %s is not an ELF executable: %w", path, err)
	}
	defer ef.Close()
	if ef.Type != elf.ET_EXEC && ef.Type != elf.ET_DYN {
		return pauseRuntime{}, fmt.Errorf("pause image: %s is not an executable (ELF type %s)", path, ef.Type)
	}
	interp := interpreter(ef)
	if interp == "" {
		return pauseRuntime{}, nil
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("pause image: %s is dynamically linked and "+format+"; build it with CGO_ENABLED=0 to need nothing from the host", append([]any{path}, a...)...)
	}
	if !filepath.IsAbs(interp) {
		return pauseRuntime{}, fail("names a relative loader %q", interp)
	}
	loader, err := filepath.EvalSymlinks(interp)
	if err != nil {
		return pauseRuntime{}, fail("its loader %s is not on this host: %v", interp, errors.Unwrap(err))
	}
	rt := pauseRuntime{
		files:  []pauseFile{{name: strings.TrimPrefix(filepath.Clean(interp), "/"), host: loader, mode: 0o755}},
		libDir: pauseLibDir,
	}
	dirs := libSearchDirs(ef, loader)
	// The loader satisfies a NEEDED entry of its own name (glibc's libc names it).
	seen := map[string]bool{filepath.Base(interp): true, filepath.Base(loader): true}
	queue, err := ef.ImportedLibraries()
	if err != nil {
		return pauseRuntime{}, fail("its library list cannot be read: %v", err)
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		if strings.Contains(name, "/") {
			return pauseRuntime{}, fail("needs the library %q by path", name)
		}
		host, needs, err := findLib(name, dirs, ef.Class, ef.Machine)
		if err != nil {
			return pauseRuntime{}, fail("%v", err)
		}
		rt.files = append(rt.files, pauseFile{name: pauseLibDir[1:] + "/" + name, host: host, mode: 0o755})
		queue = append(queue, needs...)
	}
	return rt, nil
}

func interpreter(ef *elf.File) string {
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(io.LimitReader(p.Open(), 4096))
			return string(bytes.TrimRight(b, "\x00"))
		}
	}
	return ""
}

// libSearchDirs is where the loader looks on a Debian-like host: the executable's
// own absolute run paths, the loader's directory, the multiarch directories, then the
// classic ones. ld.so.conf's extra directories are not read: a library only they hold
// is reported as missing, with the way out (a static build).
func libSearchDirs(ef *elf.File, loader string) []string {
	var dirs []string
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		paths, _ := ef.DynString(tag)
		for _, p := range paths {
			for _, d := range filepath.SplitList(p) {
				if filepath.IsAbs(d) {
					dirs = append(dirs, d)
				}
			}
		}
	}
	dirs = append(dirs, filepath.Dir(loader))
	if t := multiarch[ef.Machine]; t != "" {
		dirs = append(dirs, "/lib/"+t, "/usr/lib/"+t)
	}
	return append(dirs, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
}

var multiarch = map[elf.Machine]string{
	elf.EM_X86_64:  "x86_64-linux-gnu",
	elf.EM_AARCH64: "aarch64-linux-gnu",
	elf.EM_PPC64:   "powerpc64le-linux-gnu",
	elf.EM_S390:    "s390x-linux-gnu",
	elf.EM_RISCV:   "riscv64-linux-gnu",
}

// findLib returns the first library called name in dirs that fits the executable
// (same class and machine: /lib may hold 32-bit ones), resolved to its file, and the
// libraries it needs in turn.
func findLib(name string, dirs []string, class elf.Class, machine elf.Machine) (string, []string, error) {
	for _, d := range dirs {
		host, err := filepath.EvalSymlinks(filepath.Join(d, name))
		if err != nil {
			continue
		}
		lib, err := elf.Open(host)
		if err != nil {
			continue
		}
		fits := lib.Class == class && lib.Machine == machine
		needs, _ := lib.ImportedLibraries()
		lib.Close()
		if fits {
			return host, needs, nil
		}
	}
	return "", nil, fmt.Errorf("needs the library %s, found in none of %s: %w", name, strings.Join(dirs, ", "), fs.ErrNotExist)
}

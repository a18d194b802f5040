package main

// Memory (and CPU accounting) cgroups for the containers: one directory per container instance
// under a rig directory that lives inside the stand-in's own cgroup (v1), or beside it (v2,
// where a cgroup holding processes cannot delegate controllers to children).

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const cgroupMount = "/sys/fs/cgroup"

type cgroups struct {
	v2      bool
	memRoot string // the rig's directory in the memory hierarchy (v2: the unified one)
	cpuRoot string // v1: the rig's directory in the cpuacct hierarchy ("" if none); v2: = memRoot
}

// ownPath returns the process's path in the v1 hierarchy that carries controller `ctrl`
// (or the v2 path when ctrl is "").
func ownPath(ctrl string) string {
	b, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if ctrl == "" {
			if parts[0] == "0" && parts[1] == "" {
				return parts[2]
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == ctrl {
				return parts[2]
			}
		}
	}
	return "/"
}

func writeFile(path, value string) error {
	return os.WriteFile(path, []byte(value), 0o644)
}

// detectCgroups creates the rig's cgroup directory `name`.
func detectCgroups(name string) (*cgroups, error) {
	if b, err := os.ReadFile(filepath.Join(cgroupMount, "cgroup.controllers")); err == nil &&
		strings.Contains(" "+string(b)+" ", " memory") {
		own := ownPath("")
		var candidates []string
		if own != "/" {
			candidates = append(candidates, filepath.Dir(filepath.Join(cgroupMount, own)))
		}
		candidates = append(candidates, cgroupMount)
		var errs []error
		for _, parent := range candidates {
			_ = writeFile(filepath.Join(parent, "cgroup.subtree_control"), "+memory +cpu")
			dir := filepath.Join(parent, name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+memory +cpu"); err != nil {
				if err2 := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+memory"); err2 != nil {
					_ = os.Remove(dir)
					errs = append(errs, fmt.Errorf("%s: enabling memory for children: %w", dir, err2))
					continue
				}
			}
			return &cgroups{v2: true, memRoot: dir, cpuRoot: dir}, nil
		}
		return nil, fmt.Errorf("no writable cgroup v2 parent with the memory controller: %v", errors.Join(errs...))
	}
	memMount := filepath.Join(cgroupMount, "memory")
	if _, err := os.Stat(filepath.Join(memMount, "memory.limit_in_bytes")); err != nil {
		return nil, fmt.Errorf("neither cgroup v2 with memory nor a v1 memory hierarchy at %s", memMount)
	}
	mem := filepath.Join(memMount, ownPath("memory"), name)
	if err := os.MkdirAll(mem, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", mem, err)
	}
	g := &cgroups{memRoot: mem}
	for _, m := range []string{"cpuacct", "cpu,cpuacct", "cpuacct,cpu"} {
		mount := filepath.Join(cgroupMount, m)
		if _, err := os.Stat(filepath.Join(mount, "cpuacct.usage")); err != nil {
			continue
		}
		cpu := filepath.Join(mount, ownPath("cpuacct"), name)
		if err := os.MkdirAll(cpu, 0o755); err == nil {
			g.cpuRoot = cpu
		}
		break
	}
	return g, nil
}

// ctrCgroup is the cgroup of one container instance.
type ctrCgroup struct {
	v2  bool
	mem string
	cpu string
}

func (g *cgroups) create(leaf string, limit int64) (*ctrCgroup, error) {
	c := &ctrCgroup{v2: g.v2, mem: filepath.Join(g.memRoot, leaf)}
	_ = c.remove() // a leftover of an earlier instance with the same name
	if err := os.Mkdir(c.mem, 0o755); err != nil {
		return nil, err
	}
	if g.v2 {
		c.cpu = c.mem
		if limit > 0 {
			if err := writeFile(filepath.Join(c.mem, "memory.max"), strconv.FormatInt(limit, 10)); err != nil {
				_ = c.remove()
				return nil, err
			}
			_ = writeFile(filepath.Join(c.mem, "memory.swap.max"), "0")
		}
		_ = writeFile(filepath.Join(c.mem, "memory.oom.group"), "1")
		return c, nil
	}
	if limit > 0 {
		if err := writeFile(filepath.Join(c.mem, "memory.limit_in_bytes"), strconv.FormatInt(limit, 10)); err != nil {
			_ = c.remove()
			return nil, err
		}
		_ = writeFile(filepath.Join(c.mem, "memory.memsw.limit_in_bytes"), strconv.FormatInt(limit, 10))
	}
	_ = writeFile(filepath.Join(c.mem, "memory.swappiness"), "0")
	if g.cpuRoot != "" {
		cpu := filepath.Join(g.cpuRoot, leaf)
		_ = os.Remove(cpu)
		if err := os.Mkdir(cpu, 0o755); err == nil {
			c.cpu = cpu
		}
	}
	return c, nil
}

// procsFiles lists the cgroup.procs files a new process must join.
func (c *ctrCgroup) procsFiles() (mem, cpu string) {
	mem = filepath.Join(c.mem, "cgroup.procs")
	if !c.v2 && c.cpu != "" {
		cpu = filepath.Join(c.cpu, "cgroup.procs")
	}
	return
}

type reading struct {
	usage, workingSet, maxUsage, limit uint64
	oomKills                           uint64
	cpuNanos                           uint64
}

func readUint(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, true
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// readKeyed reads `key value` lines.
func readKeyed(path string) map[string]uint64 {
	out := map[string]uint64{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 {
			if v, err := strconv.ParseUint(fields[1], 10, 64); err == nil {
				out[fields[0]] = v
			}
		}
	}
	return out
}

func (c *ctrCgroup) read() (reading, bool) {
	var r reading
	if c.v2 {
		usage, ok := readUint(filepath.Join(c.mem, "memory.current"))
		if !ok {
			return r, false
		}
		r.usage = usage
		inactive := readKeyed(filepath.Join(c.mem, "memory.stat"))["inactive_file"]
		if inactive < usage {
			r.workingSet = usage - inactive
		}
		r.maxUsage, _ = readUint(filepath.Join(c.mem, "memory.peak"))
		r.limit, _ = readUint(filepath.Join(c.mem, "memory.max"))
		r.oomKills = readKeyed(filepath.Join(c.mem, "memory.events"))["oom_kill"]
		r.cpuNanos = readKeyed(filepath.Join(c.mem, "cpu.stat"))["usage_usec"] * 1000
		return r, true
	}
	usage, ok := readUint(filepath.Join(c.mem, "memory.usage_in_bytes"))
	if !ok {
		return r, false
	}
	r.usage = usage
	inactive := readKeyed(filepath.Join(c.mem, "memory.stat"))["total_inactive_file"]
	if inactive < usage {
		r.workingSet = usage - inactive
	}
	r.maxUsage, _ = readUint(filepath.Join(c.mem, "memory.max_usage_in_bytes"))
	r.limit, _ = readUint(filepath.Join(c.mem, "memory.limit_in_bytes"))
	r.oomKills = readKeyed(filepath.Join(c.mem, "memory.oom_control"))["oom_kill"]
	if c.cpu != "" {
		r.cpuNanos, _ = readUint(filepath.Join(c.cpu, "cpuacct.usage"))
	}
	return r, true
}

// killAll SIGKILLs every process in the cgroup.
func (c *ctrCgroup) killAll() {
	killProcsIn(c.mem)
}

func killProcsIn(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// remove kills what is left in the cgroup and removes it (retrying while the kernel reaps).
func (c *ctrCgroup) remove() error {
	dirs := []string{c.mem}
	if c.cpu != "" && c.cpu != c.mem {
		dirs = append(dirs, c.cpu)
	}
	var first error
	for _, dir := range dirs {
		if err := rmCgroup(dir); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func rmCgroup(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		killProcsIn(dir)
		err = syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("removing %s: %w", dir, err)
}

// removeRoot removes the rig's own cgroup directories (after every container's).
func (g *cgroups) removeRoot() {
	for _, root := range []string{g.memRoot, g.cpuRoot} {
		if root == "" {
			continue
		}
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if e.IsDir() {
				_ = rmCgroup(filepath.Join(root, e.Name()))
			}
		}
		_ = syscall.Rmdir(root)
	}
}

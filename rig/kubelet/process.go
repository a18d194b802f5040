package main

// Container processes: each one is started by /bin/sh, which writes its own pid into the
// container's cgroup.procs files and then execs the real command, so every byte the command
// allocates is charged to the container's cgroup from its first instruction. Processes are
// forked from one OS thread that never exits (PR_SET_PDEATHSIG fires when the forking thread
// ends), in their own process group, so they die with the stand-in.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

const joinScript = `echo $$ >"$1" || exit 126; if [ -n "$2" ]; then echo $$ >"$2" || exit 126; fi; shift 2; exec "$@"`

type spawnReq struct {
	cmd   *exec.Cmd
	reply chan error
}

type spawner struct{ reqs chan spawnReq }

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread() // never unlocked: this thread lives as long as the process
		for r := range s.reqs {
			r.reply <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	reply := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, reply: reply}
	return <-reply
}

// instance is one run of a container.
type instance struct {
	id      string
	cmd     *exec.Cmd
	cg      *ctrCgroup
	started time.Time
	done    chan struct{} // closed once the process has been reaped
	state   *os.ProcessState
	last    reading // the last reading of the cgroup, kept after it is gone
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func startInstance(sp *spawner, cg *ctrCgroup, argv, env []string, dir string, log *os.File) (*instance, error) {
	memProcs, cpuProcs := cg.procsFiles()
	args := append([]string{"-c", joinScript, "rig-init", memProcs, cpuProcs}, argv...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdin = nil
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := sp.start(cmd); err != nil {
		return nil, fmt.Errorf("starting %q: %w", argv, err)
	}
	inst := &instance{id: randomHex(64), cmd: cmd, cg: cg, started: time.Now(), done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		inst.state = cmd.ProcessState
		close(inst.done)
	}()
	return inst, nil
}

func (i *instance) exited() bool {
	select {
	case <-i.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the instance's process group.
func (i *instance) signal(sig syscall.Signal) {
	if i.cmd.Process != nil {
		_ = syscall.Kill(-i.cmd.Process.Pid, sig)
	}
}

// stop: SIGTERM, up to grace to exit, then SIGKILL to the group and to the whole cgroup.
func (i *instance) stop(grace time.Duration) {
	if !i.exited() {
		i.signal(syscall.SIGTERM)
		select {
		case <-i.done:
		case <-time.After(grace):
		}
	}
	i.signal(syscall.SIGKILL)
	i.cg.killAll()
	select {
	case <-i.done:
	case <-time.After(5 * time.Second):
	}
}

// exitCode is the container's exit code the way the runtime reports it (128+signal).
func (i *instance) exitCode() (int32, string) {
	st := i.state
	if st == nil {
		return 137, ""
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return int32(128 + int(ws.Signal())), ws.Signal().String()
	}
	return int32(st.ExitCode()), ""
}

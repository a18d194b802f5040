package main

import (
	"os"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "PORT": "8080"}
	cases := map[string]string{
		"plain":             "plain",
		"$(A)":              "1",
		"x$(A)y$(PORT)":     "x1y8080",
		"$$(A)":             "$(A)",
		"$(MISSING)":        "$(MISSING)",
		"$(A":               "$(A",
		"cost $5":           "cost $5",
		"$":                 "$",
		"--listen=:$(PORT)": "--listen=:8080",
	}
	for in, want := range cases {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestImageKind(t *testing.T) {
	for in, want := range map[string]string{
		"local/exec": imageExec, "local/exec:latest": imageExec, "docker.io/local/demo-service:1": imageDemo,
		"local/demo-service@sha256:ab": imageDemo, "nginx": "nginx",
	} {
		if got := imageKind(in); got != want {
			t.Errorf("imageKind(%q) = %q, want %q", in, got, want)
		}
	}
}

// A process in a 32 MiB cgroup that allocates 200 MiB is OOM-killed by the kernel, and the
// reading says so.
func TestOOMKillInCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	g, err := detectCgroups("kube-rig-test-" + randomHex(8))
	if err != nil {
		t.Skip(err)
	}
	defer g.removeRoot()
	cg, err := g.create("oom", 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := startInstance(newSpawner(), cg, []string{"python3", "-c", "b = bytearray(200 << 20); print(len(b))"},
		[]string{"PATH=/usr/bin:/bin"}, "/", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-inst.done:
	case <-time.After(20 * time.Second):
		t.Fatal("not killed")
	}
	r, ok := cg.read()
	if !ok || r.oomKills == 0 {
		t.Fatalf("reading %+v ok=%v", r, ok)
	}
	if code, _ := inst.exitCode(); code != 137 {
		t.Fatalf("exit code %d", code)
	}
	if r.cpuNanos == 0 {
		t.Errorf("no CPU accounted: %+v", r)
	}
	if err := cg.remove(); err != nil {
		t.Fatal(err)
	}
}

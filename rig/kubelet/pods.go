package main

// The pod lifecycle: one goroutine per pod bound to the node starts its containers, restarts
// them according to restartPolicy (recording OOMKilled / 137 after a kernel OOM kill), probes
// readiness, writes pods/status the way the kubelet does, and on deletion stops the processes,
// removes the cgroups and deletes the pod with grace period 0.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	imageExec = "local/exec"
	imageDemo = "local/demo-service"
	// exited instances stay visible on /metrics/cadvisor this long (as cAdvisor keeps a dead
	// container's series until housekeeping), so a scrape sees the OOM event.
	keepExited = 30 * time.Second
	maxGrace   = 10 * time.Second
)

type condState struct {
	status corev1.ConditionStatus
	since  metav1.Time
}

type exitedInst struct {
	id        string
	container string
	image     string
	restart   int32
	last      reading
	started   time.Time
	finished  time.Time
}

type ctrRT struct {
	spec         corev1.Container
	restartCount int32
	inst         *instance
	everStarted  bool
	lastTerm     *corev1.ContainerStateTerminated
	curTerm      *corev1.ContainerStateTerminated // terminated and not to be restarted
	waiting      *corev1.ContainerStateWaiting
	restartAt    time.Time
	ready        bool
	probeOK      int32
	probeFail    int32
	nextProbe    time.Time
}

type podRT struct {
	k       *kubelet
	uid     types.UID
	ns      string
	name    string
	mu      sync.Mutex // guards everything below (read by /metrics and the proxy)
	pod     *corev1.Pod
	ip      string
	ipIdx   int
	start   metav1.Time
	ctrs    []*ctrRT
	exited  []exitedInst
	conds   map[corev1.PodConditionType]*condState
	lastSt  []byte
	gone    bool // deleted from the API (or force-deleted): stop at once
	notify  chan struct{}
	stopped chan struct{}
}

func (p *podRT) poke() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func imageKind(image string) string {
	name := image
	if i := strings.LastIndex(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	name = strings.TrimPrefix(name, "docker.io/")
	return name
}

func (p *podRT) logf(format string, args ...any) {
	log.Printf("pod %s/%s: %s", p.ns, p.name, fmt.Sprintf(format, args...))
}

func (p *podRT) run() {
	defer close(p.stopped)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		p.mu.Lock()
		pod := p.pod
		gone := p.gone
		p.mu.Unlock()
		if gone || pod.DeletionTimestamp != nil {
			p.terminate(pod, gone)
			return
		}
		p.step(pod)
		p.writeStatus()
		select {
		case <-p.notify:
		case <-tick.C:
		case <-p.k.ctx.Done():
			p.stopAll(0)
			return
		}
	}
}

// step starts, restarts and probes the containers.
func (p *podRT) step(pod *corev1.Pod) {
	now := time.Now()
	for _, c := range p.ctrs {
		p.mu.Lock()
		inst := c.inst
		p.mu.Unlock()
		if inst != nil && inst.exited() {
			p.onExit(pod, c, inst)
			continue
		}
		if inst == nil && c.curTerm == nil && !now.Before(c.restartAt) {
			p.startContainer(pod, c)
			continue
		}
		if inst != nil {
			p.probe(c, inst, now)
		}
	}
	p.mu.Lock()
	p.exited = pruneExited(p.exited, now)
	p.mu.Unlock()
}

func pruneExited(list []exitedInst, now time.Time) []exitedInst {
	out := list[:0]
	for _, e := range list {
		if now.Sub(e.finished) < keepExited {
			out = append(out, e)
		}
	}
	return out
}

func (p *podRT) onExit(pod *corev1.Pod, c *ctrRT, inst *instance) {
	final, ok := inst.cg.read()
	if !ok {
		final = inst.last
	}
	code, sig := inst.exitCode()
	reason := "Error"
	switch {
	case final.oomKills > 0:
		reason, code = "OOMKilled", 137
	case code == 0:
		reason = "Completed"
	}
	finished := time.Now()
	term := &corev1.ContainerStateTerminated{
		ExitCode:    code,
		Reason:      reason,
		StartedAt:   metav1.NewTime(inst.started),
		FinishedAt:  metav1.NewTime(finished),
		ContainerID: "rig://" + inst.id,
	}
	if sig != "" && reason == "Error" {
		term.Message = "killed by " + sig
	}
	p.logf("container %s exited: %s (exit code %d)", c.spec.Name, reason, code)
	_ = inst.cg.remove()
	restart := false
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
	case corev1.RestartPolicyOnFailure:
		restart = code != 0
	default:
		restart = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exited = append(p.exited, exitedInst{id: inst.id, container: c.spec.Name, image: c.spec.Image,
		restart: c.restartCount, last: final, started: inst.started, finished: finished})
	c.inst = nil
	c.ready = false
	c.probeOK, c.probeFail = 0, 0
	if !restart {
		c.curTerm = term
		return
	}
	c.lastTerm = term
	// The first restart is immediate, then the kubelet's back-off: 10 s doubling to 5 min.
	delay := time.Duration(0)
	if c.restartCount > 0 {
		delay = 10 * time.Second << (c.restartCount - 1)
		if delay > 5*time.Minute || delay <= 0 {
			delay = 5 * time.Minute
		}
		c.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, c.spec.Name, p.name, p.ns, p.uid)}
	}
	c.restartAt = time.Now().Add(delay)
}

// argv resolves the process to run for container c (its command/args expanded).
func (p *podRT) argv(c *corev1.Container, vars map[string]string) ([]string, error) {
	var argv []string
	for _, s := range c.Command {
		argv = append(argv, expand(s, vars))
	}
	var args []string
	for _, s := range c.Args {
		args = append(args, expand(s, vars))
	}
	switch imageKind(c.Image) {
	case imageExec:
		argv = append(argv, args...)
		if len(argv) == 0 {
			return nil, fmt.Errorf("image %s needs a command", imageExec)
		}
	case imageDemo:
		if len(argv) == 0 {
			argv = []string{p.k.cfg.oomgateBin, "demo-service"}
		}
		argv = append(argv, args...)
	default:
		return nil, fmt.Errorf("image %q is not one the rig runs (%s, %s)", c.Image, imageExec, imageDemo)
	}
	return argv, nil
}

func (p *podRT) startContainer(pod *corev1.Pod, c *ctrRT) {
	fail := func(reason string, err error) {
		p.logf("container %s: %s: %v", c.spec.Name, reason, err)
		p.mu.Lock()
		c.waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}
		c.restartAt = time.Now().Add(5 * time.Second)
		p.mu.Unlock()
	}
	kind := imageKind(c.spec.Image)
	if kind != imageExec && kind != imageDemo {
		fail("ErrImagePull", fmt.Errorf("image %q is not one the rig runs (%s, %s)", c.spec.Image, imageExec, imageDemo))
		return
	}
	vars, order, err := p.k.containerEnv(p.k.ctx, pod, &c.spec, p.ip)
	if err != nil {
		fail("CreateContainerConfigError", err)
		return
	}
	if kind == imageDemo {
		if _, ok := vars["DEMO_LISTEN"]; !ok {
			port := int32(8080)
			if len(c.spec.Ports) > 0 {
				port = c.spec.Ports[0].ContainerPort
			}
			vars["DEMO_LISTEN"] = net.JoinHostPort(p.ip, strconv.Itoa(int(port)))
			order = append(order, "DEMO_LISTEN")
		}
	}
	argv, err := p.argv(&c.spec, vars)
	if err != nil {
		fail("CreateContainerError", err)
		return
	}
	env := make([]string, 0, len(order))
	for _, name := range order {
		env = append(env, name+"="+vars[name])
	}
	var limit int64
	if q, ok := c.spec.Resources.Limits[corev1.ResourceMemory]; ok {
		limit = q.Value()
	}
	p.mu.Lock()
	restarts := c.restartCount
	if c.everStarted {
		restarts++
	}
	p.mu.Unlock()
	leaf := fmt.Sprintf("%s_%s_%s_%d", p.ns, p.name, c.spec.Name, restarts)
	cg, err := p.k.cg.create(leaf, limit)
	if err != nil {
		fail("RunContainerError", fmt.Errorf("memory cgroup: %w", err))
		return
	}
	logPath := filepath.Join(p.k.cfg.logDir, fmt.Sprintf("%s_%s_%s.log", p.ns, p.name, c.spec.Name))
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		_ = cg.remove()
		fail("RunContainerError", err)
		return
	}
	dir := c.spec.WorkingDir
	if dir == "" {
		dir = "/"
	}
	inst, err := startInstance(p.k.spawner, cg, argv, env, dir, lf)
	lf.Close()
	if err != nil {
		_ = cg.remove()
		fail("RunContainerError", err)
		return
	}
	p.logf("container %s started (pid %d, limit %d): %q", c.spec.Name, inst.cmd.Process.Pid, limit, argv)
	now := time.Now()
	p.mu.Lock()
	c.restartCount = restarts
	c.everStarted = true
	c.inst = inst
	c.waiting = nil
	c.ready = false
	c.probeOK, c.probeFail = 0, 0
	delay := time.Duration(0)
	if rp := c.spec.ReadinessProbe; rp != nil {
		delay = time.Duration(rp.InitialDelaySeconds) * time.Second
	}
	c.nextProbe = now.Add(delay)
	p.mu.Unlock()
}

func (p *podRT) resolvePort(c *corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == port.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("no container port named %q", port.StrVal)
}

func (p *podRT) probe(c *ctrRT, inst *instance, now time.Time) {
	rp := c.spec.ReadinessProbe
	if rp == nil {
		p.mu.Lock()
		c.ready = true
		p.mu.Unlock()
		return
	}
	if now.Before(c.nextProbe) {
		return
	}
	period := time.Duration(max(rp.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(rp.TimeoutSeconds, 1)) * time.Second
	err := p.runProbe(c, rp, timeout)
	p.mu.Lock()
	defer p.mu.Unlock()
	c.nextProbe = now.Add(period)
	if err == nil {
		c.probeFail = 0
		c.probeOK++
		if c.probeOK >= max(rp.SuccessThreshold, 1) {
			c.ready = true
		}
		return
	}
	c.probeOK = 0
	c.probeFail++
	if c.ready && c.probeFail >= max(rp.FailureThreshold, 1) {
		p.logf("container %s: readiness probe failed: %v", c.spec.Name, err)
		c.ready = false
	}
}

func (p *podRT) runProbe(c *ctrRT, rp *corev1.Probe, timeout time.Duration) error {
	switch {
	case rp.HTTPGet != nil:
		g := rp.HTTPGet
		port, err := p.resolvePort(&c.spec, g.Port)
		if err != nil {
			return err
		}
		host := g.Host
		if host == "" {
			host = p.ip
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), path), nil)
		if err != nil {
			return err
		}
		for _, h := range g.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		req.Header.Set("User-Agent", "kube-probe/1.36")
		client := &http.Client{Timeout: timeout, Transport: probeTransport}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	case rp.TCPSocket != nil:
		port, err := p.resolvePort(&c.spec, rp.TCPSocket.Port)
		if err != nil {
			return err
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(p.ip, strconv.Itoa(port)), timeout)
		if err != nil {
			return err
		}
		return conn.Close()
	default:
		return nil // exec/grpc probes: not run by the rig, counted as success
	}
}

// probeTransport never reuses connections, like the kubelet's prober.
var probeTransport = &http.Transport{DisableKeepAlives: true}

// status computes the pod status the kubelet would report now.
func (p *podRT) status() corev1.PodStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	var cs []corev1.ContainerStatus
	allReady, anyRunning, allStarted, allDone, anyFailed := true, false, true, true, false
	var unready []string
	for _, c := range p.ctrs {
		st := corev1.ContainerStatus{
			Name:         c.spec.Name,
			Image:        c.spec.Image,
			ImageID:      "local://" + imageKind(c.spec.Image),
			RestartCount: c.restartCount,
			Ready:        c.ready && c.inst != nil,
		}
		started := c.inst != nil
		st.Started = &started
		if c.lastTerm != nil {
			st.LastTerminationState = corev1.ContainerState{Terminated: c.lastTerm}
		}
		switch {
		case c.inst != nil:
			st.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.inst.started)}}
			st.ContainerID = "rig://" + c.inst.id
			anyRunning = true
			allDone = false
		case c.curTerm != nil:
			st.State = corev1.ContainerState{Terminated: c.curTerm}
			st.ContainerID = c.curTerm.ContainerID
			if c.curTerm.ExitCode != 0 {
				anyFailed = true
			}
		default:
			w := c.waiting
			if w == nil {
				w = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
			}
			st.State = corev1.ContainerState{Waiting: w}
			if c.lastTerm != nil {
				st.ContainerID = c.lastTerm.ContainerID
			}
			allDone = false
			if !c.everStarted {
				allStarted = false
			}
		}
		if !st.Ready {
			allReady = false
			unready = append(unready, c.spec.Name)
		}
		cs = append(cs, st)
	}
	phase := corev1.PodPending
	switch {
	case allDone && anyFailed:
		phase = corev1.PodFailed
	case allDone:
		phase = corev1.PodSucceeded
	case allStarted && (anyRunning || p.pod.Spec.RestartPolicy != corev1.RestartPolicyNever):
		phase = corev1.PodRunning
	}
	now := metav1.Now()
	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
			reason, msg = "", ""
		}
		cur := p.conds[t]
		if cur == nil {
			// keep what others wrote (the scheduler's PodScheduled) when it agrees
			for _, c := range p.pod.Status.Conditions {
				if c.Type == t && c.Status == s {
					cur = &condState{status: s, since: c.LastTransitionTime}
					p.conds[t] = cur
				}
			}
		}
		if cur == nil || cur.status != s {
			cur = &condState{status: s, since: now}
			p.conds[t] = cur
		}
		return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: cur.since, Reason: reason, Message: msg}
	}
	msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
		allReady = false
	}
	conds := []corev1.PodCondition{
		cond("PodReadyToStartContainers", true, "", ""),
		cond(corev1.PodInitialized, true, "", ""),
		cond(corev1.PodReady, allReady, "ContainersNotReady", msg),
		cond(corev1.ContainersReady, allReady, "ContainersNotReady", msg),
		cond(corev1.PodScheduled, true, "", ""),
	}
	if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
		conds[2].Reason, conds[3].Reason = "PodCompleted", "PodCompleted"
		conds[2].Message, conds[3].Message = "", ""
	}
	start := p.start
	return corev1.PodStatus{
		Phase:             phase,
		Conditions:        conds,
		HostIP:            "127.0.0.1",
		HostIPs:           []corev1.HostIP{{IP: "127.0.0.1"}},
		PodIP:             p.ip,
		PodIPs:            []corev1.PodIP{{IP: p.ip}},
		StartTime:         &start,
		ContainerStatuses: cs,
	}
}

// podReady is what the Service proxy routes on.
func (p *podRT) podReady() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pod.DeletionTimestamp != nil || p.gone {
		return false
	}
	for _, c := range p.ctrs {
		if !c.ready || c.inst == nil {
			return false
		}
	}
	return true
}

// writeStatus patches pods/status when it changed (a JSON merge patch of the whole status: the
// lists are replaced, so a container's old state never lingers).
func (p *podRT) writeStatus() {
	st := p.status()
	body, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return
	}
	p.mu.Lock()
	same := reflect.DeepEqual(body, p.lastSt)
	p.mu.Unlock()
	if same {
		return
	}
	ctx, cancel := context.WithTimeout(p.k.ctx, 10*time.Second)
	defer cancel()
	_, err = p.k.cs.CoreV1().Pods(p.ns).Patch(ctx, p.name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	if err != nil {
		if !apierrors.IsNotFound(err) {
			p.logf("status patch: %v", err)
		}
		return
	}
	p.mu.Lock()
	p.lastSt = body
	p.mu.Unlock()
}

func (p *podRT) stopAll(grace time.Duration) {
	var wg sync.WaitGroup
	for _, c := range p.ctrs {
		p.mu.Lock()
		inst := c.inst
		p.mu.Unlock()
		if inst == nil {
			continue
		}
		wg.Add(1)
		go func(c *ctrRT, inst *instance) {
			defer wg.Done()
			inst.stop(grace)
			final, _ := inst.cg.read()
			_ = inst.cg.remove()
			code, _ := inst.exitCode()
			reason := "Error"
			if code == 0 {
				reason = "Completed"
			}
			if final.oomKills > 0 {
				reason, code = "OOMKilled", 137
			}
			p.mu.Lock()
			c.inst = nil
			c.ready = false
			c.curTerm = &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason,
				StartedAt: metav1.NewTime(inst.started), FinishedAt: metav1.Now(), ContainerID: "rig://" + inst.id}
			p.mu.Unlock()
		}(c, inst)
	}
	wg.Wait()
}

// terminate handles a pod being deleted: stop its containers within the grace period, report
// them terminated, and delete the pod object with grace 0 (as the kubelet does).
func (p *podRT) terminate(pod *corev1.Pod, gone bool) {
	grace := 30 * time.Second
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	if grace > maxGrace {
		grace = maxGrace
	}
	if gone {
		grace = 0
	}
	p.logf("stopping (grace %s)", grace)
	p.stopAll(grace)
	p.k.releasePod(p)
	if gone {
		return
	}
	if p.ip != "" {
		p.writeStatus()
	}
	ctx, cancel := context.WithTimeout(p.k.ctx, 10*time.Second)
	defer cancel()
	zero := int64(0)
	uid := p.uid
	err := p.k.cs.CoreV1().Pods(p.ns).Delete(ctx, p.name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		p.logf("delete: %v", err)
	}
}

package main

// /metrics/resource (the kubelet's resource metrics, what metrics-server scrapes) and
// /metrics/cadvisor (cAdvisor's container metrics, what Prometheus scrapes), read live from the
// containers' cgroups at request time. Working set = usage − inactive file cache, as cAdvisor
// computes it. Exited instances stay on /metrics/cadvisor for 30 s under their own container id.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func promFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// esc escapes a label value for the Prometheus text format.
func esc(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return r.Replace(s)
}

// nodeCPUSeconds: the host's busy CPU time from /proc/stat (USER_HZ = 100).
func nodeCPUSeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy uint64
	for _, idx := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		if idx < len(f) {
			v, _ := strconv.ParseUint(f[idx], 10, 64)
			busy += v
		}
	}
	return float64(busy) / 100
}

func nodeWorkingSet() uint64 {
	m := meminfo()
	if m["MemTotal"] > m["MemAvailable"] {
		return m["MemTotal"] - m["MemAvailable"]
	}
	return 0
}

type liveCtr struct {
	ns, pod, uid, container, image, id string
	restart                            int32
	started                            time.Time
	r                                  reading
	running                            bool
}

// live collects a reading of every running container (and of recently exited instances).
func (k *kubelet) live(withExited bool) []liveCtr {
	var out []liveCtr
	for _, p := range k.snapshot() {
		p.mu.Lock()
		for _, c := range p.ctrs {
			if c.inst == nil {
				continue
			}
			r, ok := c.inst.cg.read()
			if !ok {
				continue
			}
			c.inst.last = r
			out = append(out, liveCtr{ns: p.ns, pod: p.name, uid: string(p.uid), container: c.spec.Name, image: c.spec.Image,
				id: c.inst.id, restart: c.restartCount, started: c.inst.started, r: r, running: true})
		}
		if withExited {
			for _, e := range p.exited {
				out = append(out, liveCtr{ns: p.ns, pod: p.name, uid: string(p.uid), container: e.container, image: e.image,
					id: e.id, restart: e.restart, started: e.started, r: e.last})
			}
		}
		p.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.ns+"/"+a.pod+"/"+a.container != b.ns+"/"+b.pod+"/"+b.container {
			return a.ns+"/"+a.pod+"/"+a.container < b.ns+"/"+b.pod+"/"+b.container
		}
		return a.started.Before(b.started)
	})
	return out
}

func (k *kubelet) serveResource(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	var b strings.Builder
	b.WriteString("# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\n")
	fmt.Fprintf(&b, "node_cpu_usage_seconds_total %s %s\n", promFloat(nodeCPUSeconds()), ts)
	b.WriteString("# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\n")
	fmt.Fprintf(&b, "node_memory_working_set_bytes %s %s\n", promFloat(float64(nodeWorkingSet())), ts)
	ctrs := k.live(false)
	lbl := func(c liveCtr) string {
		return fmt.Sprintf(`{container="%s",namespace="%s",pod="%s"}`, esc(c.container), esc(c.ns), esc(c.pod))
	}
	b.WriteString("# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n")
	for _, c := range ctrs {
		cpu := float64(c.r.cpuNanos) / 1e9
		if cpu <= 0 {
			cpu = 1e-9 // metrics-server drops a whole pod whose container reads 0
		}
		fmt.Fprintf(&b, "container_cpu_usage_seconds_total%s %s %s\n", lbl(c), promFloat(cpu), ts)
	}
	b.WriteString("# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge\n")
	for _, c := range ctrs {
		fmt.Fprintf(&b, "container_memory_working_set_bytes%s %s %s\n", lbl(c), promFloat(float64(c.r.workingSet)), ts)
	}
	b.WriteString("# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds\n# TYPE container_start_time_seconds gauge\n")
	for _, c := range ctrs {
		fmt.Fprintf(&b, "container_start_time_seconds%s %s %s\n", lbl(c), promFloat(float64(c.started.UnixNano())/1e9), ts)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

func (k *kubelet) serveCadvisor(w http.ResponseWriter, _ *http.Request) {
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	ctrs := k.live(true)
	type podSum struct {
		ns, pod, uid string
		r            reading
	}
	pods := map[string]*podSum{}
	var podOrder []string
	for _, c := range ctrs {
		if !c.running {
			continue
		}
		key := c.ns + "/" + c.pod
		s := pods[key]
		if s == nil {
			s = &podSum{ns: c.ns, pod: c.pod, uid: c.uid}
			pods[key] = s
			podOrder = append(podOrder, key)
		}
		s.r.usage += c.r.usage
		s.r.workingSet += c.r.workingSet
		s.r.maxUsage += c.r.maxUsage
		s.r.limit += c.r.limit
		s.r.oomKills += c.r.oomKills
		s.r.cpuNanos += c.r.cpuNanos
	}
	type metric struct {
		name, typ, help string
		val             func(r reading) float64
	}
	metrics := []metric{
		{"container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds.", func(r reading) float64 { return float64(r.cpuNanos) / 1e9 }},
		{"container_memory_working_set_bytes", "gauge", "Current working set in bytes.", func(r reading) float64 { return float64(r.workingSet) }},
		{"container_memory_usage_bytes", "gauge", "Current memory usage in bytes, including all memory regardless of when it was accessed", func(r reading) float64 { return float64(r.usage) }},
		{"container_memory_max_usage_bytes", "gauge", "Maximum memory usage recorded in bytes", func(r reading) float64 { return float64(r.maxUsage) }},
		{"container_spec_memory_limit_bytes", "gauge", "Memory limit for the container.", func(r reading) float64 {
			if r.limit >= 1<<62 {
				return 0
			}
			return float64(r.limit)
		}},
		{"container_oom_events_total", "counter", "Count of out of memory events observed for the container", func(r reading) float64 { return float64(r.oomKills) }},
	}
	var b strings.Builder
	for _, m := range metrics {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
		for _, key := range podOrder {
			s := pods[key]
			id := fmt.Sprintf("/kubepods/pod%s", s.uid)
			fmt.Fprintf(&b, `%s{container="",id="%s",image="",name="",namespace="%s",pod="%s"} %s %s`+"\n",
				m.name, esc(id), esc(s.ns), esc(s.pod), promFloat(m.val(s.r)), ts)
		}
		for _, c := range ctrs {
			id := fmt.Sprintf("/kubepods/pod%s/%s", c.uid, c.id)
			name := fmt.Sprintf("k8s_%s_%s_%s_%s_%d", c.container, c.pod, c.ns, c.uid, c.restart)
			fmt.Fprintf(&b, `%s{container="%s",id="%s",image="%s",name="%s",namespace="%s",pod="%s"} %s %s`+"\n",
				m.name, esc(c.container), esc(id), esc(c.image), esc(name), esc(c.ns), esc(c.pod), promFloat(m.val(c.r)), ts)
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

// servePods lists what runs, for debugging (`curl 127.0.0.1:PORT/pods`).
func (k *kubelet) servePods(w http.ResponseWriter, _ *http.Request) {
	type ctr struct {
		Name     string `json:"name"`
		Pid      int    `json:"pid,omitempty"`
		Cgroup   string `json:"cgroup,omitempty"`
		Restarts int32  `json:"restarts"`
		Ready    bool   `json:"ready"`
	}
	type pod struct {
		Namespace  string `json:"namespace"`
		Name       string `json:"name"`
		IP         string `json:"ip"`
		Containers []ctr  `json:"containers"`
	}
	var out []pod
	for _, p := range k.snapshot() {
		p.mu.Lock()
		po := pod{Namespace: p.ns, Name: p.name, IP: p.ip}
		for _, c := range p.ctrs {
			cc := ctr{Name: c.spec.Name, Restarts: c.restartCount, Ready: c.ready}
			if c.inst != nil && c.inst.cmd.Process != nil {
				cc.Pid = c.inst.cmd.Process.Pid
				cc.Cgroup = c.inst.cg.mem
			}
			po.Containers = append(po.Containers, cc)
		}
		p.mu.Unlock()
		out = append(out, po)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

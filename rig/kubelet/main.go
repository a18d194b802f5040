// Command kubelet is oomgate's kubelet stand-in for the test rig (scripts/kube-rig): it
// registers one Node against a real kube-apiserver, keeps its Lease and Ready condition fresh,
// runs every container of the pods bound to it as a real local process in its own memory
// cgroup (image local/exec: command + args; image local/demo-service: `oomgate demo-service`),
// gives each pod its own loopback IP (127.0.1.N), reports pod status as the kubelet does, serves
// /metrics/resource (for metrics-server) and /metrics/cadvisor (for Prometheus) from the real
// cgroups, and serves NodePort Services on 127.0.0.1:nodePort (the rig's kube-proxy).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

type config struct {
	kubeconfig string
	nodeName   string
	port       int
	oomgateBin string
	cgroupName string
	logDir     string
	ipPrefix   string
	cgroupFile string
}

type kubelet struct {
	cfg     config
	ctx     context.Context
	cs      kubernetes.Interface
	cg      *cgroups
	spawner *spawner
	started time.Time

	mu   sync.Mutex
	pods map[types.UID]*podRT
	ips  map[int]types.UID
	svcs *proxies
}

func main() {
	var cfg config
	flag.StringVar(&cfg.kubeconfig, "kubeconfig", "", "kubeconfig of the identity the stand-in uses")
	flag.StringVar(&cfg.nodeName, "node-name", "node-1", "name of the Node to register")
	flag.IntVar(&cfg.port, "port", 10250, "port of the kubelet API (plain HTTP on 127.0.0.1)")
	flag.StringVar(&cfg.oomgateBin, "oomgate-bin", "oomgate", "the oomgate binary image local/demo-service runs")
	flag.StringVar(&cfg.cgroupName, "cgroup-name", "kube-rig", "name of the rig's cgroup directory")
	flag.StringVar(&cfg.logDir, "log-dir", ".", "directory for the containers' logs")
	flag.StringVar(&cfg.ipPrefix, "pod-ip-prefix", "127.0.1.", "pods get IPs PREFIX2..PREFIX254")
	flag.StringVar(&cfg.cgroupFile, "cgroup-file", "", "write the rig's cgroup directories to this file (for `kube-rig down`)")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	if err := os.MkdirAll(cfg.logDir, 0o755); err != nil {
		log.Fatal(err)
	}
	rest, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		log.Fatalf("kubeconfig: %v", err)
	}
	rest.QPS, rest.Burst = 50, 100
	rest.UserAgent = "oomgate-kube-rig-kubelet"
	cs, err := kubernetes.NewForConfig(rest)
	if err != nil {
		log.Fatal(err)
	}
	cg, err := detectCgroups(cfg.cgroupName)
	if err != nil {
		log.Fatalf("cgroups: %v", err)
	}
	if cfg.cgroupFile != "" {
		if err := os.WriteFile(cfg.cgroupFile, []byte(cg.memRoot+"\n"+cg.cpuRoot+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	log.Printf("container cgroups under %s (cpu: %q, v2: %v)", cg.memRoot, cg.cpuRoot, cg.v2)

	ctx, cancel := context.WithCancel(context.Background())
	k := &kubelet{cfg: cfg, ctx: ctx, cs: cs, cg: cg, spawner: newSpawner(), started: time.Now(),
		pods: map[types.UID]*podRT{}, ips: map[int]types.UID{}}
	k.svcs = newProxies(k)

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.port)))
	if err != nil {
		log.Fatalf("kubelet port: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics/resource", k.serveResource)
	mux.HandleFunc("/metrics/cadvisor", k.serveCadvisor)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/pods", k.servePods)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	if err := k.registerNode(); err != nil {
		log.Fatalf("registering node %s: %v", cfg.nodeName, err)
	}
	go k.nodeLoop()

	podInf := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName=" + cfg.nodeName }))
	pi := podInf.Core().V1().Pods().Informer()
	_, _ = pi.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.podChanged(obj) },
		UpdateFunc: func(_, obj any) { k.podChanged(obj) },
		DeleteFunc: func(obj any) { k.podDeleted(obj) },
	})
	svcInf := informers.NewSharedInformerFactory(cs, 0)
	si := svcInf.Core().V1().Services().Informer()
	_, _ = si.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.svcs.sync(obj, false) },
		UpdateFunc: func(_, obj any) { k.svcs.sync(obj, false) },
		DeleteFunc: func(obj any) { k.svcs.sync(obj, true) },
	})
	podInf.Start(ctx.Done())
	svcInf.Start(ctx.Done())
	log.Printf("node %s serving on %s", cfg.nodeName, ln.Addr())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	log.Printf("stopping: killing every container")
	k.mu.Lock()
	var all []*podRT
	for _, p := range k.pods {
		all = append(all, p)
	}
	k.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Add(1)
		go func(p *podRT) { defer wg.Done(); p.stopAll(0) }(p)
	}
	wg.Wait()
	cancel()
	k.svcs.closeAll()
	cg.removeRoot()
	_ = srv.Close()
}

func (k *kubelet) allocIP(uid types.UID) (string, int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for n := 2; n <= 254; n++ {
		if _, used := k.ips[n]; !used {
			k.ips[n] = uid
			return k.cfg.ipPrefix + strconv.Itoa(n), n, nil
		}
	}
	return "", 0, fmt.Errorf("no free pod IP")
}

func (k *kubelet) podChanged(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName != k.cfg.nodeName {
		return
	}
	k.mu.Lock()
	p := k.pods[pod.UID]
	k.mu.Unlock()
	if p != nil {
		p.mu.Lock()
		p.pod = pod
		p.mu.Unlock()
		p.poke()
		return
	}
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		if pod.DeletionTimestamp != nil {
			// a pod of ours from before a restart of the stand-in: nothing runs, just delete it
			p = k.newPod(pod, "", 0)
			k.mu.Lock()
			k.pods[pod.UID] = p
			k.mu.Unlock()
			go p.run()
		}
		return
	}
	ip, idx, err := k.allocIP(pod.UID)
	if err != nil {
		log.Printf("pod %s/%s: %v", pod.Namespace, pod.Name, err)
		return
	}
	p = k.newPod(pod, ip, idx)
	k.mu.Lock()
	k.pods[pod.UID] = p
	k.mu.Unlock()
	log.Printf("pod %s/%s: admitted with IP %s", pod.Namespace, pod.Name, ip)
	go p.run()
}

func (k *kubelet) newPod(pod *corev1.Pod, ip string, idx int) *podRT {
	p := &podRT{k: k, uid: pod.UID, ns: pod.Namespace, name: pod.Name, pod: pod, ip: ip, ipIdx: idx,
		start: metav1.Now(), conds: map[corev1.PodConditionType]*condState{},
		notify: make(chan struct{}, 1), stopped: make(chan struct{})}
	for _, c := range pod.Spec.Containers {
		p.ctrs = append(p.ctrs, &ctrRT{spec: c})
	}
	return p
}

func (k *kubelet) podDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	p := k.pods[pod.UID]
	k.mu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	p.gone = true
	p.mu.Unlock()
	p.poke()
}

// releasePod forgets a stopped pod and frees its IP.
func (k *kubelet) releasePod(p *podRT) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pods[p.uid] == p {
		delete(k.pods, p.uid)
	}
	if p.ipIdx != 0 && k.ips[p.ipIdx] == p.uid {
		delete(k.ips, p.ipIdx)
	}
}

func (k *kubelet) snapshot() []*podRT {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]*podRT, 0, len(k.pods))
	for _, p := range k.pods {
		out = append(out, p)
	}
	return out
}

package main

// The rig's kube-proxy: every port of a NodePort Service listens on 127.0.0.1:nodePort and
// forwards each TCP connection to the next Ready pod (round robin) that the Service's selector
// matches, on the pod's IP and the resolved targetPort.

import (
	"io"
	"log"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type proxyKey struct {
	ns, name string
	nodePort int32
}

type nodePortProxy struct {
	ln     net.Listener
	svc    *corev1.Service
	port   corev1.ServicePort
	next   atomic.Uint64
	mu     sync.Mutex
	closed bool
}

type proxies struct {
	k  *kubelet
	mu sync.Mutex
	by map[proxyKey]*nodePortProxy
}

func newProxies(k *kubelet) *proxies { return &proxies{k: k, by: map[proxyKey]*nodePortProxy{}} }

func (ps *proxies) sync(obj any, deleted bool) {
	if t, ok := obj.(interface{ GetObj() any }); ok {
		obj = t.GetObj()
	}
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	want := map[proxyKey]corev1.ServicePort{}
	if !deleted && (svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer) {
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
				want[proxyKey{svc.Namespace, svc.Name, p.NodePort}] = p
			}
		}
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for key, px := range ps.by {
		if key.ns != svc.Namespace || key.name != svc.Name {
			continue
		}
		if _, keep := want[key]; !keep {
			px.close()
			delete(ps.by, key)
			log.Printf("service %s/%s: stopped serving node port %d", key.ns, key.name, key.nodePort)
		}
	}
	for key, port := range want {
		if px, ok := ps.by[key]; ok {
			px.mu.Lock()
			px.svc, px.port = svc, port
			px.mu.Unlock()
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(key.nodePort))))
		if err != nil {
			log.Printf("service %s/%s: node port %d: %v", key.ns, key.name, key.nodePort, err)
			continue
		}
		px := &nodePortProxy{ln: ln, svc: svc, port: port}
		ps.by[key] = px
		log.Printf("service %s/%s: serving 127.0.0.1:%d", key.ns, key.name, key.nodePort)
		go px.serve(ps.k)
	}
}

func (ps *proxies) closeAll() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for key, px := range ps.by {
		px.close()
		delete(ps.by, key)
	}
}

func (px *nodePortProxy) close() {
	px.mu.Lock()
	px.closed = true
	px.mu.Unlock()
	_ = px.ln.Close()
}

// backends lists the addresses of the Ready pods the Service selects.
func (px *nodePortProxy) backends(k *kubelet) []string {
	px.mu.Lock()
	svc, port := px.svc, px.port
	px.mu.Unlock()
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var out []string
	for _, p := range k.snapshot() {
		if p.ns != svc.Namespace || !p.podReady() {
			continue
		}
		p.mu.Lock()
		pod := p.pod
		p.mu.Unlock()
		if !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		target := port.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(port.Port)
		}
		n := 0
		if target.Type == intstr.Int {
			n = target.IntValue()
		} else {
			for _, c := range pod.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == target.StrVal {
						n = int(cp.ContainerPort)
					}
				}
			}
		}
		if n > 0 {
			out = append(out, net.JoinHostPort(p.ip, strconv.Itoa(n)))
		}
	}
	sort.Strings(out)
	return out
}

func (px *nodePortProxy) serve(k *kubelet) {
	for {
		conn, err := px.ln.Accept()
		if err != nil {
			px.mu.Lock()
			closed := px.closed
			px.mu.Unlock()
			if closed {
				return
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go px.forward(k, conn)
	}
}

func (px *nodePortProxy) forward(k *kubelet, conn net.Conn) {
	defer conn.Close()
	backs := px.backends(k)
	if len(backs) == 0 {
		return // no Ready endpoint: the connection is closed, as with kube-proxy's reject rule
	}
	start := px.next.Add(1)
	var up net.Conn
	var err error
	for i := range backs {
		addr := backs[(int(start)+i)%len(backs)]
		up, err = net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			break
		}
	}
	if up == nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, conn)
	go pipe(conn, up)
	<-done
	<-done
}

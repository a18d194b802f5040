package main

// The Node: registration, the Ready condition and heartbeats every 10 s, the Lease in
// kube-node-lease renewed every 10 s, and the not-ready taint removed once Ready (which
// kube-controller-manager's node-lifecycle controller would also do).

import (
	"bufio"
	"context"
	"log"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const heartbeat = 10 * time.Second

func nodeMemoryBytes() uint64 {
	return meminfo()["MemTotal"]
}

func nodeCPUs() int { return runtime.NumCPU() }

// meminfo reads /proc/meminfo in bytes.
func meminfo() map[string]uint64 {
	out := map[string]uint64{}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.Replace(sc.Text(), ":", " ", 1))
		if len(fields) >= 2 {
			if v, err := strconv.ParseUint(fields[1], 10, 64); err == nil {
				if len(fields) == 3 && fields[2] == "kB" {
					v *= 1024
				}
				out[fields[0]] = v
			}
		}
	}
	return out
}

func (k *kubelet) nodeStatus(prev *corev1.NodeStatus) corev1.NodeStatus {
	mem := resource.NewQuantity(int64(nodeMemoryBytes()), resource.BinarySI)
	cpu := resource.NewQuantity(int64(nodeCPUs()), resource.DecimalSI)
	res := corev1.ResourceList{
		corev1.ResourceCPU:              *cpu,
		corev1.ResourceMemory:           *mem,
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
	}
	now := metav1.Now()
	since := func(t corev1.NodeConditionType, s corev1.ConditionStatus) metav1.Time {
		if prev != nil {
			for _, c := range prev.Conditions {
				if c.Type == t && c.Status == s {
					return c.LastTransitionTime
				}
			}
		}
		return now
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, LastHeartbeatTime: now, LastTransitionTime: since(t, s), Reason: reason, Message: msg}
	}
	return corev1.NodeStatus{
		Capacity:    res,
		Allocatable: res,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status (oomgate kube-rig stand-in)"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
			{Type: corev1.NodeHostName, Address: k.cfg.nodeName},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(k.cfg.port)}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID: "oomgate-kube-rig", SystemUUID: "oomgate-kube-rig", BootID: "oomgate-kube-rig",
			KernelVersion: kernelVersion(), OSImage: "oomgate kube-rig", ContainerRuntimeVersion: "rig://0.1.0",
			KubeletVersion: "v1.36.3", OperatingSystem: "linux", Architecture: runtime.GOARCH,
		},
	}
}

func kernelVersion() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func (k *kubelet) registerNode() error {
	ctx, cancel := context.WithTimeout(k.ctx, 30*time.Second)
	defer cancel()
	nodes := k.cs.CoreV1().Nodes()
	node, err := nodes.Get(ctx, k.cfg.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.cfg.nodeName, Labels: map[string]string{
			"kubernetes.io/hostname": k.cfg.nodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": runtime.GOARCH,
			"oomgate.dev/kube-rig": "true"}}}
		node, err = nodes.Create(ctx, node, metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	return k.updateNode(ctx)
}

func (k *kubelet) updateNode(ctx context.Context) error {
	nodes := k.cs.CoreV1().Nodes()
	node, err := nodes.Get(ctx, k.cfg.nodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	node.Status = k.nodeStatus(&node.Status)
	node, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	var keep []corev1.Taint
	for _, t := range node.Spec.Taints {
		if t.Key != corev1.TaintNodeNotReady && t.Key != corev1.TaintNodeUnreachable {
			keep = append(keep, t)
		}
	}
	if len(keep) != len(node.Spec.Taints) {
		node.Spec.Taints = keep
		if _, err := nodes.Update(ctx, node, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			return err
		}
	}
	return nil
}

func (k *kubelet) renewLease(ctx context.Context) error {
	leases := k.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	dur := int32(40)
	holder := k.cfg.nodeName
	lease, err := leases.Get(ctx, k.cfg.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, nerr := k.cs.CoreV1().Nodes().Get(ctx, k.cfg.nodeName, metav1.GetOptions{})
		if nerr != nil {
			return nerr
		}
		lease = &coordv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.cfg.nodeName, Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}},
			Spec: coordv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur, RenewTime: &now},
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds, lease.Spec.RenewTime = &holder, &dur, &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

func (k *kubelet) nodeLoop() {
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(k.ctx, 8*time.Second)
		if err := k.renewLease(ctx); err != nil {
			log.Printf("lease: %v", err)
		}
		if err := k.updateNode(ctx); err != nil {
			log.Printf("node status: %v", err)
		}
		cancel()
		select {
		case <-t.C:
		case <-k.ctx.Done():
			return
		}
	}
}

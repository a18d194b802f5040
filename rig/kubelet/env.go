package main

// The container environment and `$(VAR)` expansion, as the kubelet does them
// (k8s.io/kubernetes/third_party/forked/golang/expansion): `$$` is a literal `$`, `$(NAME)` is
// the value of NAME if it is defined so far, else left as written.

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func (k *kubelet) fieldValue(pod *corev1.Pod, ip, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return ip, nil
	case "status.hostIP", "status.hostIPs":
		return "127.0.0.1", nil
	}
	if strings.HasPrefix(path, "metadata.labels['") && strings.HasSuffix(path, "']") {
		return pod.Labels[path[len("metadata.labels['"):len(path)-2]], nil
	}
	if strings.HasPrefix(path, "metadata.annotations['") && strings.HasSuffix(path, "']") {
		return pod.Annotations[path[len("metadata.annotations['"):len(path)-2]], nil
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

func resourceValue(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	var q resource.Quantity
	var ok bool
	switch {
	case strings.HasPrefix(ref.Resource, "limits."):
		q, ok = c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(ref.Resource, "limits."))]
	case strings.HasPrefix(ref.Resource, "requests."):
		q, ok = c.Resources.Requests[corev1.ResourceName(strings.TrimPrefix(ref.Resource, "requests."))]
	default:
		return "", fmt.Errorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	if !ok {
		// The kubelet falls back to the node's allocatable; report the node's memory/cpu.
		if strings.HasSuffix(ref.Resource, ".memory") {
			return strconv.FormatUint(nodeMemoryBytes(), 10), nil
		}
		return strconv.Itoa(nodeCPUs()), nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if strings.HasSuffix(ref.Resource, ".cpu") {
		// round up, as the kubelet does
		v := (q.MilliValue() + divisor.MilliValue() - 1) / divisor.MilliValue()
		return strconv.FormatInt(v, 10), nil
	}
	v := (q.Value() + divisor.Value() - 1) / divisor.Value()
	return strconv.FormatInt(v, 10), nil
}

// containerEnv builds the environment of container c in pod: envFrom, then env in order (each
// expanded against what came before), then the rig's own variables if the spec does not set them.
func (k *kubelet) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, ip string) (map[string]string, []string, error) {
	vars := map[string]string{}
	var order []string
	set := func(name, value string) {
		if _, ok := vars[name]; !ok {
			order = append(order, name)
		}
		vars[name] = value
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := k.cs.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional {
					continue
				}
				return nil, nil, fmt.Errorf("configmap %q: %w", from.ConfigMapRef.Name, err)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := k.cs.CoreV1().Secrets(pod.Namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if from.SecretRef.Optional != nil && *from.SecretRef.Optional {
					continue
				}
				return nil, nil, fmt.Errorf("secret %q: %w", from.SecretRef.Name, err)
			}
			data = map[string]string{}
			for key, v := range s.Data {
				data[key] = string(v)
			}
		}
		for key, v := range data {
			set(from.Prefix+key, v)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vars))
			continue
		}
		vf := e.ValueFrom
		var v string
		var err error
		switch {
		case vf.FieldRef != nil:
			v, err = k.fieldValue(pod, ip, vf.FieldRef.FieldPath)
		case vf.ResourceFieldRef != nil:
			v, err = resourceValue(c, vf.ResourceFieldRef)
		case vf.ConfigMapKeyRef != nil:
			var cm *corev1.ConfigMap
			cm, err = k.cs.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, vf.ConfigMapKeyRef.Name, metav1.GetOptions{})
			if err == nil {
				var ok bool
				if v, ok = cm.Data[vf.ConfigMapKeyRef.Key]; !ok {
					err = fmt.Errorf("configmap %q has no key %q", vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key)
				}
			}
			if err != nil && vf.ConfigMapKeyRef.Optional != nil && *vf.ConfigMapKeyRef.Optional {
				continue
			}
		case vf.SecretKeyRef != nil:
			var s *corev1.Secret
			s, err = k.cs.CoreV1().Secrets(pod.Namespace).Get(ctx, vf.SecretKeyRef.Name, metav1.GetOptions{})
			if err == nil {
				b, ok := s.Data[vf.SecretKeyRef.Key]
				if !ok {
					err = fmt.Errorf("secret %q has no key %q", vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
				}
				v = string(b)
			}
			if err != nil && vf.SecretKeyRef.Optional != nil && *vf.SecretKeyRef.Optional {
				continue
			}
		default:
			err = fmt.Errorf("env %s: unsupported valueFrom", e.Name)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		set(e.Name, v)
	}
	defaults := [][2]string{
		{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		{"HOSTNAME", pod.Name},
		{"HOME", "/root"},
		{"POD_IP", ip},
	}
	for _, d := range defaults {
		if _, ok := vars[d[0]]; !ok {
			set(d[0], d[1])
		}
	}
	return vars, order, nil
}

//! The rig's container runtime: every container is a real `oomgate demo-service` process that
//! joins its own memory cgroup (with the container's limit) between fork and exec, so the kernel
//! charges and OOM-kills it exactly as under containerd. Processes are forked by one dedicated
//! spawner thread with `PR_SET_PDEATHSIG`, so they die with the rig even if the test process is
//! killed. Pod creation (ADDED) and graceful deletion (MODIFIED with deletionTimestamp, SIGTERM,
//! SIGKILL through the cgroup after 3 s, DELETED) live here; restarts and readiness are the
//! `kubelet` module's.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chrono::Utc;
use oomgate::memory::cgroup::MemoryCgroup;

use super::state::{ContainerRt, Instance, Kind, PodRt, Shared, State};

const TERM_GRACE: Duration = Duration::from_secs(3);

type Job = (Command, mpsc::Sender<io::Result<Child>>);

/// Forks every container process from one long-lived thread, so `PR_SET_PDEATHSIG` (which
/// fires when the forking *thread* ends) only fires when the rig goes away.
pub(super) struct Spawner {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Spawner {
    pub fn new() -> Spawner {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = thread::Builder::new()
            .name("sim-cluster-spawner".to_string())
            .spawn(move || {
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the spawner thread");
        Spawner {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }
    }

    pub fn spawn(&self, cmd: Command) -> io::Result<Child> {
        let (reply_tx, reply_rx) = mpsc::channel();
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let tx = tx.ok_or_else(|| io::Error::other("the cluster is shutting down"))?;
        tx.send((cmd, reply_tx))
            .map_err(|_| io::Error::other("the spawner thread is gone"))?;
        reply_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| io::Error::other("the spawner thread did not answer"))?
    }

    pub fn stop(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// A free loopback port (the OS picks it; the process binds it right after).
pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// In the forked child: die with the spawner thread, then join the cgroup (async-signal-safe
/// calls only: prctl, getpid, open, write, close; no allocation).
fn child_setup(procs: &CString) -> io::Result<()> {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut pid = std::process::id();
    loop {
        at -= 1;
        digits[at] = b'0' + (pid % 10) as u8;
        pid /= 10;
        if pid == 0 || at == 0 {
            break;
        }
    }
    // SAFETY: plain syscalls on a valid NUL-terminated path and a live stack buffer.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, digits[at..].as_ptr().cast(), digits.len() - at);
        let err = io::Error::last_os_error();
        libc::close(fd);
        if n < 0 {
            return Err(err);
        }
    }
    Ok(())
}

/// Start one instance of container `c` of pod `pod`: a fresh cgroup, a new container id.
pub(super) fn start_instance(
    shared: &Shared,
    st: &mut State,
    pod: &str,
    c: &ContainerRt,
) -> Result<Instance, String> {
    let cgroup = MemoryCgroup::create(&format!("sim-{pod}-{}", c.tpl.name), c.tpl.limit)
        .map_err(|e| format!("memory cgroup for {pod}/{}: {e}", c.tpl.name))?;
    let procs = CString::new(cgroup.procs_file().as_os_str().as_bytes())
        .map_err(|_| "cgroup path with a NUL byte".to_string())?;
    let log_path = shared.log_dir.join(format!("{pod}_{}.log", c.tpl.name));
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&shared.bin);
    cmd.arg("demo-service")
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", c.port))
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(c.tpl.env.iter().map(|(k, v)| (k, v)))
        .envs(c.extra_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .process_group(0);
    // SAFETY: the closure runs in the forked child and only makes async-signal-safe calls on
    // data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || child_setup(&procs));
    }
    let child = shared.spawner.spawn(cmd).map_err(|e| {
        format!(
            "start {} for {pod}/{}: {e}",
            shared.bin.display(),
            c.tpl.name
        )
    })?;
    Ok(Instance {
        pid: child.id(),
        child,
        cgroup,
        id: st.rand_hex(64),
        started: Utc::now(),
    })
}

/// Stop an instance: SIGTERM, up to 3 s to exit, then SIGKILL everything in its cgroup and
/// remove the cgroup; the process is reaped. Blocking.
pub(super) fn terminate(mut inst: Instance, graceful: bool) {
    if graceful {
        if let Ok(pid) = i32::try_from(inst.pid) {
            // SAFETY: kill(2) with a positive pid of our own child.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline {
            match inst.child.try_wait() {
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                _ => break,
            }
        }
    }
    let _ = inst.cgroup.remove();
    let _ = inst.child.kill();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match inst.child.try_wait() {
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            _ => break,
        }
    }
}

/// Create pod number `slot` of `workload`, start its containers and commit it (ADDED).
pub(super) fn create_pod(
    shared: &Shared,
    st: &mut State,
    workload: &str,
    slot: usize,
) -> Result<String, String> {
    let ns = shared.cfg.namespace.clone();
    let suffix = st.rand_from(b"bcdfghjklmnpqrstvwxz2456789", 5);
    let uid = st.uid();
    let pause_id = st.rand_hex(64);
    let wl = st
        .workloads
        .get(workload)
        .ok_or_else(|| format!("no workload {workload}"))?;
    let (name, mut labels) = match wl.kind {
        Kind::Deployment => (
            format!("{}-{}-{suffix}", wl.name, wl.hash),
            vec![("pod-template-hash", wl.hash.clone())],
        ),
        Kind::StatefulSet => {
            let name = format!("{}-{slot}", wl.name);
            (
                name.clone(),
                vec![
                    ("apps.kubernetes.io/pod-index", slot.to_string()),
                    (
                        "controller-revision-hash",
                        format!("{}-{}", wl.name, wl.hash),
                    ),
                    ("statefulset.kubernetes.io/pod-name", name),
                ],
            )
        }
    };
    labels.push(("app", wl.name.clone()));
    let extra_env = wl.per_replica.as_ref().map(|f| f(slot)).unwrap_or_default();
    let now = Utc::now();
    let mut pod = PodRt {
        name: name.clone(),
        uid,
        workload: workload.to_string(),
        slot,
        created: now,
        labels: labels
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        containers: wl
            .template
            .containers
            .iter()
            .map(|tpl| ContainerRt {
                tpl: tpl.clone(),
                port: free_port(),
                extra_env: extra_env.clone(),
                inst: None,
                restart_count: 0,
                crash_streak: 0,
                last_terminated: None,
                restart_at: None,
                backoff_secs: 0,
                ready: false,
                stale: None,
            })
            .collect(),
        deleting: None,
        last_ready: false,
        ready_changed: now,
        pause_id,
    };
    for i in 0..pod.containers.len() {
        let inst = start_instance(shared, st, &name, &pod.containers[i]);
        match inst {
            Ok(inst) => pod.containers[i].inst = Some(inst),
            Err(e) => {
                for c in &mut pod.containers {
                    if let Some(inst) = c.inst.take() {
                        terminate(inst, false);
                    }
                }
                return Err(e);
            }
        }
    }
    st.pods.insert(name.clone(), pod);
    st.refresh_pod(&ns, &name);
    Ok(name)
}

/// Mark pods as terminating (MODIFIED with deletionTimestamp), stop their processes (SIGTERM,
/// then SIGKILL), then remove them (DELETED). Blocking; the processes stop in parallel.
pub(super) fn delete_pods(shared: &Shared, names: &[String]) {
    let ns = shared.cfg.namespace.clone();
    let taken: Vec<Instance> = shared.update(|st| {
        let mut taken = Vec::new();
        for name in names {
            if let Some(pod) = st.pods.get_mut(name) {
                pod.deleting = Some(Utc::now());
                for c in &mut pod.containers {
                    c.ready = false;
                    taken.extend(c.inst.take());
                }
                st.refresh_pod(&ns, name);
            }
        }
        taken
    });
    thread::scope(|s| {
        for inst in taken {
            s.spawn(move || terminate(inst, true));
        }
    });
    shared.update(|st| {
        for name in names {
            if let Some(pod) = st.pods.remove(name) {
                st.remove::<k8s_openapi::api::core::v1::Pod>(name);
                st.metrics.remove(name);
                st.refresh_workload(&ns, &pod.workload);
            }
        }
    });
}

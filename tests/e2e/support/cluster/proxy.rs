//! The Service of a workload: a TCP proxy on its own loopback port that sends each new
//! connection to the next ready pod (round robin over the first container of every pod that is
//! ready and not terminating), like kube-proxy balancing connections — not requests — over the
//! Service's ready endpoints. With no ready pod the connection is closed at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::state::Shared;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The port of the next ready pod of `workload`, advancing the round robin.
fn pick(shared: &Shared, workload: &str, next: &mut usize) -> Option<u16> {
    let st = shared.lock();
    let ready: Vec<u16> = st
        .pods
        .values()
        .filter(|p| p.workload == workload && p.ready())
        .filter_map(|p| p.containers.first().map(|c| c.port))
        .collect();
    if ready.is_empty() {
        return None;
    }
    let port = ready[*next % ready.len()];
    *next = next.wrapping_add(1);
    Some(port)
}

/// Accept and forward connections until the cluster shuts down.
pub(super) async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>, workload: String) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        eprintln!("sim-cluster: cannot use the service listener of {workload}");
        return;
    };
    let mut shutdown = shared.shutdown.subscribe();
    let mut next = 0usize;
    loop {
        let (mut inbound, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Some(port) = pick(&shared, &workload, &mut next) else {
            drop(inbound);
            continue;
        };
        let mut stop = shared.shutdown.subscribe();
        tokio::spawn(async move {
            let connect = TcpStream::connect(("127.0.0.1", port));
            let Ok(Ok(mut outbound)) = tokio::time::timeout(CONNECT_TIMEOUT, connect).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = stop.changed() => {}
            }
        });
    }
}

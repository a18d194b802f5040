//! The reference for `scripts/bench-goose`: a hand-written Goose attack, the way the Goose book
//! writes one (a transaction function, `user.get`), run with the same test plan oomgate uses.
//! Prints `requests=N seconds=S rps=R` on stdout.
//!
//! Usage: goose_reference HOST USERS HOLD_SECS PATH

use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::prelude::*;

async fn get_path(user: &mut GooseUser) -> TransactionResult {
    let path = std::env::var("REF_PATH").unwrap_or_else(|_| "/".into());
    let goose = user.get(&path).await?;
    if let Ok(r) = goose.response {
        let _ = r.bytes().await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: goose_reference HOST USERS HOLD_SECS PATH");
        std::process::exit(2);
    }
    std::env::set_var("REF_PATH", &args[4]);
    let plan = format!("{u},1s;{u},{h}s;0,0s", u = args[2], h = args[3]);
    let mut config = GooseConfiguration::default();
    config.host = Some(args[1].clone());
    config.no_telnet = true;
    config.no_websocket = true;
    config.no_print_metrics = true;
    config.quiet = 1;
    let metrics = GooseAttack::initialize_with_config(config)?
        .register_scenario(scenario!("reference").register_transaction(transaction!(get_path)))
        .set_default(GooseDefault::TestPlan, plan.as_str())?
        .execute()
        .await?;
    let requests: usize = metrics
        .requests
        .values()
        .map(|a| a.success_count + a.fail_count)
        .sum();
    let start = metrics.history.first().map(|h| h.timestamp);
    let end = metrics.history.last().map(|h| h.timestamp);
    let secs = match (start, end) {
        (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
        _ => metrics.duration as f64,
    };
    println!(
        "requests={requests} seconds={secs:.3} rps={:.1}",
        requests as f64 / secs
    );
    Ok(())
}

//! The subcommands: `run`, `check`, `demo`, `report comment`, `completions` and the hidden `demo-service`. Each
//! turns its arguments into validated settings, calls the library, writes the reports and
//! returns the exit code. Every error before a verdict exists is exit code 2.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{
    CheckArgs, Cli, Command, CommentArgs, CommentTargetArgs, CommentTo, DemoArgs, Format,
    JudgeArgs, OutputArgs, OverrideArgs, ReportCommand, RunArgs,
};
use crate::cluster::ClusterAccess;
use crate::comment::{self, CommentRequest, Forge, Posted, Resolved};
use crate::report::json::JsonReporter;
use crate::report::terminal::TerminalReporter;
use crate::report::{ReportView, Reporter};
use crate::run::{self, RunContext, RunResult};
use crate::scenario::{self, Overrides, Purpose, Scenario, WorkloadSpec};
use crate::units::{format_bytes, format_duration, format_percent};

/// The embedded demo scenario (also `scenarios/demo.yaml`).
pub const DEMO_SCENARIO: &str = include_str!("../scenarios/demo.yaml");

/// Entry point for the binary: returns the exit code.
pub fn main(cli: Cli) -> Result<u8> {
    let verbosity = if cli.quiet {
        -1
    } else {
        cli.verbose.min(3) as i8
    };
    match cli.command {
        Command::DemoService(args) => crate::demo_service::run_blocking(args).map(|()| 0),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "oomgate", &mut std::io::stdout());
            Ok(0)
        }
        command => {
            crate::logging::init(verbosity);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(async move {
                run::install_signal_handlers();
                match command {
                    Command::Run(args) => cmd_run(args).await,
                    Command::Check(args) => cmd_check(args).await,
                    Command::Judge(args) => cmd_judge(args).await,
                    Command::Demo(args) => cmd_demo(args).await,
                    Command::Report(r) => match r.command {
                        ReportCommand::Comment(args) => cmd_report_comment(args).await,
                    },
                    Command::Completions { .. } | Command::DemoService(_) => {
                        unreachable!("handled above")
                    }
                }
            })
        }
    }
}

fn overrides(o: &OverrideArgs) -> Overrides {
    Overrides {
        namespace: o.namespace.clone(),
        target_url: o.target_url.clone(),
        purpose: Purpose::Run,
    }
}

/// Variables a scenario may use without exporting them: `OOMGATE_BIN` is this binary.
fn builtin_var(name: &str) -> Option<String> {
    match name {
        "OOMGATE_BIN" => std::env::current_exe()
            .ok()
            .map(|p| p.display().to_string()),
        _ => None,
    }
}

fn load_scenario(path: &Path, o: &OverrideArgs) -> Result<Scenario> {
    load_scenario_for(path, o, Purpose::Run)
}

fn load_scenario_for(path: &Path, o: &OverrideArgs, purpose: Purpose) -> Result<Scenario> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the scenario file", path.display()))?;
    let overrides = Overrides {
        purpose,
        ..overrides(o)
    };
    Ok(scenario::parse(path, &text, &overrides, |n| {
        std::env::var(n).ok().or_else(|| builtin_var(n))
    })?)
}

/// The report directory, checked for writability before any load starts.
struct OutputDir {
    dir: PathBuf,
    format: Format,
}

impl OutputDir {
    fn prepare(o: &OutputArgs) -> Result<OutputDir> {
        std::fs::create_dir_all(&o.out).with_context(|| {
            format!(
                "--out {}: cannot create the report directory",
                o.out.display()
            )
        })?;
        let probe = o.out.join(".oomgate-write-test");
        std::fs::write(&probe, b"").with_context(|| {
            format!(
                "--out {}: the report directory is not writable",
                o.out.display()
            )
        })?;
        let _ = std::fs::remove_file(probe);
        Ok(OutputDir {
            dir: o.out.clone(),
            format: o.format,
        })
    }

    /// Write every report file, then the summary to stdout. Returns the exit code.
    fn finish(&self, sc: &Scenario, res: &RunResult) -> Result<u8> {
        let view = ReportView::build(&res.run, &res.verdict, &sc.policy);
        // report.json's bytes, kept for `--format json` so the report is rendered once.
        let mut json = Vec::new();
        for r in &crate::report::all_file_reporters() {
            let path = self.dir.join(r.file_name());
            let mut buf = Vec::new();
            r.render(&view, &mut buf)
                .with_context(|| format!("rendering {}", r.name()))?;
            std::fs::write(&path, &buf).with_context(|| format!("writing {}", path.display()))?;
            if r.file_name() == JsonReporter.file_name() {
                json = buf;
            }
        }
        let mut stdout = std::io::stdout().lock();
        match self.format {
            Format::Json => stdout.write_all(&json)?,
            Format::Human => {
                let color =
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                TerminalReporter { color }.render(&view, &mut stdout)?;
                writeln!(stdout, "reports: {}", self.dir.display())?;
            }
        }
        stdout.flush()?;
        Ok(run::interrupted().unwrap_or(res.verdict.exit_code()))
    }
}

async fn cmd_run(args: RunArgs) -> Result<u8> {
    let sc = load_scenario(&args.scenario, &args.overrides)?;
    let out = OutputDir::prepare(&args.output)?;
    let ctx = RunContext {
        access: access(&args.overrides),
        out_dir: args.output.out.clone(),
        baseline: baseline(&args.output)?,
    };
    let res = run::execute(&sc, &ctx).await?;
    let code = out.finish(&sc, &res)?;
    comment_after_run(&args.output).await;
    Ok(code)
}

async fn cmd_judge(args: JudgeArgs) -> Result<u8> {
    let sc = load_scenario_for(&args.scenario, &args.overrides, Purpose::Judge)?;
    let out = OutputDir::prepare(&args.output)?;
    let ctx = RunContext {
        access: access(&args.overrides),
        out_dir: args.output.out.clone(),
        baseline: baseline(&args.output)?,
    };
    let res = run::judge_k6(&sc, &args.k6_results, args.k6_lenient, &ctx).await?;
    let code = out.finish(&sc, &res)?;
    comment_after_run(&args.output).await;
    Ok(code)
}

/// `--comment`: post summary.md once the reports are written. Whatever happens, the exit code
/// stays the verdict's: a failure to post is a warning.
async fn comment_after_run(o: &OutputArgs) {
    if !o.comment || run::interrupted().is_some() {
        return;
    }
    post_comment(&o.out, &o.comment_target).await;
}

async fn cmd_report_comment(args: CommentArgs) -> Result<u8> {
    // A missing summary.md is a usage error (exit 2): nothing was asked of any API yet.
    comment::read_summary(&args.dir)?;
    post_comment(&args.dir, &args.target).await;
    Ok(0)
}

/// Posts `dir/summary.md` on the review, or updates oomgate's comment there; logs what it did or
/// why it could not (a warning, never an error).
async fn post_comment(dir: &Path, t: &CommentTargetArgs) {
    let req = CommentRequest {
        forge: match t.comment_to {
            CommentTo::Auto => None,
            CommentTo::Gitlab => Some(Forge::GitLab),
            CommentTo::Github => Some(Forge::GitHub),
        },
        token_env: t.comment_token_env.clone(),
        key: t.comment_key.clone(),
        number: t.comment_number,
    };
    let outcome = async {
        let summary = comment::read_summary(dir)?;
        let target = match comment::resolve(&req, |n| std::env::var(n).ok())? {
            Resolved::Target(t) => t,
            Resolved::NoReview(why) => return Ok(Err(why)),
        };
        let body = comment::body(&summary, &target);
        comment::post(&target, &body).await.map(|p| Ok((p, target)))
    };
    match outcome.await {
        Ok(Ok((Posted::Created { id }, target))) => {
            log::info!("comment {id} posted on {}", target.review())
        }
        Ok(Ok((Posted::Updated { id }, target))) => {
            log::info!("comment {id} updated on {}", target.review())
        }
        Ok(Err(why)) => log::info!("{why}"),
        Err(e) => log::warn!("the comment was not posted: {e}"),
    }
}

/// The `--baseline` report, read before any load starts.
fn baseline(o: &OutputArgs) -> Result<Option<crate::model::Baseline>> {
    o.baseline
        .as_deref()
        .map(|p| {
            crate::analysis::baseline::read_baseline(p)
                .with_context(|| format!("--baseline {}", p.display()))
        })
        .transpose()
}

fn access(o: &OverrideArgs) -> ClusterAccess {
    ClusterAccess {
        kubeconfig: o.kubeconfig.clone(),
        context: o.context.clone(),
    }
}

async fn cmd_demo(args: DemoArgs) -> Result<u8> {
    let port = free_port().context("finding a free loopback port for the demo service")?;
    let leak = args.leak;
    let lookup = move |n: &str| match n {
        "DEMO_PORT" => Some(port.to_string()),
        // 8 KiB a request stays under the demo's 220 MiB cap for the whole 20 s plan (at most
        // ~13,000 requests): growth that stops at a cap is a bounded cache, not a leak.
        "DEMO_KEEP_PER_REQUEST" if leak => Some("8Ki".to_string()),
        "DEMO_KEEP_PER_REQUEST" => Some("0".to_string()),
        _ => std::env::var(n).ok().or_else(|| builtin_var(n)),
    };
    let path = Path::new("scenarios/demo.yaml (embedded)");
    let sc = scenario::parse(path, DEMO_SCENARIO, &Overrides::default(), lookup)?;
    let out = OutputDir::prepare(&args.output)?;
    let ctx = RunContext {
        out_dir: args.output.out.clone(),
        baseline: baseline(&args.output)?,
        ..RunContext::default()
    };
    let res = run::execute(&sc, &ctx).await?;
    let code = out.finish(&sc, &res)?;
    comment_after_run(&args.output).await;
    Ok(code)
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

async fn cmd_check(args: CheckArgs) -> Result<u8> {
    let sc = load_scenario(&args.scenario, &args.overrides)?;
    let mut o = std::io::stdout().lock();
    writeln!(o, "scenario {} ({}): OK", sc.name, sc.file.display())?;
    let stages: Vec<String> = sc.load.stages.iter().map(|s| s.describe()).collect();
    writeln!(
        o,
        "  load: {} driver, {} stages over {}",
        sc.load.driver,
        stages.len(),
        format_duration(sc.load.total_duration())
    )?;
    for s in &stages {
        writeln!(o, "    {s}")?;
    }
    if let Some(url) = &sc.target_url {
        writeln!(o, "  target: {}", crate::redact::url(url))?;
    }
    writeln!(
        o,
        "  memory: {} source every {}; fail above limit × (1 − {}); at least {} of ticks must bring data",
        sc.memory.source,
        format_duration(sc.memory.interval),
        format_percent(sc.policy.headroom),
        format_percent(sc.policy.min_coverage)
    )?;
    match &sc.workload {
        WorkloadSpec::Local(l) => {
            writeln!(o, "  workload: local command {:?}", l.command)?;
            let allowed = l
                .limit
                .map(|lim| (lim as f64 * (1.0 - sc.policy.headroom)) as u64);
            writeln!(
                o,
                "    container {}: limit {} (from {}), allowed peak {}, request {}",
                l.container,
                l.limit.map(format_bytes).unwrap_or_else(|| "none".into()),
                l.limit_from,
                allowed.map(format_bytes).unwrap_or_else(|| "-".into()),
                l.request.map(format_bytes).unwrap_or_else(|| "none".into())
            )?;
            run::check_local(&sc, l, &mut o)?;
            Ok(0)
        }
        WorkloadSpec::Kubernetes(k) => {
            run::check_kubernetes(&sc, k, &access(&args.overrides), &mut o).await?;
            writeln!(o, "ready to gate")?;
            Ok(0)
        }
    }
}

//! The command line, as clap derive structs only. `app.rs` turns these into validated settings
//! before anything runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  oomgate demo                          # the bundled demo service under a 256Mi limit: passes
  oomgate demo --leak                   # the same service keeping memory per request: fails
  oomgate check scenarios/demo.yaml     # parse and preflight a scenario, no load
  oomgate run scenarios/demo.yaml --out oomgate-report
  oomgate judge scenarios/checkout-api.yaml --k6-results results.json
  oomgate report comment oomgate-report # summary.md as the merge/pull request's comment
  oomgate completions bash > /etc/bash_completion.d/oomgate

Exit codes: 0 pass, 1 the gate failed, 2 usage/configuration/connection error,
            3 inconclusive (not enough memory data), 130/143 interrupted.";

#[derive(Debug, Parser)]
#[command(
    name = "oomgate",
    version,
    about = "A load-test gate that fails a merge request when a service's memory comes too close to its limit",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More output (-v: debug, -vv: also the load generator's own log)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings, errors and the verdict
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: start the load, sample memory the whole time, judge, report
    #[command(
        after_help = "Example:\n  oomgate run scenarios/demo.yaml --out oomgate-report --format json"
    )]
    Run(RunArgs),
    /// Judge a k6 run that already happened: load from its JSON results, memory from Prometheus
    #[command(
        after_help = "Example:\n  k6 run --out json=results.json load.js\n  oomgate judge scenarios/checkout-api.yaml --k6-results results.json"
    )]
    Judge(JudgeArgs),
    /// Preflight a scenario without load: parse it, resolve the workload and its limit, probe the memory source
    #[command(after_help = "Example:\n  oomgate check scenarios/checkout-api.yaml")]
    Check(CheckArgs),
    /// Gate the bundled demo service under a 256Mi limit (about 20 s); needs nothing but this binary
    #[command(
        after_help = "Examples:\n  oomgate demo          # passes\n  oomgate demo --leak   # the service keeps memory per request: fails on leak"
    )]
    Demo(DemoArgs),
    /// Work with a report directory a run wrote
    Report(ReportArgs),
    /// Print a shell completion script
    #[command(after_help = "Example:\n  oomgate completions zsh > ~/.zfunc/_oomgate")]
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// The bundled demo service (used by `demo` and the tests)
    #[command(hide = true)]
    DemoService(crate::demo_service::DemoServiceArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A summary for people
    Human,
    /// report.json on stdout
    Json,
}

/// Settings shared by `run` and `demo`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Directory for report.json (created; checked before the load starts)
    #[arg(
        long,
        value_name = "DIR",
        default_value = "oomgate-report",
        env = "OOMGATE_OUT"
    )]
    pub out: PathBuf,
    /// What to print on stdout
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// An earlier report.json (e.g. the target branch's artifact) to compare peaks and p95 with
    #[arg(long, value_name = "REPORT", env = "OOMGATE_BASELINE")]
    pub baseline: Option<PathBuf>,
    /// Also post summary.md on the merge/pull request (as `oomgate report comment`); a failure
    /// to post only warns, the exit code stays the verdict's
    #[arg(long)]
    pub comment: bool,
    #[command(flatten)]
    pub comment_target: CommentTargetArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CommentTo {
    /// GitLab under GITLAB_CI=true, GitHub under GITHUB_ACTIONS=true
    Auto,
    /// A merge-request note (GitLab API: CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID)
    Gitlab,
    /// A pull-request comment (GitHub API: GITHUB_API_URL, GITHUB_REPOSITORY, the event's PR)
    Github,
}

/// Where `--comment` and `report comment` post. The token is only ever read from the environment.
#[derive(Debug, Args)]
pub struct CommentTargetArgs {
    /// Where to post the comment
    #[arg(long, value_enum, default_value_t = CommentTo::Auto, env = "OOMGATE_COMMENT_TO")]
    pub comment_to: CommentTo,
    /// The environment variable that holds the API token [default: OOMGATE_GITLAB_TOKEN, then
    /// CI_JOB_TOKEN; OOMGATE_GITHUB_TOKEN, then GITHUB_TOKEN]
    #[arg(long, value_name = "VAR", env = "OOMGATE_COMMENT_TOKEN_ENV")]
    pub comment_token_env: Option<String>,
    /// Tells this gate's comment from another gate's on the same review (e.g. the job name)
    #[arg(long, value_name = "KEY", env = "OOMGATE_COMMENT_KEY")]
    pub comment_key: Option<String>,
    /// The merge request iid / pull request number [default: from the CI environment]
    #[arg(long, value_name = "N", env = "OOMGATE_COMMENT_NUMBER")]
    pub comment_number: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Post summary.md on the merge request (GitLab) or pull request (GitHub), updating
    /// oomgate's earlier comment there in place; API failures only warn (exit 0)
    #[command(
        after_help = "Examples:\n  oomgate report comment oomgate-report                 # in GitLab CI or GitHub Actions\n  GITHUB_TOKEN=... oomgate report comment --comment-to github --comment-number 12"
    )]
    Comment(CommentArgs),
}

#[derive(Debug, Args)]
pub struct CommentArgs {
    /// The report directory holding summary.md
    #[arg(value_name = "DIR", default_value = "oomgate-report")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub target: CommentTargetArgs,
}

/// Values that override the scenario file.
#[derive(Debug, Args)]
pub struct OverrideArgs {
    /// Kubernetes namespace (overrides workload.kubernetes.namespace)
    #[arg(long, env = "OOMGATE_NAMESPACE")]
    pub namespace: Option<String>,
    /// Base URL of the load (overrides target.url)
    #[arg(long, env = "OOMGATE_TARGET_URL")]
    pub target_url: Option<String>,
    /// kubeconfig context
    #[arg(long, env = "OOMGATE_CONTEXT")]
    pub context: Option<String>,
    /// kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)
    #[arg(long, env = "OOMGATE_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (YAML)
    pub scenario: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub overrides: OverrideArgs,
}

#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// The scenario file (YAML): workload.kubernetes with memory.source: prometheus
    pub scenario: PathBuf,
    /// k6 `--out json` results (plain or .gz; `-` for stdin; several files = parallel runners)
    #[arg(long = "k6-results", value_name = "FILE", required = true, num_args = 1..)]
    pub k6_results: Vec<PathBuf>,
    /// Skip malformed lines in the k6 results instead of failing (they are counted)
    #[arg(long)]
    pub k6_lenient: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub overrides: OverrideArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The scenario file (YAML)
    pub scenario: PathBuf,
    #[command(flatten)]
    pub overrides: OverrideArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Make the demo service keep memory per request, so the gate fails
    #[arg(long)]
    pub leak: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

//! Command line: clap definitions and the subcommands (analyze, rules, explain, synth).
//! Turns arguments into engine/rules configuration, runs the library, picks the sink and
//! maps the outcome to an exit code: 0 ok, 1 a finding at or above `--fail-on`, 2 usage,
//! I/O or "not a capture" errors. A closed stdout (broken pipe) is not an error.

use crate::engine::{self, Config, Progress};
use crate::report;
use crate::rules::{self, Selection, Severity, Thresholds};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

#[derive(Parser, Debug)]
#[command(
    name = "sipscope",
    version,
    about = "Passive SIP/RTP analyzer: rebuilds calls, registrations and RTP streams from captures and explains what is wrong, citing frames",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// Human-readable report.
    Text,
    /// One JSON document (schema in docs/json.md). Calls are finalised and released as
    /// the capture clock passes them (memory follows the calls in progress); rows wait in
    /// a temporary file until the end.
    Json,
    /// `tshark -q -z rtp,streams` layout, for diffing against Wireshark.
    TsharkRtp,
    /// `tshark -q -z sip,stat` layout.
    TsharkSip,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FailOn {
    Error,
    Warning,
    Info,
}

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files (pcap, pcapng, NetMon 2.x, optionally .gz); several are merged by
    /// time; `-` reads stdin.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<String>,
    /// The two captures are the same traffic seen at two points (phone side first, then
    /// provider side of a NAT/SIP-ALG router): report the first, and compare the SIP
    /// messages of both to show what the router changed (rule alg.two-capture-diff).
    #[arg(long)]
    pub vantage: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options shared by `analyze` and `live`.
#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to this file instead of stdout (created or truncated before the
    /// capture is read, so a path that cannot be written fails at once; one of the
    /// captures is refused).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Worker threads (0 = one per core; 1 = read, decode and analyse on one thread).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Only find RTP announced in SDP (default: also use the RTP heuristic, like
    /// `tshark -o rtp.heuristic_rtp:TRUE`).
    #[arg(long)]
    pub no_heuristic_rtp: bool,
    /// Exit with code 1 when a finding at or above this severity exists.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// Provider policy profile (TOML, see profiles/example-trunk.toml): enables the
    /// policy.* rules.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Thresholds file (TOML; field names as in `sipscope explain RULE`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// NAT binding timeout to assume, seconds (overrides the config file).
    #[arg(long, value_name = "SECONDS")]
    pub nat_timeout: Option<f64>,
    /// Packet loss threshold, percent (overrides the config file).
    #[arg(long, value_name = "PERCENT")]
    pub loss_threshold: Option<f64>,
    /// Run only these rules or families (comma-separated ids, e.g. `sip,qos.loss`).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub rules: Vec<String>,
    /// Do not run these rules or families.
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub disable: Vec<String>,
    /// Colour in the text report.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Show digest usernames in the output (secrets such as digest responses and SDP
    /// crypto keys are never stored).
    #[arg(long)]
    pub show_usernames: bool,
    /// Never show a progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Live capture options.
#[cfg(feature = "live")]
#[derive(clap::Args, Debug)]
pub struct LiveArgs {
    /// Interface to capture on (e.g. eth0, any).
    #[arg(short = 'i', long)]
    pub interface: String,
    /// BPF capture filter (e.g. "udp or tcp port 5060").
    #[arg(long)]
    pub filter: Option<String>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
    /// Stop after this many packets.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse captures: calls, registrations, RTP streams and findings.
    Analyze(AnalyzeArgs),
    /// Capture from a network interface, then analyse (feature `live`, needs libpcap).
    #[cfg(feature = "live")]
    Live(LiveArgs),
    /// List every diagnosis rule (id, severity, title).
    Rules,
    /// Explain one rule: what it detects, why it matters, how to fix it, thresholds.
    Explain {
        /// Rule id, e.g. `sip.call-failed`.
        rule: String,
    },
    /// Generate captures with the deterministic capture builder.
    Synth {
        #[command(subcommand)]
        what: SynthCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum SynthCommand {
    /// Write every fixture scenario (capture + expect.json) into DIR.
    Fixtures { dir: PathBuf },
    /// Write a realistic benchmark capture: N G.711 calls with RTCP, failed calls,
    /// registrations with challenges, OPTIONS keepalives, NATed callers.
    Bench {
        /// Output pcap file (`-` for stdout).
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// Number of calls.
        #[arg(long, default_value_t = 400)]
        calls: u32,
        /// Calls up at the same time.
        #[arg(long, default_value_t = 100)]
        concurrency: u32,
        /// Talk time of each call, seconds.
        #[arg(long, default_value_t = 60)]
        duration: u32,
        /// Random RTP loss ratio (0..1).
        #[arg(long, default_value_t = 0.005)]
        loss: f64,
        /// Arrival jitter, ms.
        #[arg(long, default_value_t = 3.0)]
        jitter_ms: f64,
        /// PRNG seed (the output is a pure function of the parameters).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Phones the calls come from, in turn (0: a new phone for every call). More
        /// than the concurrency.
        #[arg(long, default_value_t = 0)]
        callers: u32,
    },
}

/// Run the binary; returns the process exit code.
pub fn main_exit_code() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return 0;
            }
            eprintln!("sipscope: error: {e:#}");
            2
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Analyze(a) => {
            // The output is created before the captures are read: naming one of them
            // would empty it before the analysis could see a byte.
            if let Some(o) = &a.common.output
                && let Some(c) = a
                    .captures
                    .iter()
                    .find(|c| same_file::is_same_file(c, o).unwrap_or(false))
            {
                eprintln!(
                    "sipscope: error: -o {} is the capture {c}: refusing to overwrite it",
                    o.display()
                );
                return Ok(2);
            }
            if a.vantage {
                if a.captures.len() != 2 {
                    eprintln!(
                        "sipscope: error: --vantage takes exactly two captures: the phone side, then the provider side"
                    );
                    return Ok(2);
                }
                let first = vec![a.captures[0].clone()];
                return run_analysis(&a.common, Some(&a.captures[1]), |cfg, p| {
                    engine::analyze_paths(&first, cfg, p)
                });
            }
            let paths = a.captures.clone();
            if matches!(a.common.format, Format::Json) {
                // JSON streams: calls leave memory as the capture clock passes them.
                return run_json_streamed(&a.common, &paths);
            }
            run_analysis(&a.common, None, |cfg, p| {
                engine::analyze_paths(&paths, cfg, p)
            })
        }
        #[cfg(feature = "live")]
        Command::Live(l) => {
            let src = crate::capture::live::LiveSource::open(
                &l.interface,
                l.filter.as_deref(),
                l.duration.map(std::time::Duration::from_secs),
                l.count,
            )?;
            run_analysis(&l.common, None, move |cfg, p| {
                engine::analyze_source(src, cfg, p)
            })
        }
        Command::Rules => {
            let mut out = std::io::stdout().lock();
            for r in rules::registry() {
                let m = r.meta();
                writeln!(out, "{:<36} {:<8} {}", m.id, m.severity.as_str(), m.title)?;
            }
            Ok(0)
        }
        Command::Explain { rule } => {
            let Some(r) = rules::registry().iter().find(|r| r.meta().id == rule) else {
                eprintln!("sipscope: error: no rule named {rule:?} (see `sipscope rules`)");
                return Ok(2);
            };
            let m = r.meta();
            let mut out = std::io::stdout().lock();
            writeln!(out, "{} ({})\n{}\n", m.id, m.severity.as_str(), m.title)?;
            writeln!(out, "Why it matters:\n  {}\n", m.explanation)?;
            writeln!(out, "How to fix it:\n  {}\n", m.remediation)?;
            writeln!(out, "Thresholds and defaults:\n  {}", m.thresholds)?;
            Ok(0)
        }
        Command::Synth { what } => match what {
            SynthCommand::Bench {
                output,
                calls,
                concurrency,
                duration,
                loss,
                jitter_ms,
                seed,
                callers,
            } => {
                if callers != 0 && callers <= concurrency {
                    eprintln!(
                        "sipscope: error: --callers must exceed --concurrency (a phone would be in two calls on the same ports)"
                    );
                    return Ok(2);
                }
                let p = crate::synth::BenchParams {
                    seed,
                    calls,
                    concurrency,
                    call_duration_s: duration,
                    loss,
                    jitter_ms,
                    callers,
                    ..Default::default()
                };
                let stats = if output.as_os_str() == "-" {
                    crate::synth::bench_capture(std::io::stdout().lock(), &p)?
                } else {
                    let f = std::fs::File::create(&output)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", output.display()))?;
                    crate::synth::bench_capture(f, &p)?
                };
                eprintln!(
                    "{} packets ({} RTP, {} RTCP, {} SIP), {} calls ({} failed, {} NATed)",
                    stats.packets,
                    stats.rtp_packets,
                    stats.rtcp_packets,
                    stats.sip_messages,
                    stats.calls,
                    stats.failed_calls,
                    stats.nat_calls
                );
                Ok(0)
            }
            SynthCommand::Fixtures { dir } => {
                std::fs::create_dir_all(&dir)?;
                for p in crate::synth::write_fixtures(&dir)? {
                    println!("{}", p.display());
                }
                Ok(0)
            }
        },
    }
}

fn load_thresholds(path: &Option<PathBuf>) -> anyhow::Result<Thresholds> {
    match path {
        None => Ok(Thresholds::default()),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        }
    }
}

/// Thresholds (config file, then flags), profile and engine configuration of a run.
fn settings(a: &CommonArgs) -> anyhow::Result<(rules::Thresholds, Option<rules::Profile>, Config)> {
    let mut thresholds = load_thresholds(&a.config)?;
    let profile = match &a.profile {
        Some(p) => {
            Some(rules::Profile::load(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    if let Some(n) = a.nat_timeout {
        thresholds.nat_timeout_s = n;
    }
    if let Some(l) = a.loss_threshold {
        thresholds.loss_pct = l;
    }
    let cfg = Config {
        threads: a.threads,
        heuristic_rtp: !a.no_heuristic_rtp,
        ..Config::default()
    };
    Ok((thresholds, profile, cfg))
}

/// Run `run` with a progress bar on stderr when it is a terminal (and not `--quiet`).
fn with_progress<T>(a: &CommonArgs, run: impl FnOnce(&Progress) -> T) -> T {
    let progress = Progress::default();
    let show_bar = !a.quiet && std::io::stderr().is_terminal();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let bar = show_bar.then(|| {
            s.spawn(|| {
                let pb = indicatif::ProgressBar::new(0);
                pb.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{bar:30} {bytes}/{total_bytes} {msg} ETA {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                let start = std::time::Instant::now();
                while !done.load(Ordering::Relaxed) {
                    pb.set_length(progress.total_bytes.load(Ordering::Relaxed));
                    pb.set_position(progress.bytes.load(Ordering::Relaxed));
                    let frames = progress.frames.load(Ordering::Relaxed);
                    let secs = start.elapsed().as_secs_f64().max(1e-3);
                    let calls = progress.calls.load(Ordering::Relaxed);
                    pb.set_message(format!(
                        "{frames} packets ({:.1} M/s), {calls} calls",
                        frames as f64 / secs / 1e6
                    ));
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                pb.finish_and_clear();
            })
        });
        let r = run(&progress);
        done.store(true, Ordering::Relaxed);
        if let Some(b) = bar {
            let _ = b.join();
        }
        r
    })
}

/// The output: the `-o` file, else stdout, buffered. The buffer holds a few report rows
/// (~7 KB each), so copying them costs one write call per 256 KiB, not one per row.
fn output(a: &CommonArgs) -> anyhow::Result<Box<dyn Write>> {
    const BUF: usize = 256 << 10;
    Ok(match &a.output {
        Some(p) => Box::new(std::io::BufWriter::with_capacity(
            BUF,
            std::fs::File::create(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::with_capacity(
            BUF,
            std::io::stdout().lock(),
        )),
    })
}

/// The exit code `--fail-on` asks for, given the worst finding.
fn exit_code(a: &CommonArgs, worst: Option<Severity>) -> i32 {
    let threshold = a.fail_on.map(|f| match f {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
        FailOn::Info => Severity::Info,
    });
    match (threshold, worst) {
        (Some(t), Some(w)) if w >= t => 1,
        _ => 0,
    }
}

/// `analyze --format json`: streaming finalisation (`report::analyze_streamed`). Each
/// call and its streams are judged and written to a spill file as soon as the capture
/// clock has passed them, so memory follows the calls in progress, not the capture's
/// length; the report is the one the whole model gives.
fn run_json_streamed(a: &CommonArgs, paths: &[String]) -> anyhow::Result<i32> {
    let (thresholds, profile, cfg) = settings(a)?;
    // Opened first: a path that cannot be written fails now, not after the analysis.
    let mut out = output(a)?;
    let sel = Selection {
        only: a.rules.clone(),
        disable: a.disable.clone(),
    };
    let mut run = with_progress(a, |p| {
        report::analyze_streamed(paths, &cfg, Some(p), &thresholds, &sel, profile.as_ref())
    })
    .map_err(|e| match e {
        report::StreamError::Engine(e) => anyhow::Error::from(e),
        e => anyhow::Error::from(e),
    })?;
    run.write_json(&mut out, !a.show_usernames)
        .map_err(|e| match e {
            report::StreamError::Json(j) => anyhow::Error::from(std::io::Error::from(j)),
            e => anyhow::Error::from(e),
        })?;
    out.write_all(b"\n")?;
    out.flush()?;
    drop(out);
    let worst = run.worst();
    // As in `run_analysis`: the process ends here, the OS reclaims the memory at once.
    std::mem::forget(run);
    Ok(exit_code(a, worst))
}

fn run_analysis<F>(a: &CommonArgs, vantage: Option<&str>, run: F) -> anyhow::Result<i32>
where
    F: FnOnce(
        &Config,
        Option<&Progress>,
    ) -> Result<crate::correlate::Analysis, engine::EngineError>,
{
    let (thresholds, profile, cfg) = settings(a)?;
    // Opened first: a path that cannot be written fails now, not after the analysis.
    let mut out = output(a)?;
    let analysis = with_progress(a, |p| run(&cfg, Some(p)))?;
    let sel = Selection {
        only: a.rules.clone(),
        disable: a.disable.clone(),
    };
    let other = match vantage {
        Some(v) => Some(engine::analyze_paths(&[v.to_string()], &cfg, None)?),
        None => None,
    };
    // The rules run on a pool of `--threads` threads (`--threads 1`: this one thread).
    let run_rules = || {
        let run = || {
            rules::run_all(
                &analysis,
                &thresholds,
                &sel,
                profile.as_ref(),
                other.as_ref(),
            )
        };
        match rayon::ThreadPoolBuilder::new()
            .num_threads(a.threads)
            .use_current_thread()
            .build()
        {
            Ok(pool) => pool.install(run),
            Err(_) => run(),
        }
    };
    let redact = !a.show_usernames;
    let color = match a.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => a.output.is_none() && std::io::stdout().is_terminal(),
    };
    // JSON is serialised straight into the (buffered) output, row by row from the model
    // (`write_json_deferred`): no report model, no big string, for 100,000 streams.
    let (rep, worst) = match a.format {
        Format::Json => std::thread::scope(|s| -> std::io::Result<_> {
            // Findings are the last field of the report: with more than one thread the
            // rules run on their own thread while the calls and streams, most of the
            // output, are written; the writer waits for them at the end.
            // `--threads 1` runs them first, on this thread.
            let pending = (a.threads != 1).then(|| s.spawn(run_rules));
            let findings =
                report::write_json_deferred(&mut out, &analysis, redact, || match pending {
                    Some(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
                    None => run_rules(),
                })
                .map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            let worst = findings.iter().map(|f| f.severity).max();
            Ok((None, worst))
        })?,
        _ => {
            let findings = run_rules();
            let worst = findings.iter().map(|f| f.severity).max();
            let rep = report::build(&analysis, findings, redact);
            let text = match a.format {
                Format::Text => report::render_text(&rep, color),
                Format::TsharkRtp => report::render_rtp_streams(&rep),
                _ => report::render_sip_stat(&rep),
            };
            out.write_all(text.as_bytes())?;
            (Some(rep), worst)
        }
    };
    out.flush()?;
    drop(out);
    // The process exits right after this (`main_exit_code` is only called by `main`).
    // Freeing the model and the report, hundreds of thousands of small allocations on a
    // long capture, took ~4 % of a whole run and gives nothing back: the OS reclaims the
    // address space at exit in one go.
    std::mem::forget(rep);
    std::mem::forget(analysis);
    std::mem::forget(other);
    Ok(exit_code(a, worst))
}

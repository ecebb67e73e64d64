//! `payloop bench recon`: generate a settlement report and the matching
//! ledger export of N lines (with mismatches of every class planted at
//! known rates), match them with payloop's streaming matcher in a child
//! process, and with DuckDB and Polars (from PyPI) on the same files and
//! thread count, each engine once per round in turn, then print each one's
//! median wall time (and every run's), lines/s, largest peak RSS, the
//! ratios, and whether all classified every line the same way.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use payloop::clock::Day;
use payloop::domain::recon::files::{self, FileOutcome, LEDGER_HEADER};
use payloop::domain::recon::FeeRule;
use payloop::money::{format_minor, Currency};
use payloop::psp::wire::SETTLEMENT_HEADER;
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The generated PSP's fee schedule (the sandbox's).
pub const FEES: FeeRule = FeeRule {
    bps: 150,
    fixed_minor: 0,
};
pub const TOLERANCE: i64 = 1;
const METHODS: [&str; 3] = ["card", "pay_by_bank", "p2p"];

fn mix(i: u64) -> u64 {
    // SplitMix64: cheap, deterministic variety per line.
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the generator planted: the class counts a correct matcher finds.
/// One generated movement, and the class the bench plants on it.
struct Planted {
    pid: String,
    kind: &'static str,
    reference: String,
    key: String,
    gross: i64,
    theirs_gross: i64,
    fee: i64,
    ours_currency: &'static str,
    method: &'static str,
    in_report: bool,
    in_ledger: bool,
    twice: bool,
    class: &'static str,
}

/// Movement `i`: 2 % refunds and chargebacks, the rest payments; one in a
/// thousand of each planted class at a fixed position.
fn plant(i: u64) -> Result<Planted, BoxError> {
    let h = mix(i);
    let pid = format!("pay_{:026}", i);
    let (kind, reference, gross) = match i % 50 {
        0 => ("refund", format!("rf_{i:020}"), -((h % 5_000) as i64 + 100)),
        1 => (
            "chargeback",
            format!("cb_{i:020}"),
            -((h % 20_000) as i64 + 100),
        ),
        _ => (
            "payment",
            format!("ref_{i:020}"),
            (h % 100_000) as i64 + 100,
        ),
    };
    let key = match kind {
        "refund" => format!("refund:{reference}"),
        _ => format!("{kind}:{pid}"),
    };
    let fee = FEES
        .expected(
            payloop::schema::recon_index::Kind::parse(kind).ok_or("kind")?,
            gross,
        )
        .ok_or("fee")?;
    let mut p = Planted {
        pid,
        kind,
        reference,
        key,
        gross,
        theirs_gross: gross,
        fee,
        ours_currency: "EUR",
        method: METHODS[(h >> 40) as usize % METHODS.len()],
        in_report: true,
        in_ledger: true,
        twice: false,
        class: "matched",
    };
    match (i % 1000, kind) {
        (101, _) => (p.theirs_gross, p.class) = (gross + 1, "amount_mismatch"),
        (202, _) => (p.in_ledger, p.class) = (false, "missing_in_wallet"),
        (303, _) => (p.in_report, p.class) = (false, "missing_at_psp"),
        (404, _) => p.twice = true,
        (505, "payment") => (p.fee, p.class) = (fee + 50, "fee_mismatch"),
        (606, _) => (p.ours_currency, p.class) = ("USD", "currency_mismatch"),
        _ => {}
    }
    Ok(p)
}

pub fn generate(
    dir: &Path,
    n: u64,
) -> Result<(PathBuf, PathBuf, BTreeMap<&'static str, u64>), BoxError> {
    std::fs::create_dir_all(dir)?;
    let report = dir.join(format!("report-{n}.csv"));
    let ledger = dir.join(format!("ledger-{n}.csv"));
    let eur = Currency::parse("EUR")?;
    let day = Day::parse("2026-11-20").ok_or("day")?;
    let mut r = BufWriter::with_capacity(1 << 20, File::create(&report)?);
    let mut l = BufWriter::with_capacity(1 << 20, File::create(&ledger)?);
    writeln!(r, "{SETTLEMENT_HEADER}")?;
    writeln!(l, "{LEDGER_HEADER}")?;
    let mut want: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut lines = 0u64;
    let mut i = 0u64;
    while lines < n {
        let p = plant(i)?;
        *want.entry(p.class).or_default() += 1;
        if p.in_report {
            let line = format!(
                "{},{},{},{},{},{},EUR,{day}\n",
                p.reference,
                p.pid,
                p.kind,
                format_minor(p.theirs_gross, eur),
                format_minor(p.fee, eur),
                format_minor(p.theirs_gross - p.fee, eur)
            );
            let copies = if p.twice { 2 } else { 1 };
            for _ in 0..copies {
                r.write_all(line.as_bytes())?;
            }
            lines += copies;
            if p.twice {
                *want.entry("duplicate").or_default() += 1;
            }
        }
        if p.in_ledger {
            let (key, kind, pid, gross) = (&p.key, p.kind, &p.pid, p.gross);
            let (currency, method) = (p.ours_currency, p.method);
            writeln!(l, "{key},{kind},{pid},{gross},{currency},{method},evt_{i}")?;
        }
        if i % 100_000 == 99_999 {
            writeln!(r, "fee_{i},,fee,0.00,25.00,-25.00,EUR,{day}")?;
            lines += 1;
            *want.entry("fee").or_default() += 1;
        }
        i += 1;
    }
    // On disk before any engine reads them: no engine runs while the
    // files' own write-back competes with it.
    for w in [r, l] {
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    Ok((report, ledger, want))
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The child process: match the two files, print one JSON line.
pub fn worker(report: &Path, ledger: &Path) -> Result<(), BoxError> {
    // Spill beside the inputs (same disk as the files DuckDB reads).
    let tmp = tempfile::tempdir_in(report.parent().unwrap_or(Path::new(".")))?;
    let start = Instant::now();
    let outcome = files::match_files(report, ledger, Some(FEES), TOLERANCE, tmp.path())?;
    let wall_ms = start.elapsed().as_secs_f64() * 1000.0;
    let classes: BTreeMap<&str, u64> = match &outcome {
        FileOutcome::Done(t) => files::class_counts(t)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect(),
        FileOutcome::Malformed(e) => return Err(format!("malformed: {e:?}").into()),
    };
    let lines = match &outcome {
        FileOutcome::Done(t) => t.lines,
        FileOutcome::Malformed(_) => 0,
    };
    println!(
        "{}",
        json!({"engine": "payloop", "wall_ms": wall_ms, "rss_kb": peak_rss_kb(), "lines": lines, "classes": classes})
    );
    Ok(())
}

fn last_json(out: &[u8]) -> Result<Value, BoxError> {
    let text = String::from_utf8_lossy(out);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or("no result line")?;
    Ok(serde_json::from_str(line)?)
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v["classes"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, n)| Some((k.clone(), n.as_u64()?)))
                .filter(|(_, n)| *n > 0)
                .collect()
        })
        .unwrap_or_default()
}

/// The general-purpose engines run on the same files.
#[derive(Debug, Clone, Copy)]
pub struct Peers {
    pub duckdb: bool,
    pub polars: bool,
}

/// One engine's runs: its result lines, in run order.
struct Runs(Vec<Value>);

/// What an engine with no run shows (never the case: a bench runs each at
/// least once).
static NO_RUN: Value = Value::Null;

impl Runs {
    fn first(&self) -> &Value {
        self.0.first().unwrap_or(&NO_RUN)
    }

    fn median_wall_ms(&self) -> f64 {
        let mut walls: Vec<f64> = self
            .0
            .iter()
            .map(|v| v["wall_ms"].as_f64().unwrap_or(0.0))
            .collect();
        walls.sort_by(f64::total_cmp);
        walls.get(walls.len() / 2).copied().unwrap_or(0.0)
    }

    fn peak_rss_kb(&self) -> f64 {
        self.0
            .iter()
            .map(|v| v["rss_kb"].as_f64().unwrap_or(0.0))
            .fold(0.0, f64::max)
    }

    /// The classes, if every run found the same ones.
    fn classes(&self) -> Option<BTreeMap<String, u64>> {
        let first = counts(self.first());
        self.0.iter().all(|v| counts(v) == first).then_some(first)
    }
}

pub fn bench(n: u64, dir: &Path, peers: Peers, runs: usize) -> Result<(), BoxError> {
    let t = Instant::now();
    let (report, ledger, want) = generate(dir, n)?;
    let size = std::fs::metadata(&report)?.len() + std::fs::metadata(&ledger)?.len();
    println!(
        "generated {n} report lines + ledger ({:.0} MB) in {:.1} s",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let scripts: Vec<&str> = [(peers.duckdb, "duckdb.sh"), (peers.polars, "polars.sh")]
        .into_iter()
        .filter_map(|(on, script)| on.then_some(script))
        .collect();
    // Every engine once per round, in turn, so a slow spell of the machine
    // falls on all of them; medians are compared.
    let mut ours = Runs(Vec::new());
    let mut theirs: Vec<Runs> = scripts.iter().map(|_| Runs(Vec::new())).collect();
    for _ in 0..runs.max(1) {
        ours.0.push(run_ours(&report, &ledger)?);
        for (script, runs) in scripts.iter().zip(&mut theirs) {
            runs.0.push(peer(script, &report, &ledger)?);
        }
    }
    let want: BTreeMap<String, u64> = want.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    println!(
        "{} run(s) of each engine, alternating; median wall, largest peak RSS:",
        ours.0.len()
    );
    show(n, &ours);
    println!(
        "payloop classes == planted: {}",
        ours.classes().as_ref() == Some(&want)
    );
    for peer in &theirs {
        show(n, peer);
        compare(&ours, peer);
    }
    Ok(())
}

fn run_ours(report: &Path, ledger: &Path) -> Result<Value, BoxError> {
    let out = Command::new(std::env::current_exe()?)
        .args(["bench", "recon-worker", "--report"])
        .arg(report)
        .arg("--ledger")
        .arg(ledger)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "payloop matcher failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    last_json(&out.stdout)
}

fn show(n: u64, runs: &Runs) {
    let wall = runs.median_wall_ms();
    let walls: Vec<String> = runs
        .0
        .iter()
        .map(|v| format!("{:.0}", v["wall_ms"].as_f64().unwrap_or(0.0)))
        .collect();
    println!(
        "{:<14} wall {:>8.0} ms  {:>10.0} lines/s  peak RSS {:>7.1} MB  runs [{}] ms  classes {}",
        runs.first()["engine"].as_str().unwrap_or("?"),
        wall,
        n as f64 / (wall / 1000.0),
        runs.peak_rss_kb() / 1024.0,
        walls.join(", "),
        runs.classes()
            .map(|c| serde_json::to_string(&c).unwrap_or_default())
            .unwrap_or_else(|| "differ between runs".into())
    );
}

/// Run a peer engine's script (its own venv) on the same files, 2 threads.
fn peer(script: &str, report: &Path, ledger: &Path) -> Result<Value, BoxError> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(script);
    let out = Command::new(path)
        .arg(report)
        .arg(ledger)
        .args([
            "2",
            &FEES.bps.to_string(),
            &FEES.fixed_minor.to_string(),
            &TOLERANCE.to_string(),
        ])
        .output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{script} failed: {err}").into());
    }
    last_json(&out.stdout)
}

fn compare(ours: &Runs, peer: &Runs) {
    let name = peer.first()["engine"].as_str().unwrap_or("?");
    let same = ours.classes().is_some() && ours.classes() == peer.classes();
    println!("{name} classes == payloop classes: {same}");
    println!(
        "payloop / {name} (2 threads each): wall {:.2}x (target ≤ 0.5), peak RSS {:.2}x (target ≤ 0.25)",
        ours.median_wall_ms() / peer.median_wall_ms().max(f64::MIN_POSITIVE),
        ours.peak_rss_kb() / peer.peak_rss_kb().max(f64::MIN_POSITIVE)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_matcher_finds_exactly_what_the_generator_planted() {
        let dir = tempfile::tempdir().unwrap();
        let (report, ledger, want) = generate(dir.path(), 100_100).unwrap();
        assert!(want.keys().count() >= 8, "every class planted: {want:?}");
        let spill = tempfile::tempdir().unwrap();
        let FileOutcome::Done(t) =
            files::match_files(&report, &ledger, Some(FEES), TOLERANCE, spill.path()).unwrap()
        else {
            panic!("the generated files are well formed");
        };
        let got: BTreeMap<&str, u64> = files::class_counts(&t)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(got, want);
        assert_eq!(t.lines, 100_100);
        // A ledger with a bad line is refused, with its line number.
        let text = std::fs::read_to_string(&ledger)
            .unwrap()
            .replacen(",EUR,", ",EUX,", 1);
        std::fs::write(&ledger, text).unwrap();
        let FileOutcome::Malformed(errors) =
            files::match_files(&report, &ledger, Some(FEES), TOLERANCE, spill.path()).unwrap()
        else {
            panic!("a bad currency is refused");
        };
        assert!(
            errors[0].starts_with("ledger line 2: currency"),
            "{errors:?}"
        );
        // Lines in the second half of each file (read by the other thread)
        // are refused with their line numbers in the whole file.
        let mut text = std::fs::read_to_string(&ledger).unwrap();
        let at = text.rfind(",EUR,").unwrap();
        text.replace_range(at..at + 5, ",EUX,");
        let ledger_lines = text.lines().count();
        std::fs::write(&ledger, text).unwrap();
        let mut text = std::fs::read_to_string(&report).unwrap();
        let at = text.rfind(",EUR,").unwrap();
        text.replace_range(at..at + 5, ",EUX,");
        let report_line = text[..at].lines().count();
        std::fs::write(&report, text).unwrap();
        let FileOutcome::Malformed(errors) =
            files::match_files(&report, &ledger, Some(FEES), TOLERANCE, spill.path()).unwrap()
        else {
            panic!("bad currencies are refused");
        };
        let want = [
            format!("line {report_line}: currency"),
            "ledger line 2: currency".to_owned(),
            format!("ledger line {ledger_lines}: currency"),
        ];
        assert_eq!(errors.len(), 3, "{errors:?}");
        for (got, want) in errors.iter().zip(&want) {
            assert!(got.starts_with(want.as_str()), "{got} / {want}");
        }
    }
}

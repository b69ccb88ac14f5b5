//! `ferrosip stats` and `ferrosip monitor`: the running server's counters, read from its
//! `/metrics`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::manage::Client;

/// Series name with its labels (`requests_total{direction="in",method="INVITE"}`) to value.
type Counters = BTreeMap<String, f64>;

/// Parses Prometheus text into counters, without the `ferrosip_` prefix.
fn counters(text: &str) -> anyhow::Result<Counters> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).context("reading the counters")?;
    Ok(scrape
        .samples
        .into_iter()
        .map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            };
            let name = s.metric.trim_start_matches("ferrosip_").to_owned();
            let mut labels: Vec<_> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            labels.sort();
            let key = if labels.is_empty() {
                name
            } else {
                format!("{name}{{{}}}", labels.join(","))
            };
            (key, value)
        })
        .collect())
}

/// `ferrosip stats`: every counter (with `all`, also those still at zero).
pub(crate) fn stats(client: &Client, all: bool) -> anyhow::Result<()> {
    let now = counters(&client.metrics()?)?;
    let width = now.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in now.iter().filter(|(_, v)| all || **v != 0.0) {
        println!("{k:width$}  {v}");
    }
    Ok(())
}

/// `ferrosip monitor`: the counters and their rates, redrawn every `interval`; `count`
/// refreshes, or until interrupted.
pub(crate) fn monitor(
    client: &Client,
    interval: Duration,
    count: Option<u64>,
) -> anyhow::Result<()> {
    let mut before = counters(&client.metrics()?)?;
    let mut at = Instant::now();
    let mut shown = 0;
    while count.is_none_or(|c| shown < c) {
        std::thread::sleep(interval);
        let now = counters(&client.metrics()?)?;
        let secs = at.elapsed().as_secs_f64().max(1e-3);
        at = Instant::now();
        let width = now.keys().map(String::len).max().unwrap_or(0);
        print!("\x1b[2J\x1b[H");
        println!(
            "ferrosip monitor: every {} s, Ctrl-C stops\n",
            interval.as_secs_f64()
        );
        println!(
            "{:width$}  {:>12}  {:>10}",
            "counter", "value", "per second"
        );
        for (k, v) in &now {
            let rate = (v - before.get(k).copied().unwrap_or(0.0)) / secs;
            if *v != 0.0 {
                println!("{k:width$}  {v:>12}  {rate:>10.1}");
            }
        }
        before = now;
        shown += 1;
    }
    Ok(())
}

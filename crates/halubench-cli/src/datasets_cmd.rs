//! `halubench datasets list | fetch | inspect`.

use anyhow::bail;
use halubench_core::task_order;
use halubench_data::hub::{self, HubFile};
use halubench_data::{HubSettings, Registry, Source};

pub fn list(registry: &Registry, hub: &HubSettings) -> anyhow::Result<()> {
    println!("registry: {}", registry.origin);
    println!(
        "hugging face cache: {}{}",
        hub.cache_dir.display(),
        if hub.offline { " (offline)" } else { "" }
    );
    println!();
    for spec in registry.entries() {
        let (location, available) = match &spec.source {
            Source::Embedded => ("built into the binary".to_string(), true),
            Source::File(path) => (path.display().to_string(), path.is_file()),
            Source::Hub {
                repo,
                revision,
                file,
            } => (
                format!("hf://datasets/{repo}@{revision}/{file}"),
                hub::find_in_cache(
                    &hub.cache_dir,
                    HubFile {
                        kind: hub::RepoKind::Dataset,
                        repo,
                        revision,
                        file,
                    },
                )
                .is_some(),
            ),
        };
        let rows = spec.rows.map_or("?".to_string(), |r| r.to_string());
        println!(
            "{:<18} {:>6} rows  {:<13} {}",
            spec.name,
            rows,
            if available {
                "available"
            } else {
                "not available"
            },
            location
        );
        if let Some(description) = &spec.description {
            println!("{:<18} {}", "", description);
        }
        if let Some(license) = &spec.license {
            println!("{:<18} licence: {license}", "");
        }
    }
    Ok(())
}

pub fn fetch(registry: &Registry, hub: &HubSettings, name: &str) -> anyhow::Result<()> {
    let Some(spec) = registry.get(name) else {
        bail!(
            "unknown dataset `{name}` in {} (known: {})",
            registry.origin,
            registry.names().join(", ")
        );
    };
    let dataset = halubench_data::load(spec, hub)?;
    for warning in &dataset.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "{}: {} rows, verified",
        dataset.info.name, dataset.info.rows
    );
    println!("file:   {}", dataset.info.source);
    println!("sha256: {}", dataset.info.sha256);
    Ok(())
}

pub fn inspect(registry: &Registry, hub: &HubSettings, name_or_path: &str) -> anyhow::Result<()> {
    let spec = registry.resolve(name_or_path)?;
    let dataset = halubench_data::load(&spec, hub)?;
    for warning in &dataset.warnings {
        eprintln!("warning: {warning}");
    }
    println!("dataset: {}", dataset.info.name);
    println!("file:    {}", dataset.info.source);
    println!("sha256:  {}", dataset.info.sha256);
    println!("rows:    {}", dataset.info.rows);
    println!();
    println!("passage length in characters:");
    println!(
        "{:<14} {:>6} {:>6} {:>6} {:>7} {:>7} {:>8} {:>7} {:>7}",
        "task", "rows", "PASS", "FAIL", "min", "median", "mean", "p95", "max"
    );
    let mut stats: Vec<_> = halubench_data::inspect(&dataset.examples)
        .into_iter()
        .collect();
    stats.sort_by(|(a, _), (b, _)| task_order(a).cmp(&task_order(b)));
    for (task, s) in stats {
        let l = &s.passage_chars;
        println!(
            "{:<14} {:>6} {:>6} {:>6} {:>7} {:>7} {:>8.0} {:>7} {:>7}",
            task,
            s.pass + s.fail,
            s.pass,
            s.fail,
            l.min,
            l.median,
            l.mean,
            l.p95,
            l.max
        );
    }
    Ok(())
}

//! Command line: `serve`, `import`, `synth`, `migrate`.
//!
//! Flags are parsed once here and resolved into [`Settings`] before anything
//! runs; every command uses the same layered configuration
//! (see [`crate::configuration`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::configuration::Settings;
use crate::import::{self, ImportOptions, ImportRecord};
use crate::store::{self, NewRecord, Repository};

#[derive(Debug, Parser)]
#[command(name = "proximity-service", version, about = "Nearby search over HTTP")]
pub struct Cli {
    /// YAML configuration file (also `PROXIMITY_CONFIG`); env vars override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Embedded store directory (also `PROXIMITY_DATA_DIR`); ignored with `DATABASE_URL`.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API.
    Serve {
        /// Listen address (also `PROXIMITY_LISTEN`), e.g. 127.0.0.1:8080; port 0 picks one.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Before serving, import this GeoNames `cities500.json` if the store is empty.
        #[arg(long, value_name = "PATH")]
        seed_geonames: Option<PathBuf>,
    },
    /// Bulk-load places from files into the store.
    Import {
        /// Input files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Input format; by default guessed from each file's extension.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Skip invalid records (reported on stderr) instead of failing.
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Write a synthetic CSV of places scattered around real cities.
    Synth {
        /// Number of places.
        #[arg(long, default_value_t = 1_000_000)]
        places: usize,
        /// Random seed (same seed, same output).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output CSV file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// GeoNames `cities500.json` to draw city centres from.
        #[arg(long, value_name = "PATH")]
        cities: PathBuf,
    },
    /// Apply the database migrations and exit.
    Migrate,
}

/// Input file formats of `import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Geojson,
    Geonames,
}

impl Format {
    fn guess(path: &Path) -> anyhow::Result<Format> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if name.ends_with(".csv") {
            Ok(Format::Csv)
        } else if name.ends_with(".geojson") {
            Ok(Format::Geojson)
        } else if name.starts_with("cities") && name.ends_with(".json") {
            Ok(Format::Geonames)
        } else {
            anyhow::bail!(
                "{}: cannot tell the format from the name; pass --format csv|geojson|geonames",
                path.display()
            )
        }
    }
}

/// Resolves flags and configuration, then runs the command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(dir) = cli.data_dir {
        settings.database.data_dir = Some(dir);
    }
    match cli.command {
        Command::Serve {
            listen,
            seed_geonames,
        } => {
            if let Some(addr) = listen {
                settings.listen = addr;
            }
            if let Some(path) = seed_geonames {
                let store = store::open(&settings.database).await?;
                seed_if_empty(store.as_ref(), &path).await?;
            }
            let app = crate::startup::build(settings).await?;
            app.run_until_stopped().await
        }
        Command::Import {
            files,
            format,
            skip_invalid,
        } => {
            let store = store::open(&settings.database).await?;
            for file in &files {
                let format = match format {
                    Some(f) => f,
                    None => Format::guess(file)?,
                };
                import_file(store.as_ref(), file, format, skip_invalid).await?;
            }
            Ok(())
        }
        Command::Synth {
            places,
            seed,
            out,
            cities,
        } => synth(places, seed, &out, &cities),
        Command::Migrate => {
            store::open(&settings.database).await?;
            eprintln!("migrations applied");
            Ok(())
        }
    }
}

/// Imports `path` (GeoNames) unless the store already holds places.
pub async fn seed_if_empty(store: &dyn Repository, path: &Path) -> anyhow::Result<()> {
    let n = store.count().await?;
    if n > 0 {
        tracing::info!(
            places = n,
            "store already seeded; skipping the GeoNames import"
        );
        return Ok(());
    }
    import_file(store, path, Format::Geonames, true).await?;
    Ok(())
}

/// Rows written per store transaction.
const IMPORT_BATCH: usize = 50_000;

/// Reads `path` and writes its places through the store in batches.
pub async fn import_file(
    store: &dyn Repository,
    path: &Path,
    format: Format,
    skip_invalid: bool,
) -> anyhow::Result<u64> {
    let started = Instant::now();
    let records = read_records(path, format, skip_invalid)?;
    let total = records.len();
    let mut written = 0u64;
    let mut batch = Vec::with_capacity(IMPORT_BATCH.min(total));
    for r in records {
        batch.push(r);
        if batch.len() == IMPORT_BATCH {
            written += store
                .bulk_upsert(std::mem::take(&mut batch))
                .await
                .with_context(|| format!("importing {}", path.display()))?;
        }
    }
    if !batch.is_empty() {
        written += store
            .bulk_upsert(batch)
            .await
            .with_context(|| format!("importing {}", path.display()))?;
    }
    eprintln!(
        "{}: imported {written} places in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(written)
}

/// Parses a file into store records.
fn read_records(path: &Path, format: Format, skip_invalid: bool) -> anyhow::Result<Vec<NewRecord>> {
    let options = ImportOptions { skip_invalid };
    let records: Vec<ImportRecord> = match format {
        Format::Csv => report(import::read_csv(path, options)?),
        Format::Geojson => report(import::read_geojson(path, options)?),
        Format::Geonames => import::read_geonames(path)?
            .iter()
            .map(|c| c.to_record())
            .collect(),
    };
    // The same id twice in one file: the last one wins (as a second import would).
    let mut last = std::collections::HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(id) = r.id {
            last.insert(id, i);
        }
    }
    Ok(records
        .iter()
        .enumerate()
        .filter(|(i, r)| r.id.is_none_or(|id| last[&id] == *i))
        .map(|(_, r)| NewRecord::from_domain(&r.business, r.id))
        .collect())
}

fn report(imported: import::Imported) -> Vec<ImportRecord> {
    for e in &imported.errors {
        eprintln!("skipped: {e}");
    }
    if imported.skipped > imported.errors.len() {
        eprintln!(
            "skipped {} invalid records in all ({} shown)",
            imported.skipped,
            imported.errors.len()
        );
    }
    imported.records
}

/// Writes `places` synthetic places around the cities of `cities` as CSV
/// (`id,name,category,lat,lng`), ready for `import`.
fn synth(places: usize, seed: u64, out: &Path, cities: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let cities = import::read_geonames(cities)?;
    anyhow::ensure!(!cities.is_empty(), "no cities to scatter places around");
    let mut w =
        csv::Writer::from_path(out).with_context(|| format!("creating {}", out.display()))?;
    w.write_record(["id", "name", "category", "lat", "lng"])?;
    for (i, p) in crate::synth::places(&cities, places, seed)
        .iter()
        .enumerate()
    {
        w.write_record([
            (i + 1).to_string(),
            p.name.as_str().to_owned(),
            p.category.as_str().to_owned(),
            p.coordinates.lat_deg().to_string(),
            p.coordinates.lng_deg().to_string(),
        ])
        .with_context(|| format!("writing {}", out.display()))?;
    }
    w.flush()
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {places} places to {} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

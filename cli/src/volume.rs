//! `hexz volume ...`: writable volumes (see hexz_pipeline::volume).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use hexz_pipeline::Registry;
use hexz_pipeline::volume::{self, Volume, VolumeError, VolumeOptions};

use crate::publish::parse_bytes;

/// Arguments of `hexz volume`.
#[derive(Debug, clap::Args)]
pub struct VolumeArgs {
    #[command(subcommand)]
    pub command: VolumeCommand,
}

/// Settings of writable opens.
#[derive(Debug, clap::Args)]
pub struct WriteSettings {
    /// Write-ahead log (a local file): writes are synced there before they are
    /// acknowledged and replayed from there after a crash.
    #[arg(long, value_name = "FILE")]
    pub wal: Option<PathBuf>,
    /// Unflushed bytes kept in memory at most before an automatic flush, e.g. 64MiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub dirty_limit: Option<u64>,
    /// Codec of new snapshots.
    #[arg(long, default_value = "zstd")]
    pub codec: String,
}

impl WriteSettings {
    fn options(&self) -> VolumeOptions {
        VolumeOptions {
            codec: self.codec.clone(),
            level: None,
            dirty_limit: self.dirty_limit.unwrap_or(volume::DEFAULT_DIRTY_LIMIT),
            wal: self.wal.clone(),
            ..VolumeOptions::default()
        }
    }
}

/// The verbs.
#[derive(Debug, clap::Subcommand)]
pub enum VolumeCommand {
    /// Create a volume of SIZE zero bytes (version 1) at a folder or URL
    /// (s3://bucket/prefix, file:///abs, memory://name).
    Create {
        /// Where.
        volume: String,
        /// Length, e.g. 1GiB (sparse: zeros cost nothing).
        #[arg(long, value_parser = parse_bytes)]
        size: u64,
        #[command(flatten)]
        settings: WriteSettings,
    },
    /// Write a file (or stdin) into the volume at an offset, then flush: prints the
    /// new version and its root hash.
    Write {
        /// The volume.
        volume: String,
        /// The bytes to write: a file, or `-` / nothing for stdin.
        input: Option<PathBuf>,
        /// Volume offset of the first byte.
        #[arg(long, default_value = "0", value_parser = parse_bytes)]
        offset: u64,
        #[command(flatten)]
        settings: WriteSettings,
        /// Testing: after the writes are acknowledged, print `acknowledged` and
        /// wait forever instead of flushing (to be killed).
        #[arg(long, hide = true)]
        pause_before_flush: bool,
    },
    /// Print bytes of the volume (the latest version, or --version N).
    #[command(alias = "cat", disable_version_flag = true)]
    Read {
        /// The volume.
        volume: String,
        /// First byte.
        #[arg(long, default_value = "0", value_parser = parse_bytes)]
        offset: u64,
        /// Bytes to print (default: to the end).
        #[arg(long, value_parser = parse_bytes)]
        length: Option<u64>,
        /// Read this older version (time travel, read-only).
        #[arg(long)]
        version: Option<u64>,
        /// Write to this file instead of stdout (atomically: it appears only
        /// when complete). An existing file is replaced only with --force, and
        /// never a read-only one.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Replace an existing file at --output.
        #[arg(long, requires = "output")]
        force: bool,
    },
    /// Set the volume's length (grow with zeros or shrink), then flush.
    Truncate {
        /// The volume.
        volume: String,
        /// New length.
        #[arg(long, value_parser = parse_bytes)]
        size: u64,
        #[command(flatten)]
        settings: WriteSettings,
    },
    /// Replay the write-ahead log (if any) and flush.
    Flush {
        /// The volume.
        volume: String,
        #[command(flatten)]
        settings: WriteSettings,
    },
    /// List the versions, newest first.
    Log {
        /// The volume.
        volume: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove snapshots no retained version needs (every version unless
    /// --keep-last / --keep-within drop the older ones).
    Gc(GcArgs),
}

/// Arguments of `hexz volume gc` (also `hexz gc`).
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// The volume.
    pub volume: String,
    /// Keep unreferenced snapshots younger than this many seconds (a writer
    /// may be about to commit them).
    #[arg(long, default_value_t = volume::DEFAULT_GC_GRACE.as_secs())]
    pub grace: u64,
    /// Keep only the newest N versions (the head counts; at least 1). Older
    /// versions are dropped: the kept ones are rewritten so that they no longer
    /// need them (same version numbers and bytes, new root hashes).
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u64>,
    /// Keep only the versions committed within this long before now (e.g.
    /// `30d`, `12h`, `90m`, `45s`, or seconds); with --keep-last, a version
    /// either rule keeps is kept. The head is always kept.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub keep_within: Option<Duration>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Exit code for volume errors: 8 for a conflict with another writer, 4 for a
/// missing volume, version or snapshot, 3 for a snapshot with the wrong root hash,
/// 2 for a size past the largest volume.
pub fn exit_code(err: &anyhow::Error) -> Option<u8> {
    match err.downcast_ref::<VolumeError>()? {
        VolumeError::Conflict { .. } | VolumeError::WalConflict { .. } => Some(8),
        VolumeError::NotFound { .. } | VolumeError::NoSuchVersion { .. } => Some(4),
        VolumeError::Pipeline(e)
            if matches!(**e, hexz_pipeline::PipelineError::NotFound { .. }) =>
        {
            Some(4)
        }
        VolumeError::SnapshotMismatch { .. } => Some(3),
        VolumeError::TooLarge { .. } => Some(2),
        _ => None,
    }
}

fn committed(out: &mut dyn Write, v: &Volume) -> Result<()> {
    writeln!(
        out,
        "version {} root {} size {}",
        v.version(),
        v.root(),
        v.len()
    )?;
    Ok(())
}

/// Run one verb.
pub fn run(args: VolumeArgs, registry: &Registry, out: &mut dyn Write) -> Result<()> {
    match args.command {
        VolumeCommand::Create {
            volume,
            size,
            settings,
        } => {
            let v = Volume::create(&volume, size, registry, settings.options())?;
            committed(out, &v)?;
        }
        VolumeCommand::Write {
            volume,
            input,
            offset,
            settings,
            pause_before_flush,
        } => {
            let mut v = Volume::open(&volume, registry, settings.options())?;
            let mut reader: Box<dyn Read> = match &input {
                Some(p) if p.as_os_str() != "-" => {
                    Box::new(std::fs::File::open(p).with_context(|| format!("{}", p.display()))?)
                }
                _ => Box::new(std::io::stdin().lock()),
            };
            let mut buf = vec![0u8; 4 << 20];
            let mut at = offset;
            loop {
                let n = reader.read(&mut buf).context("reading the input")?;
                if n == 0 {
                    break;
                }
                v.write_at(at, &buf[..n])?;
                at += n as u64;
            }
            if pause_before_flush {
                writeln!(out, "acknowledged {} bytes", at - offset)?;
                out.flush()?;
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            v.flush()?;
            committed(out, &v)?;
        }
        VolumeCommand::Read {
            volume,
            offset,
            length,
            version,
            output,
            force,
        } => {
            let v = match version {
                Some(n) => Volume::open_version(&volume, n, registry, &VolumeOptions::default())?,
                None => Volume::open(&volume, registry, VolumeOptions::default())?,
            };
            let end = match length {
                Some(l) => offset.saturating_add(l),
                None => v.len(),
            };
            if let Some(path) = &output {
                v.export(offset, end, path, force)?;
                return Ok(());
            }
            let mut at = offset;
            while at < end {
                let n = (end - at).min(4 << 20) as usize;
                out.write_all(&v.read(at, n)?)?;
                at += n as u64;
            }
            if offset == end && offset > v.len() {
                v.read(offset, 0)?;
            }
            out.flush()?;
        }
        VolumeCommand::Truncate {
            volume,
            size,
            settings,
        } => {
            let mut v = Volume::open(&volume, registry, settings.options())?;
            v.truncate(size)?;
            v.flush()?;
            committed(out, &v)?;
        }
        VolumeCommand::Flush { volume, settings } => {
            let mut v = Volume::open(&volume, registry, settings.options())?;
            v.flush()?;
            committed(out, &v)?;
        }
        VolumeCommand::Log { volume, json } => {
            let versions = volume::log(&volume, registry, &VolumeOptions::default())?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "versions": versions }))?
                )?;
            } else {
                for x in versions {
                    writeln!(
                        out,
                        "version {:<5} {}  {}  size {}  stored here {}  {}{}",
                        x.version,
                        x.root,
                        x.date.as_deref().unwrap_or("unknown date"),
                        x.size.map_or("?".into(), crate::human),
                        x.own_chunk_bytes.map_or("?".into(), crate::human),
                        crate::human(x.snapshot_bytes),
                        if x.status == "ok" {
                            String::new()
                        } else {
                            format!("  [{}]", x.status)
                        }
                    )?;
                }
            }
        }
        VolumeCommand::Gc(args) => gc(args, registry, out)?,
    }
    Ok(())
}

/// `hexz volume gc` / `hexz gc`.
pub fn gc(args: GcArgs, registry: &Registry, out: &mut dyn Write) -> Result<()> {
    let GcArgs {
        volume,
        grace,
        keep_last,
        keep_within,
        json,
    } = args;
    let retention = volume::Retention {
        keep_last,
        keep_within,
    };
    let report = volume::gc_with(
        &volume,
        registry,
        &VolumeOptions::default(),
        Duration::from_secs(grace),
        &retention,
    )?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        if let Some(c) = &report.compaction
            && let Some((first, last)) = c.dropped
        {
            writeln!(
                out,
                "dropped versions {first}..={last}; rewrote versions {}..={} ({} written)",
                last + 1,
                c.rewritten.last().map_or(last + 1, |w| w.version),
                crate::human(c.written_bytes)
            )?;
        }
        writeln!(
            out,
            "kept {} snapshots (versions {}..), removed {} ({}), {} unreferenced but younger \
             than {grace} s",
            report.kept,
            report.oldest_version,
            report.removed.len(),
            crate::human(report.removed_bytes),
            report.young
        )?;
    }
    Ok(())
}

/// `30d`, `12h`, `90m`, `45s` or a number of seconds.
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: a number then one of s, m, h, d, w"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("`{text}`: unit must be one of s, m, h, d, w")),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}`: too long"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("2y").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("99999999999999999w").is_err());
    }
}

//! Output of the thin-snapshot verbs: `hexz log`, `hexz diff`, `hexz squash`.

use std::io::Write;

use anyhow::Result;
use hexz_pipeline::{ChainLink, DiffReport, SquashReport};

use crate::human;

/// `hexz log`: the chain, newest first.
pub fn print_log(out: &mut dyn Write, links: &[ChainLink], json: bool) -> Result<()> {
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "chain": links }))?
        )?;
        return Ok(());
    }
    for (i, l) in links.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        if l.position == 0 {
            writeln!(out, "archive  {}", l.location)?;
        } else {
            writeln!(out, "parent {} {}", l.position, l.location)?;
        }
        writeln!(out, "root     {}", l.root_hash)?;
        if l.status != "ok" {
            writeln!(out, "status   {}", l.status)?;
            if let Some(e) = &l.error {
                writeln!(out, "error    {e}")?;
            }
        }
        writeln!(out, "date     {}", l.date.as_deref().unwrap_or("unknown"))?;
        let mut size = human(l.archive_bytes);
        if let Some(own) = l.own_chunk_bytes {
            size.push_str(&format!(" ({} of chunks stored here)", human(own)));
        }
        writeln!(out, "size     {size}")?;
        if let (Some(logical), Some(entries)) = (l.logical_bytes, l.entries) {
            writeln!(out, "content  {entries} entries, {}", human(logical))?;
        }
        if let (Some(bytes), Some(chunks)) = (l.serves_bytes, l.serves_chunks) {
            writeln!(
                out,
                "serves   {} of {} ({chunks} chunks)",
                human(bytes),
                links[0].location
            )?;
        }
    }
    Ok(())
}

/// `hexz diff`.
pub fn print_diff(out: &mut dyn Write, d: &DiffReport, json: bool) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(d)?)?;
        return Ok(());
    }
    for name in &d.removed {
        writeln!(out, "- {name}")?;
    }
    for name in &d.added {
        writeln!(out, "+ {name}")?;
    }
    for c in &d.changed {
        writeln!(out, "M {} ({})", c.name, c.what.join(", "))?;
    }
    let c = &d.chunks;
    writeln!(
        out,
        "entries: {} added, {} removed, {} changed, {} unchanged",
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.unchanged
    )?;
    writeln!(
        out,
        "chunks:  {} shared ({}), {} only in {} ({}), {} only in {} ({})",
        c.shared,
        human(c.shared_bytes),
        c.only_a,
        d.a,
        human(c.only_a_bytes),
        c.only_b,
        d.b,
        human(c.only_b_bytes)
    )?;
    Ok(())
}

/// `hexz squash`.
pub fn print_squash(out: &mut dyn Write, r: &SquashReport, json: bool) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(r)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "squashed into {}: {} entries, {} in {} ({} parents no longer needed); \
         verified, {} chunks identical; root {}",
        r.output.display(),
        r.entries,
        human(r.logical_bytes),
        human(r.archive_bytes),
        r.parents_dropped,
        r.chunks_checked,
        r.root_hash
    )?;
    Ok(())
}

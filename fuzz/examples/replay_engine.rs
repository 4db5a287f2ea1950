//! Replays one `engine_recovery` input outside libFuzzer and explains it: the files it
//! makes, what each open reports, and the segment frames after each step.
//! `cargo run --manifest-path fuzz/Cargo.toml --example replay_engine -- <input>`.

use sluice_engine::format::{checkpoint_name, segment_name, CHECKPOINT_DIR, LOG_DIR};
use sluice_engine::{FaultIo, LogOptions, LogStore};
use sluice_fuzz::*;
use std::path::{Path, PathBuf};

fn frames(fs: &FaultIo) {
    for (p, n) in fs.files() {
        println!("  {} ({n} bytes)", p.display());
        let Some(b) = fs.read_file(&p) else { continue };
        if p.extension().is_some_and(|e| e == "bodies") {
            continue;
        }
        let mut pos = 32;
        while pos + 16 <= b.len() {
            match sluice_engine::format::decode_frame(&b[pos..]) {
                Ok(f) => {
                    let rec = sluice_engine::format::Record::decode(f.kind, f.payload);
                    let text = format!("{rec:?}");
                    println!("    @{pos} kind {} len {}: {}", f.kind, f.payload.len(), &text[..text.len().min(160)]);
                    pos += f.size;
                }
                Err(e) => {
                    println!("    @{pos}: {e:?} ({} bytes left)", b.len() - pos);
                    break;
                }
            }
        }
    }
}

fn main() {
    let path = std::env::args().nth(1).expect("an input file");
    let data = std::fs::read(path).unwrap();
    let (&flags, rest) = data.split_first().unwrap();
    let fs = FaultIo::new();
    let dir = PathBuf::from("/data");
    let io = fs.as_io();
    io.create_dir_all(&dir.join(LOG_DIR)).unwrap();
    io.create_dir_all(&dir.join(CHECKPOINT_DIR)).unwrap();
    let mut counts = [0u64; 3];
    for (kind, mut bytes) in split_files(rest) {
        fix_up(kind, &mut bytes, flags);
        let i = kind as usize;
        counts[i] += 1;
        let n = header_number(&bytes).filter(|n| (1..=64).contains(n)).unwrap_or(counts[i]);
        let p = match kind {
            FileKind::Segment => dir.join(LOG_DIR).join(segment_name(n)),
            FileKind::Checkpoint => dir.join(CHECKPOINT_DIR).join(checkpoint_name(n)),
            FileKind::Bodies => dir.join(CHECKPOINT_DIR).join(format!("{n:020}.bodies")),
        };
        fs.write_file(&p, &bytes);
    }
    println!("before:");
    frames(&fs);
    for step in 0..3 {
        match LogStore::open(Path::new("/data"), LogOptions { checkpoint_every_bytes: None, ..LogOptions::new(fs.as_io()) }) {
            Ok(s) => {
                println!("open {step}: {:?}", s.recovery_report());
                if step == 1 {
                    println!("checkpoint: {:?}", s.checkpoint_blocking());
                }
                s.close_blocking().unwrap();
            }
            Err(e) => {
                println!("open {step}: {e:?}");
                break;
            }
        }
        println!("after open {step}:");
        frames(&fs);
    }
}

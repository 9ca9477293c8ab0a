//! One block decoded by its type tag, whatever state it is in: a damaged
//! block is shown as far as it decodes, with the reason it stops.

use serde::Serialize;

use crate::device::{Device, DeviceExt};
use crate::error::{Error, Result};
use crate::format::log::{decode_addrs, decode_entries, payload, LogHeader};
use crate::format::node::NodeView;
use crate::format::superblock::Superblock;
use crate::format::DecodeResult;
use crate::format::{block_hash, block_type, BlockType, BLKSZ, BLKSZ_U64};
use crate::ids::BlockAddr;

use super::Ptr;

/// A decoded block.
#[derive(Debug, Clone, Serialize)]
pub struct BlockView {
    /// Device offset.
    pub addr: u64,
    /// xxh3-64 of the whole block, hex (compare with the pointer to it).
    pub hash: String,
    /// What the type tag says ("data?" when it names no type).
    pub kind: String,
    /// Decoded contents, one line each.
    pub lines: Vec<String>,
    /// Why decoding stopped, if it did.
    pub damage: Option<String>,
}

/// Read and decode the block at byte offset `addr`.
pub fn decode_block(dev: &dyn Device, addr: u64) -> Result<BlockView> {
    if !addr.is_multiple_of(BLKSZ_U64) || addr >= dev.size() {
        return Err(Error::Invalid(format!(
            "{addr:#x} is not a block address on this device"
        )));
    }
    let mut b = vec![0u8; BLKSZ];
    dev.read_bytes(&mut b, addr)?;
    let mut v = BlockView {
        addr,
        hash: format!("{:016x}", block_hash(&b)),
        kind: String::new(),
        lines: Vec::new(),
        damage: None,
    };
    let r = match block_type(&b) {
        Some(BlockType::Pivot | BlockType::Leaf) => node(&b, &mut v).map_err(|e| e.to_string()),
        Some(t @ (BlockType::Log | BlockType::Dlist | BlockType::Mlog)) => {
            log(&b, t, &mut v).map_err(|e| e.to_string())
        }
        Some(BlockType::Super) => superblock(&b, addr, &mut v),
        _ => {
            v.kind = "data?".into();
            v.lines = hexdump(b.get(..256).unwrap_or(&b));
            Ok(())
        }
    };
    if let Err(e) = r {
        v.damage = Some(e);
    }
    Ok(v)
}

fn node(b: &[u8], v: &mut BlockView) -> DecodeResult<()> {
    let n = NodeView::new(b)?;
    v.kind = if n.is_leaf() { "leaf" } else { "pivot" }.into();
    v.lines.push(format!(
        "level {} nval {} nbuf {} fill {}",
        n.level(),
        n.nval(),
        n.nbuf(),
        n.fill()
    ));
    for i in 0..n.nval() {
        if n.is_leaf() {
            let (k, val) = n.kv(i)?;
            v.lines
                .push(format!("{} => {}", crate::format::key::show(k), short(val)));
        } else {
            let (k, bp, fill) = n.child(i)?;
            let p = Ptr::from(&bp);
            v.lines.push(format!(
                "[{}] -> {:#x} hash {} gen {} fill {fill}",
                crate::format::key::show(k),
                p.addr,
                p.hash,
                p.gen
            ));
        }
    }
    for j in 0..n.nbuf() {
        let (op, k, a) = n.msg(j)?;
        v.lines.push(format!(
            "msg {} {} {}",
            op.name(),
            crate::format::key::show(k),
            short(a)
        ));
    }
    n.validate()
}

fn log(b: &[u8], t: BlockType, v: &mut BlockView) -> DecodeResult<()> {
    v.kind = t.name().into();
    let h = LogHeader::decode(b)?;
    v.lines.push(format!(
        "seq {} bytes {} prev {:#x} hash {:016x}",
        h.seq, h.nbytes, h.prev.addr.0, h.prev.hash
    ));
    let p = payload(b, &h);
    if t == BlockType::Log {
        for e in decode_entries(p)? {
            v.lines.push(format!("{e:?}"));
        }
    } else if t == BlockType::Mlog {
        for (op, k, a) in crate::format::mlog::decode(p)? {
            v.lines.push(format!(
                "msg {} {} {}",
                op.name(),
                crate::format::key::show(k),
                short(a)
            ));
        }
    } else {
        for a in decode_addrs(p)? {
            v.lines.push(format!("{a:#x}"));
        }
    }
    Ok(())
}

fn superblock(b: &[u8], addr: u64, v: &mut BlockView) -> std::result::Result<(), String> {
    v.kind = "superblock".into();
    let sb = Superblock::decode(b, BlockAddr(addr)).map_err(|e| e.to_string())?;
    v.lines.push(format!(
        "commit {} nextgen {} nextqid {} snap root {:#x} height {}",
        sb.commit_gen, sb.nextgen, sb.nextqid, sb.snap_root.addr.0, sb.snap_height
    ));
    for (i, a) in sb.arenas.iter().enumerate() {
        v.lines.push(format!(
            "arena {i}: log tail {:#x} blocks {} free {}",
            a.log_tail.addr.0, a.log_blocks, a.free_blocks
        ));
    }
    Ok(())
}

fn short(b: &[u8]) -> String {
    let hex: String = b.iter().take(32).map(|x| format!("{x:02x}")).collect();
    if b.len() > 32 {
        format!("{hex}… ({} bytes)", b.len())
    } else {
        hex
    }
}

fn hexdump(b: &[u8]) -> Vec<String> {
    b.chunks(32)
        .enumerate()
        .map(|(i, c)| {
            let hex: String = c.iter().map(|x| format!("{x:02x}")).collect();
            format!("{:04x}: {hex}", i * 32)
        })
        .collect()
}

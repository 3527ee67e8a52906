//! Reading struct member offsets from the running kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! Rust eBPF has no CO-RE relocations, so where a probe reads a kernel struct field the tracer
//! finds the offset here and passes it as a load-time global: the same effect as CO-RE. aya-obj
//! parses BTF but keeps member lookup crate-private, and btf-rs is LGPL-2.1; the format is small
//! and stable (Documentation/bpf/btf.rst), so this is a minimal reader of our own: header,
//! type section, string section, and member lookup through nested anonymous structs and unions.

use std::path::Path;

/// Where the running kernel publishes its BTF (CONFIG_DEBUG_INFO_BTF=y, Linux 5.8+).
pub(crate) const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub(crate) enum BtfError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed BTF: {0}")]
    Malformed(&'static str),
    #[error("the kernel's BTF has no struct {0}")]
    NoStruct(String),
    #[error("the kernel's BTF has no member {member} in struct {strukt}")]
    NoMember { strukt: String, member: String },
    #[error("member {0} is a bitfield, not byte-addressable")]
    Bitfield(String),
}

const MAGIC: u16 = 0xeb9f;

// Kinds (include/uapi/linux/btf.h).
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Clone, Copy)]
struct Type {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    /// `size` or `type`, depending on the kind.
    size_type: u32,
    /// Offset of the kind-specific data that follows the 12-byte header.
    extra: usize,
}

pub(crate) struct Btf {
    data: Vec<u8>,
    types: Vec<Type>,
    str_start: usize,
    str_end: usize,
}

impl Btf {
    pub(crate) fn from_sys_fs() -> Result<Btf, BtfError> {
        Btf::from_file(Path::new(VMLINUX))
    }

    pub(crate) fn from_file(path: &Path) -> Result<Btf, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Btf::parse(data)
    }

    pub(crate) fn parse(data: Vec<u8>) -> Result<Btf, BtfError> {
        let u16_at = |d: &[u8], o: usize| d.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        if u16_at(&data, 0) != Some(MAGIC) {
            return Err(BtfError::Malformed(
                "bad magic (only little-endian BTF is supported)",
            ));
        }
        let hdr_len = read_u32(&data, 4).ok_or(BtfError::Malformed("short header"))? as usize;
        let field = |i: usize| {
            read_u32(&data, 8 + 4 * i)
                .map(|v| v as usize)
                .ok_or(BtfError::Malformed("short header"))
        };
        let (type_off, type_len, str_off, str_len) = (field(0)?, field(1)?, field(2)?, field(3)?);
        let type_start = hdr_len + type_off;
        let type_end = type_start + type_len;
        let str_start = hdr_len + str_off;
        let str_end = str_start + str_len;
        if type_end > data.len() || str_end > data.len() {
            return Err(BtfError::Malformed("section beyond end of data"));
        }
        // Type id 0 is `void`; ids count from 1 in section order.
        let mut types = vec![Type {
            name_off: 0,
            kind: 0,
            vlen: 0,
            kind_flag: false,
            size_type: 0,
            extra: 0,
        }];
        let mut off = type_start;
        while off < type_end {
            let name_off = read_u32(&data, off).ok_or(BtfError::Malformed("truncated type"))?;
            let info = read_u32(&data, off + 4).ok_or(BtfError::Malformed("truncated type"))?;
            let size_type =
                read_u32(&data, off + 8).ok_or(BtfError::Malformed("truncated type"))?;
            let kind = (info >> 24) & 0x1f;
            let vlen = info & 0xffff;
            let extra = off + 12;
            let extra_len = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION => 12 * vlen as usize,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen as usize,
                KIND_DATASEC | KIND_ENUM64 => 12 * vlen as usize,
                2 | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | 12 | 16
                | KIND_TYPE_TAG => 0,
                _ => return Err(BtfError::Malformed("unknown type kind")),
            };
            types.push(Type {
                name_off,
                kind,
                vlen,
                kind_flag: info >> 31 == 1,
                size_type,
                extra,
            });
            off = extra + extra_len;
        }
        Ok(Btf {
            data,
            types,
            str_start,
            str_end,
        })
    }

    fn name(&self, name_off: u32) -> &str {
        let start = self.str_start + name_off as usize;
        if start >= self.str_end {
            return "";
        }
        let bytes = &self.data[start..self.str_end];
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..len]).unwrap_or("")
    }

    /// Strips typedef / const / volatile / restrict / type tags.
    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..32 {
            let t = self.types.get(id as usize)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_type;
                }
                _ => return Some(t),
            }
        }
        None
    }

    fn find_struct(&self, name: &str) -> Option<&Type> {
        self.types
            .iter()
            .find(|t| t.kind == KIND_STRUCT && self.name(t.name_off) == name)
    }

    /// (name_off, type id, bit offset) of each member.
    fn members(&self, t: &Type) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
        let (base, n, kflag) = (t.extra, t.vlen as usize, t.kind_flag);
        (0..n).filter_map(move |i| {
            let o = base + 12 * i;
            let name = read_u32(&self.data, o)?;
            let ty = read_u32(&self.data, o + 4)?;
            let raw = read_u32(&self.data, o + 8)?;
            Some((name, ty, if kflag { raw & 0x00ff_ffff } else { raw }))
        })
    }

    /// Bit offset and type of `member` in `t`, looking through anonymous structs and unions.
    fn member(&self, t: &Type, member: &str) -> Option<(u32, u32)> {
        for (name_off, ty, bits) in self.members(t) {
            if name_off != 0 {
                if self.name(name_off) == member {
                    return Some((bits, ty));
                }
            } else if let Some(inner) = self.resolve(ty)
                && matches!(inner.kind, KIND_STRUCT | KIND_UNION)
                && let Some((b, t2)) = self.member(inner, member)
            {
                return Some((bits + b, t2));
            }
        }
        None
    }

    /// Byte offset of a dotted member path inside `struct strukt`, e.g.
    /// `member_offset("task_struct", "thread_info.status")`.
    pub(crate) fn member_offset(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let bits = self.member_bit_offset(strukt, path)?;
        if !bits.is_multiple_of(8) {
            return Err(BtfError::Bitfield(path.to_owned()));
        }
        Ok(bits / 8)
    }

    /// Bit offset of a dotted member path inside `struct strukt`: a bitfield's too
    /// (`linux_binprm.secureexec`).
    pub(crate) fn member_bit_offset(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let mut t = self
            .find_struct(strukt)
            .ok_or_else(|| BtfError::NoStruct(strukt.to_owned()))?;
        let mut bits = 0u32;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let (b, ty) = self.member(t, part).ok_or_else(|| BtfError::NoMember {
                strukt: strukt.to_owned(),
                member: path.to_owned(),
            })?;
            bits += b;
            if parts.peek().is_some() {
                t = self
                    .resolve(ty)
                    .filter(|t| matches!(t.kind, KIND_STRUCT | KIND_UNION))
                    .ok_or_else(|| BtfError::NoMember {
                        strukt: strukt.to_owned(),
                        member: path.to_owned(),
                    })?;
            }
        }
        Ok(bits)
    }

    /// Whether a struct has a member (used to detect kernel features, e.g. `group_dead` in the
    /// sched_process_exit trace event record).
    pub(crate) fn has_member(&self, strukt: &str, member: &str) -> bool {
        self.member_offset(strukt, member).is_ok()
    }
}

fn read_u32(d: &[u8], o: usize) -> Option<u32> {
    d.get(o..o + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds BTF bytes: `struct inner { int a; int b; }` and `struct outer { int x; union {
    /// struct inner in; }; typedef-to-inner t; }` with anonymous nesting.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0inner\0a\0b\0outer\0x\0in\0t\0inner_t\0";
        let s = |name: &str| -> u32 {
            let pos = strings
                .windows(name.len() + 2)
                .position(|w| {
                    w[0] == 0 && &w[1..=name.len()] == name.as_bytes() && w[name.len() + 1] == 0
                })
                .expect("name in table");
            pos as u32 + 1
        };
        let mut types = Vec::new();
        let mut ty = |name: u32, kind: u32, vlen: u32, size_type: u32, extra: &[u32]| {
            types.extend(name.to_le_bytes());
            types.extend(((kind << 24) | vlen).to_le_bytes());
            types.extend(size_type.to_le_bytes());
            for e in extra {
                types.extend(e.to_le_bytes());
            }
        };
        ty(s("int"), KIND_INT, 0, 4, &[32]); // 1
        ty(
            s("inner"),
            KIND_STRUCT,
            2,
            8,
            &[s("a"), 1, 0, s("b"), 1, 32],
        ); // 2
        ty(s("inner_t"), KIND_TYPEDEF, 0, 2, &[]); // 3
        ty(0, KIND_UNION, 1, 8, &[s("in"), 2, 0]); // 4: anonymous
        ty(
            s("outer"),
            KIND_STRUCT,
            3,
            24,
            &[s("x"), 1, 0, 0, 4, 64, s("t"), 3, 128],
        ); // 5
        let mut out = Vec::new();
        out.extend(MAGIC.to_le_bytes());
        out.extend([1u8, 0]);
        out.extend(24u32.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((types.len() as u32).to_le_bytes());
        out.extend((types.len() as u32).to_le_bytes());
        out.extend((strings.len() as u32).to_le_bytes());
        out.extend(&types);
        out.extend(strings);
        out
    }

    #[test]
    fn offsets_through_anonymous_and_typedef_members() {
        let btf = Btf::parse(sample()).expect("parses");
        assert_eq!(btf.member_offset("outer", "x").ok(), Some(0));
        assert_eq!(btf.member_offset("outer", "in.b").ok(), Some(12));
        assert_eq!(btf.member_offset("outer", "t.b").ok(), Some(20));
        assert_eq!(btf.member_offset("inner", "a").ok(), Some(0));
        assert!(matches!(
            btf.member_offset("outer", "nope"),
            Err(BtfError::NoMember { .. })
        ));
        assert!(matches!(
            btf.member_offset("nope", "x"),
            Err(BtfError::NoStruct(_))
        ));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Btf::parse(vec![0; 8]).is_err());
        let mut truncated = sample();
        truncated.truncate(40);
        assert!(Btf::parse(truncated).is_err());
    }

    /// Against the running kernel, when it has BTF: the offsets the probes depend on exist.
    #[test]
    fn running_kernel_offsets() {
        let Ok(btf) = Btf::from_sys_fs() else {
            eprintln!("skipped: /sys/kernel/btf/vmlinux not readable");
            return;
        };
        let pid = btf
            .member_offset("task_struct", "pid")
            .expect("task_struct.pid");
        let tgid = btf
            .member_offset("task_struct", "tgid")
            .expect("task_struct.tgid");
        assert_eq!(tgid, pid + 4, "pid and tgid are adjacent pid_t fields");
        #[cfg(target_arch = "x86_64")]
        {
            btf.member_offset("task_struct", "thread_info.status")
                .expect("thread_info.status");
        }
    }
}

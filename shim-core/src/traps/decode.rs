//! Just enough of an x86-64 instruction decoder for what a PV guest traps on:
//! prefixes, opcode, ModRM/SIB/displacement (for the length) and immediates.

/// A decoded instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Insn {
    pub len: usize,
    pub lock: bool,
    pub rep: bool,
    pub opsize16: bool,
    /// REX.W/R/X/B.
    pub rex_w: bool,
    pub rex_r: bool,
    pub rex_x: bool,
    pub rex_b: bool,
    /// A segment-override prefix byte (0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65).
    pub seg: Option<u8>,
    /// The 0x67 address-size prefix.
    pub addr32: bool,
    pub sib: Option<u8>,
    /// The ModRM displacement, sign-extended.
    pub disp: i64,
    pub two_byte: bool,
    pub opcode: u8,
    pub modrm: Option<u8>,
    pub imm: u64,
}

impl Insn {
    /// ModRM.reg with REX.R.
    pub fn reg(&self) -> u8 {
        ((self.modrm.unwrap_or(0) >> 3) & 7) | if self.rex_r { 8 } else { 0 }
    }
    /// ModRM.rm with REX.B (a register operand when mod == 3).
    pub fn rm(&self) -> u8 {
        (self.modrm.unwrap_or(0) & 7) | if self.rex_b { 8 } else { 0 }
    }
    pub fn mod_(&self) -> u8 {
        self.modrm.unwrap_or(0) >> 6
    }
    /// Operand size for instructions whose size follows REX.W / 0x66.
    pub fn opsize(&self) -> usize {
        if self.rex_w {
            8
        } else if self.opsize16 {
            2
        } else {
            4
        }
    }
}

/// Which immediate an opcode takes (beyond ModRM).
enum Imm {
    None,
    B,
    /// 16/32 by operand size (never 64 bits).
    Z,
}

fn one_byte_info(op: u8, modrm_reg: u8) -> Option<(bool, Imm)> {
    Some(match op {
        0x00..=0x03 | 0x08..=0x0b | 0x20..=0x23 | 0x84..=0x8b => (true, Imm::None),
        0x80 | 0x82 | 0x83 | 0xc0 | 0xc1 | 0xc6 => (true, Imm::B),
        0x81 | 0xc7 | 0x69 => (true, Imm::Z),
        0xf6 => (true, if modrm_reg < 2 { Imm::B } else { Imm::None }),
        0xf7 => (true, if modrm_reg < 2 { Imm::Z } else { Imm::None }),
        0xe4 | 0xe5 | 0xe6 | 0xe7 | 0xcd => (false, Imm::B),
        0xec..=0xef | 0x6c..=0x6f | 0xf4 | 0xfa | 0xfb | 0xcc => (false, Imm::None),
        _ => return None,
    })
}

fn two_byte_info(op: u8, modrm_reg: u8) -> Option<(bool, Imm)> {
    let _ = modrm_reg;
    Some(match op {
        0x01 => (true, Imm::None), // group 7 (xsetbv 0f 01 d1 etc.)
        0x06 | 0x08 | 0x09 | 0x0b | 0x30 | 0x31 | 0x32 | 0xa2 => (false, Imm::None),
        0x20..=0x23 | 0xa3 | 0xab | 0xb0 | 0xb1 | 0xb3 | 0xbb | 0xc0 | 0xc1 | 0xc7 => (true, Imm::None),
        0xba => (true, Imm::B),
        _ => return None,
    })
}

/// Decode the instruction at the start of `b`. `None` for anything outside
/// the subset, or when `b` ends too early.
pub fn decode(b: &[u8]) -> Option<Insn> {
    let mut i = 0;
    let mut d = Insn::default();
    loop {
        match *b.get(i)? {
            0xf0 => d.lock = true,
            0xf3 | 0xf2 => d.rep = true,
            0x66 => d.opsize16 = true,
            p @ (0x2e | 0x3e | 0x26 | 0x36 | 0x64 | 0x65) => d.seg = Some(p),
            0x67 => d.addr32 = true,
            _ => break,
        }
        i += 1;
        if i > 14 {
            return None;
        }
    }
    let mut byte = *b.get(i)?;
    if (0x40..=0x4f).contains(&byte) {
        d.rex_w = byte & 8 != 0;
        d.rex_r = byte & 4 != 0;
        d.rex_x = byte & 2 != 0;
        d.rex_b = byte & 1 != 0;
        i += 1;
        byte = *b.get(i)?;
    }
    if byte == 0x0f {
        d.two_byte = true;
        i += 1;
        byte = *b.get(i)?;
    }
    d.opcode = byte;
    i += 1;
    let peek_reg = b.get(i).map(|m| (m >> 3) & 7).unwrap_or(0);
    let (has_modrm, imm) = if d.two_byte { two_byte_info(byte, peek_reg)? } else { one_byte_info(byte, peek_reg)? };
    if has_modrm {
        let m = *b.get(i)?;
        d.modrm = Some(m);
        i += 1;
        let (mod_, rm) = (m >> 6, m & 7);
        if mod_ != 3 {
            let mut disp_len = match (mod_, rm) {
                (0, 5) => 4,
                (1, _) => 1,
                (2, _) => 4,
                _ => 0,
            };
            if rm == 4 {
                let sib = *b.get(i)?;
                d.sib = Some(sib);
                i += 1;
                if mod_ == 0 && sib & 7 == 5 {
                    disp_len = 4;
                }
            }
            let db = b.get(i..i + disp_len)?;
            d.disp = match disp_len {
                1 => db[0] as i8 as i64,
                4 => i32::from_le_bytes(db.try_into().ok()?) as i64,
                _ => 0,
            };
            i += disp_len;
        }
    }
    let n = match imm {
        Imm::None => 0,
        Imm::B => 1,
        Imm::Z => {
            if d.opsize16 {
                2
            } else {
                4
            }
        }
    };
    let bytes = b.get(i..i + n)?;
    let mut v = 0u64;
    for (k, x) in bytes.iter().enumerate() {
        v |= (*x as u64) << (8 * k);
    }
    // Sign-extend immediates.
    if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
        v |= !0u64 << (8 * n);
    }
    d.imm = v;
    d.len = i + n;
    (d.len <= 15 && d.len <= b.len()).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pte_writes() {
        // mov %rsi,(%rdi)
        let d = decode(&[0x48, 0x89, 0x37]).unwrap();
        assert_eq!((d.len, d.opcode, d.opsize(), d.reg()), (3, 0x89, 8, 6));
        // xchg %rax,(%rdi)
        let d = decode(&[0x48, 0x87, 0x07]).unwrap();
        assert_eq!((d.len, d.opcode, d.reg()), (3, 0x87, 0));
        // lock cmpxchg %rdx,(%rsi)
        let d = decode(&[0xf0, 0x48, 0x0f, 0xb1, 0x16]).unwrap();
        assert!(d.lock && d.two_byte && d.opcode == 0xb1 && d.len == 5);
        // lock andb $0xfd,(%rdi)
        let d = decode(&[0xf0, 0x80, 0x27, 0xfd]).unwrap();
        assert_eq!((d.opcode, d.reg() & 7, d.imm as u8, d.len), (0x80, 4, 0xfd, 4));
        // lock btr $1, 0x8(%rdi)  (0f ba /6 ib, disp8)
        let d = decode(&[0xf0, 0x48, 0x0f, 0xba, 0x77, 0x08, 0x01]).unwrap();
        assert_eq!((d.opcode, d.reg() & 7, d.imm, d.len), (0xba, 6, 1, 7));
        // movq $imm32,(%rax,%rbx,8) with SIB
        let d = decode(&[0x48, 0xc7, 0x04, 0xd8, 0x78, 0x56, 0x34, 0x12]).unwrap();
        assert_eq!((d.len, d.imm), (8, 0x1234_5678));
        // mov %r12,0x10(%r13)   REX.WRB
        let d = decode(&[0x4d, 0x89, 0x65, 0x10]).unwrap();
        assert_eq!((d.reg(), d.len), (12, 4));
    }

    #[test]
    fn privileged_ops() {
        assert_eq!(decode(&[0x0f, 0x30]).unwrap().len, 2); // wrmsr
        assert_eq!(decode(&[0x0f, 0x01, 0xd1]).unwrap().len, 3); // xsetbv
        let d = decode(&[0x0f, 0x22, 0xe0]).unwrap(); // mov %rax,%cr4
        assert_eq!((d.reg(), d.rm(), d.len), (4, 0, 3));
        assert_eq!(decode(&[0xe6, 0x80]).unwrap().len, 2); // out %al,$0x80
        assert_eq!(decode(&[0xcd, 0x80]).unwrap().imm as u8, 0x80);
        assert!(decode(&[0x0f, 0x0b]).is_some());
        assert!(decode(&[0x90]).is_none());
        assert!(decode(&[0x48, 0x89]).is_none(), "truncated");
    }
}

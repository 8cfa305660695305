//! COM1 (16550 UART at 0x3f8): Cocoon's log, and the standalone console.

use core::fmt;

use spin::Mutex;
use uart_16550::SerialPort;

/// I/O base of COM1.
pub const COM1_BASE: u16 = 0x3f8;

/// Bytes a 16550A's transmit FIFO takes once its line status says it is empty.
const TX_FIFO_BYTES: u8 = 16;
/// Line status: transmit holding register (with FIFOs: the whole FIFO) empty.
const LSR_THRE: u8 = 1 << 5;
/// Interrupt identification, bits 6-7: both set when the FIFOs are on (16550A).
const IIR_FIFOS_ON: u8 = 0xc0;

pub struct Serial {
    port: Option<SerialPort>,
    /// Bytes the transmit FIFO takes before its status must be read again.
    burst: u8,
    /// Bytes that may still be written without reading the status: every
    /// port access is an exit to the device model in an HVM domain, so the
    /// status is read once per FIFO-full rather than once per byte.
    room: u8,
}

impl Serial {
    pub const fn new() -> Self {
        Serial { port: None, burst: 1, room: 0 }
    }

    /// Program the UART (115200 8N1, FIFOs on), if there is one: a Xen PVH
    /// domain has none, and its empty ports read as all ones (which would look
    /// like an endless stream of input).
    pub fn init(&mut self) {
        if !uart_present() {
            self.port = None;
            return;
        }
        // SAFETY: COM1's ports belong to Cocoon; nothing else drives them.
        let mut p = unsafe { SerialPort::new(COM1_BASE) };
        p.init();
        self.port = Some(p);
        // init() turned the FIFOs on; a 16450 has none and takes one byte at a time.
        self.burst = if read_reg(2) & IIR_FIFOS_ON == IIR_FIFOS_ON { TX_FIFO_BYTES } else { 1 };
        self.room = 0;
    }

    /// Send bytes as they are, a FIFO-full per `rep outsb`: in an HVM domain
    /// that is one exit to the device model for up to 16 bytes (Xen passes a
    /// string I/O on as one request) where a byte at a time took two, the
    /// status read and the write. Under nested TCG each exit costs about 5 ms,
    /// which made a console on COM1 (cocoon.compat=3.4) print 200 bytes/s.
    pub fn write_bytes(&mut self, mut bytes: &[u8]) {
        if self.port.is_none() {
            return;
        }
        while !bytes.is_empty() {
            if self.room == 0 {
                while read_reg(5) & LSR_THRE == 0 {
                    core::hint::spin_loop();
                }
                self.room = self.burst;
            }
            let n = bytes.len().min(self.room as usize);
            write_data(&bytes[..n]);
            self.room -= n as u8;
            bytes = &bytes[n..];
        }
    }

    /// A received byte, if one is waiting.
    pub fn try_read_byte(&mut self) -> Option<u8> {
        self.port.as_mut()?.try_receive().ok()
    }
}

impl Default for Serial {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Serial {
    /// Text: each newline goes out as CR LF.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut lines = s.split('\n');
        if let Some(first) = lines.next() {
            self.write_bytes(first.as_bytes());
        }
        for line in lines {
            self.write_bytes(b"\r\n");
            self.write_bytes(line.as_bytes());
        }
        Ok(())
    }
}

/// COM1's register at `offset` (only called once the UART was found).
fn read_reg(offset: u16) -> u8 {
    #[cfg(target_os = "none")]
    {
        use x86_64::instructions::port::Port;
        // SAFETY: COM1's registers belong to Cocoon; reading IIR or LSR only
        // clears status that Cocoon does not use (it polls).
        unsafe { Port::<u8>::new(COM1_BASE + offset).read() }
    }
    #[cfg(not(target_os = "none"))]
    {
        let _ = offset;
        // A host build: an empty FIFO.
        IIR_FIFOS_ON | LSR_THRE
    }
}

/// `bytes` to COM1's transmit register, as one string I/O.
fn write_data(bytes: &[u8]) {
    #[cfg(target_os = "none")]
    // SAFETY: `bytes` is readable for its length; the direction flag is clear
    // (the Rust ABI keeps it so); writing THR sends bytes and nothing else.
    unsafe {
        core::arch::asm!(
            "rep outsb",
            in("dx") COM1_BASE,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(nostack, readonly, preserves_flags),
        )
    }
    #[cfg(not(target_os = "none"))]
    let _ = bytes;
}

/// A 16550 keeps what is written to its scratch register (offset 7).
fn uart_present() -> bool {
    #[cfg(target_os = "none")]
    {
        use x86_64::instructions::port::Port;
        let mut scratch: Port<u8> = Port::new(COM1_BASE + 7);
        // SAFETY: the scratch register has no side effects.
        unsafe {
            scratch.write(0x5a);
            let a = scratch.read();
            scratch.write(0xa5);
            let b = scratch.read();
            a == 0x5a && b == 0xa5
        }
    }
    #[cfg(not(target_os = "none"))]
    true
}

/// The one COM1 of the machine.
pub static COM1: Mutex<Serial> = Mutex::new(Serial::new());

/// Write to COM1 even if the lock is held by code that was interrupted (for
/// fault reports, which must get out whatever state the machine is in).
pub fn force_write(args: fmt::Arguments) {
    use fmt::Write;
    if COM1.is_locked() {
        // SAFETY: only called on the fatal path, which never returns to the holder.
        unsafe { COM1.force_unlock() };
    }
    struct Both;
    impl fmt::Write for Both {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let _ = COM1.lock().write_str(s);
            crate::xen_hvm::console_write(s.as_bytes(), true);
            Ok(())
        }
    }
    let _ = Both.write_fmt(args);
}

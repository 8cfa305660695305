//! COM1 (16550 UART at 0x3f8): Cocoon's log, and the standalone console.

use core::fmt;

use spin::Mutex;
use uart_16550::SerialPort;

/// I/O base of COM1.
pub const COM1_BASE: u16 = 0x3f8;

pub struct Serial {
    port: Option<SerialPort>,
}

impl Serial {
    pub const fn new() -> Self {
        Serial { port: None }
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
    }

    pub fn write_byte(&mut self, b: u8) {
        if let Some(p) = self.port.as_mut() {
            p.send(b);
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
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
        Ok(())
    }
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

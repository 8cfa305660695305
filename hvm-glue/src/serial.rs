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

    /// Program the UART (115200 8N1, FIFOs on).
    pub fn init(&mut self) {
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
    let _ = COM1.lock().write_fmt(args);
}

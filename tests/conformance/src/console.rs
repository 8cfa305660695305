//! `println!` through HYPERVISOR_console_io, a line at a time.

use core::fmt::{self, Write};

/// A line buffer on the stack, written out when full and when dropped.
pub struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    pub const fn new() -> Self {
        Line { buf: [0; 160], len: 0 }
    }

    fn flush(&mut self) {
        crate::xen::console_write(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.flush();
    }
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut line = $crate::console::Line::new();
        let _ = writeln!(line, $($arg)*);
    }};
}

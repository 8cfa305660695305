//! `log` over COM1.

use core::fmt::Write;

use hvm_glue::serial::COM1;

struct SerialLogger;

impl log::Log for SerialLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            // One line at a time: CPUs log concurrently (with interrupts off, so
            // no handler on this CPU can wait for the lock this CPU holds).
            let _line = LINE.lock();
            let _ = writeln!(Console, "cocoon: [{:<5}] {}", r.level(), r.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: SerialLogger = SerialLogger;
static LINE: spin::Mutex<()> = spin::Mutex::new(());

/// Cocoon's console: COM1 when there is one, and Xen's PV console of this
/// domain when Cocoon runs on Xen.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let _ = COM1.lock().write_str(s);
        for (i, line) in s.split('\n').enumerate() {
            if i > 0 {
                hvm_glue::xen_hvm::console_write(b"\r\n", false);
            }
            hvm_glue::xen_hvm::console_write(line.as_bytes(), false);
        }
        Ok(())
    }
}

pub fn init() {
    COM1.lock().init();
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

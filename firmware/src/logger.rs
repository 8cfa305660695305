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
            let mut s = COM1.lock();
            let _ = writeln!(s, "cocoon: [{:<5}] {}", r.level(), r.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: SerialLogger = SerialLogger;

pub fn init() {
    COM1.lock().init();
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

//! A small xenstore inside Cocoon for the standalone backend, so that a PV
//! guest's xenbus comes up at once: the wire protocol of `io/xs_wire.h`
//! over the guest's ring page, a flat tree of paths, watches and
//! (trivial, always-succeeding) transactions.

use crate::abi::*;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::builder::{Frame, GuestMemory};

const XENSTORE_RING_SIZE: u32 = 1024;
const REQ: usize = 0;
const RSP: usize = 1024;
const REQ_CONS: usize = 2048;
const REQ_PROD: usize = 2052;
const RSP_CONS: usize = 2056;
const RSP_PROD: usize = 2060;
const HDR: usize = 16;
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;

fn rd32(f: &Frame, off: usize) -> u32 {
    u32::from_le_bytes(f[off..off + 4].try_into().unwrap())
}

fn wr32(f: &mut Frame, off: usize, v: u32) {
    f[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub struct XenStore {
    tree: BTreeMap<String, String>,
    watches: Vec<(String, String)>,
    domain_path: String,
    next_tx: u32,
    /// A request assembled across ring wraps / partial writes.
    pending: Vec<u8>,
    /// Responses not yet fitting in the ring.
    outbox: Vec<u8>,
    /// The first event of a new watch, sent right after the WATCH reply.
    queue_after_reply: Option<Vec<u8>>,
}

impl XenStore {
    /// The guest's vCPUs as the toolstack lists them (`cpu/N/availability`,
    /// which Linux's CPU-hotplug watcher reads): `online` for each of `nr`.
    pub fn set_vcpus(&mut self, nr: u32) {
        for n in 0..nr {
            self.write(&format!("cpu/{n}"), "");
            self.write(&format!("cpu/{n}/availability"), "online");
        }
    }

    /// A store for domain `domid` with `mem_kb` of memory.
    pub fn new(domid: u32, name: &str, mem_kb: u64) -> Self {
        let d = format!("/local/domain/{domid}");
        let mut tree = BTreeMap::new();
        for (k, v) in [
            ("", ""),
            ("/local", ""),
            ("/local/domain", ""),
            (d.as_str(), ""),
            ("name", name),
            ("domid", &domid.to_string()),
            ("device", ""),
            ("control", ""),
            ("control/platform-feature-multiprocessor-suspend", "0"),
            ("memory", ""),
            ("memory/target", &mem_kb.to_string()),
            ("memory/static-max", &mem_kb.to_string()),
            ("cpu", ""),
            ("cpu/0", ""),
            ("cpu/0/availability", "online"),
            ("console", ""),
            ("data", ""),
        ] {
            let key = if k.starts_with('/') || k.is_empty() { k.to_string() } else { format!("{d}/{k}") };
            tree.insert(if key.is_empty() { "/".into() } else { key }, v.to_string());
        }
        XenStore {
            tree,
            watches: Vec::new(),
            domain_path: d,
            next_tx: 1,
            pending: Vec::new(),
            outbox: Vec::new(),
            queue_after_reply: None,
        }
    }

    fn abs(&self, p: &str) -> String {
        let p = p.trim_end_matches('\0');
        if p.starts_with('/') {
            p.to_string()
        } else {
            format!("{}/{}", self.domain_path, p)
        }
    }

    fn mkdir_parents(&mut self, path: &str) {
        let mut cur = String::new();
        for part in path.split('/').filter(|s| !s.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            self.tree.entry(cur.clone()).or_default();
        }
    }

    fn children(&self, path: &str) -> Vec<String> {
        let prefix = if path == "/" { "/".to_string() } else { format!("{path}/") };
        self.tree
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
            })
            .collect()
    }

    /// Queue WATCH_EVENT messages for every watch covering `path`.
    fn fire(&mut self, path: &str) {
        let hits: Vec<(String, String)> = self
            .watches
            .iter()
            .filter(|(w, _)| {
                let wa = self.abs(w);
                path == wa || path.starts_with(&format!("{wa}/"))
            })
            .cloned()
            .collect();
        for (w, token) in hits {
            // Relative watches get relative paths back.
            let shown =
                if w.starts_with('/') { path.to_string() } else { path[self.domain_path.len() + 1..].to_string() };
            let body = format!("{shown}\0{token}\0");
            self.queue(XS_WATCH_EVENT, 0, 0, body.as_bytes());
        }
    }

    fn queue(&mut self, ty: u32, req_id: u32, tx: u32, body: &[u8]) {
        for v in [ty, req_id, tx, body.len() as u32] {
            self.outbox.extend_from_slice(&v.to_le_bytes());
        }
        self.outbox.extend_from_slice(body);
    }

    /// Handle one request; returns (type, payload) of the reply.
    pub fn request(&mut self, ty: u32, payload: &[u8]) -> (u32, Vec<u8>) {
        let text = String::from_utf8_lossy(payload).into_owned();
        let args: Vec<&str> = text.split('\0').collect();
        let arg0 = args.first().copied().unwrap_or("");
        let ok = (ty, b"OK\0".to_vec());
        let err = |e: &str| (XS_ERROR, format!("{e}\0").into_bytes());
        match ty {
            XS_READ => match self.tree.get(&self.abs(arg0)) {
                Some(v) => (ty, v.as_bytes().to_vec()),
                None => err("ENOENT"),
            },
            XS_WRITE => {
                let path = self.abs(arg0);
                let value = payload.iter().position(|&b| b == 0).map(|i| &payload[i + 1..]).unwrap_or(&[]);
                self.mkdir_parents(&path);
                self.tree.insert(path.clone(), String::from_utf8_lossy(value).into_owned());
                self.fire(&path);
                ok
            }
            XS_MKDIR => {
                let path = self.abs(arg0);
                self.mkdir_parents(&path);
                self.fire(&path);
                ok
            }
            XS_RM => {
                let path = self.abs(arg0);
                if !self.tree.contains_key(&path) {
                    return err("ENOENT");
                }
                let sub = format!("{path}/");
                self.tree.retain(|k, _| k != &path && !k.starts_with(&sub));
                self.fire(&path);
                ok
            }
            XS_DIRECTORY => match self.tree.contains_key(&self.abs(arg0)) {
                true => {
                    let mut out = Vec::new();
                    for c in self.children(&self.abs(arg0)) {
                        out.extend_from_slice(c.as_bytes());
                        out.push(0);
                    }
                    (ty, out)
                }
                false => err("ENOENT"),
            },
            XS_GET_PERMS => match self.tree.contains_key(&self.abs(arg0)) {
                true => (ty, b"b0\0".to_vec()),
                false => err("ENOENT"),
            },
            XS_SET_PERMS => ok,
            XS_WATCH => {
                let token = args.get(1).copied().unwrap_or("").to_string();
                self.watches.push((arg0.to_string(), token.clone()));
                let reply = ok;
                // A new watch fires once at once, for its own path.
                let shown = arg0.to_string();
                let body = format!("{shown}\0{token}\0");
                self.queue_after_reply = Some(body.into_bytes());
                reply
            }
            XS_UNWATCH => {
                let token = args.get(1).copied().unwrap_or("");
                self.watches.retain(|(p, t)| !(p == arg0 && t == token));
                ok
            }
            XS_RESET_WATCHES => {
                self.watches.clear();
                ok
            }
            XS_TRANSACTION_START => {
                let id = self.next_tx;
                self.next_tx += 1;
                (ty, format!("{id}\0").into_bytes())
            }
            XS_TRANSACTION_END => ok,
            XS_GET_DOMAIN_PATH => (ty, format!("{}\0", self.domain_path).into_bytes()),
            XS_IS_DOMAIN_INTRODUCED => (ty, b"T\0".to_vec()),
            _ => err("ENOSYS"),
        }
    }
}

impl XenStore {
    /// Consume the guest's requests from the ring page `mfn` and write the
    /// replies. Returns true when anything was consumed or produced (the
    /// caller then notifies the guest's port).
    pub fn service(&mut self, mem: &mut impl GuestMemory, mfn: u64) -> bool {
        let mut progress = false;
        // Take in every request byte.
        {
            let f = mem.frame_mut(mfn);
            let (cons, prod) = (rd32(f, REQ_CONS), rd32(f, REQ_PROD));
            let avail = prod.wrapping_sub(cons);
            if avail > 0 && avail <= XENSTORE_RING_SIZE {
                for i in 0..avail {
                    self.pending.push(f[REQ + (cons.wrapping_add(i) % XENSTORE_RING_SIZE) as usize]);
                }
                wr32(f, REQ_CONS, prod);
                progress = true;
            }
        }
        // Handle every complete message.
        while self.pending.len() >= HDR {
            let h = |i: usize| u32::from_le_bytes(self.pending[i * 4..i * 4 + 4].try_into().unwrap());
            let (ty, req_id, tx, len) = (h(0), h(1), h(2), h(3) as usize);
            if len > XENSTORE_PAYLOAD_MAX {
                // A broken guest; drop what it sent.
                self.pending.clear();
                break;
            }
            if self.pending.len() < HDR + len {
                break;
            }
            let body: Vec<u8> = self.pending[HDR..HDR + len].to_vec();
            self.pending.drain(..HDR + len);
            let (rty, reply) = self.request(ty, &body);
            self.queue(rty, req_id, tx, &reply);
            if let Some(ev) = self.queue_after_reply.take() {
                self.queue(XS_WATCH_EVENT, 0, 0, &ev);
            }
        }
        // Send what fits.
        let f = mem.frame_mut(mfn);
        let (cons, prod) = (rd32(f, RSP_CONS), rd32(f, RSP_PROD));
        let room = XENSTORE_RING_SIZE - prod.wrapping_sub(cons).min(XENSTORE_RING_SIZE);
        let n = (room as usize).min(self.outbox.len());
        for (i, b) in self.outbox.drain(..n).enumerate() {
            f[RSP + (prod.wrapping_add(i as u32) % XENSTORE_RING_SIZE) as usize] = b;
        }
        if n > 0 {
            wr32(f, RSP_PROD, prod.wrapping_add(n as u32));
            progress = true;
        }
        progress
    }

    /// Write `value` at `path` from Cocoon's side (e.g. control/shutdown).
    pub fn write(&mut self, path: &str, value: &str) {
        let p = self.abs(path);
        self.mkdir_parents(&p);
        self.tree.insert(p.clone(), value.to_string());
        self.fire(&p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VecMemory;

    fn send(mem: &mut VecMemory, ty: u32, req_id: u32, body: &[u8]) {
        let f = mem.frame_mut(0);
        let prod = rd32(f, REQ_PROD);
        let mut msg = Vec::new();
        for v in [ty, req_id, 0, body.len() as u32] {
            msg.extend_from_slice(&v.to_le_bytes());
        }
        msg.extend_from_slice(body);
        for (i, b) in msg.iter().enumerate() {
            f[REQ + (prod as usize + i) % 1024] = *b;
        }
        wr32(f, REQ_PROD, prod + msg.len() as u32);
    }

    fn recv(mem: &mut VecMemory) -> Vec<(u32, u32, Vec<u8>)> {
        let f = mem.frame_mut(0);
        let (mut cons, prod) = (rd32(f, RSP_CONS), rd32(f, RSP_PROD));
        let mut out = Vec::new();
        while cons < prod {
            let b = |i: u32| f[RSP + ((cons + i) % 1024) as usize];
            let word = |i: u32| u32::from_le_bytes([b(i), b(i + 1), b(i + 2), b(i + 3)]);
            let (ty, id, len) = (word(0), word(4), word(12));
            let body: Vec<u8> = (0..len).map(|i| b(16 + i)).collect();
            out.push((ty, id, body));
            cons += 16 + len;
        }
        wr32(f, RSP_CONS, cons);
        out
    }

    #[test]
    fn read_write_directory_watch() {
        let mut xs = XenStore::new(1, "guest", 524288);
        let mut mem = VecMemory::new(0, 1);
        send(&mut mem, XS_READ, 1, b"memory/target\0");
        send(&mut mem, XS_WATCH, 2, b"control/shutdown\0tok\0");
        send(&mut mem, XS_READ, 3, b"nope\0");
        assert!(xs.service(&mut mem, 0));
        let r = recv(&mut mem);
        assert_eq!(r[0], (XS_READ, 1, b"524288".to_vec()));
        assert_eq!(r[1], (XS_WATCH, 2, b"OK\0".to_vec()));
        assert_eq!(r[2], (XS_WATCH_EVENT, 0, b"control/shutdown\0tok\0".to_vec()));
        assert_eq!(r[3], (XS_ERROR, 3, b"ENOENT\0".to_vec()));
        xs.write("control/shutdown", "poweroff");
        send(&mut mem, XS_DIRECTORY, 4, b"control\0");
        xs.service(&mut mem, 0);
        let r = recv(&mut mem);
        assert_eq!(r[0], (XS_WATCH_EVENT, 0, b"control/shutdown\0tok\0".to_vec()));
        let dir = String::from_utf8(r[1].2.clone()).unwrap();
        assert!(dir.contains("shutdown\0") && dir.contains("platform-feature-multiprocessor-suspend"), "{dir}");
        send(&mut mem, XS_GET_DOMAIN_PATH, 5, b"1\0");
        xs.service(&mut mem, 0);
        assert_eq!(recv(&mut mem)[0].2, b"/local/domain/1\0".to_vec());
    }
}

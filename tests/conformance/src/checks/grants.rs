//! The grant table on the domain's own grants (`grant_table.h`, Xen 4.17's
//! `common/grant_table.c`): v1 and v2 tables, maps of a grant at a virtual
//! address with the grant's in-use flags, read-only grants, unmap, copy,
//! swap_grant_ref, and the status frames of v2.

use core::arch::asm;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use super::{ensure, ensure_eq, Outcome};
use crate::xen::*;
use crate::{mfn_of, traps, xenstore};

#[repr(C)]
#[derive(Default)]
struct SetupTable {
    dom: u16,
    _pad: u16,
    nr_frames: u32,
    status: i16,
    _pad2: [u8; 6],
    frame_list: u64,
}
#[repr(C)]
#[derive(Default)]
struct QuerySize {
    dom: u16,
    _pad: u16,
    nr_frames: u32,
    max_nr_frames: u32,
    status: i16,
}
#[repr(C)]
#[derive(Default)]
struct GetVersion {
    dom: u16,
    _pad: u16,
    version: u32,
}
#[repr(C)]
#[derive(Default)]
struct GetStatusFrames {
    nr_frames: u32,
    dom: u16,
    status: i16,
    frame_list: u64,
}
#[repr(C)]
#[derive(Default)]
struct MapGrantRef {
    host_addr: u64,
    flags: u32,
    gref: u32,
    dom: u16,
    status: i16,
    handle: u32,
    dev_bus_addr: u64,
}
#[repr(C)]
#[derive(Default)]
struct UnmapGrantRef {
    host_addr: u64,
    dev_bus_addr: u64,
    handle: u32,
    status: i16,
}
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CopyPtr {
    u: u64,
    domid: u16,
    offset: u16,
}
#[repr(C)]
#[derive(Default)]
struct Copy {
    source: CopyPtr,
    dest: CopyPtr,
    len: u16,
    flags: u16,
    status: i16,
}
#[repr(C)]
#[derive(Default)]
struct SwapGrantRef {
    ref_a: u32,
    ref_b: u32,
    status: i16,
}

const _: () = {
    assert!(core::mem::size_of::<SetupTable>() == 24);
    assert!(core::mem::size_of::<QuerySize>() == 16);
    assert!(core::mem::size_of::<GetStatusFrames>() == 16);
    assert!(core::mem::size_of::<MapGrantRef>() == 32);
    assert!(core::mem::size_of::<UnmapGrantRef>() == 24);
    assert!(core::mem::size_of::<Copy>() == 40);
    assert!(core::mem::offset_of!(Copy, status) == 36);
    assert!(core::mem::size_of::<SwapGrantRef>() == 12);
};

fn gnttab<T>(cmd: u64, arg: &mut T) -> i64 {
    hypercall(__HYPERVISOR_grant_table_op, [cmd, arg as *mut T as u64, 1, 0, 0])
}

#[repr(C, align(4096))]
struct Page([u64; 512]);

static mut GRANT_FRAME: Page = Page([0; 512]);
static mut STATUS_FRAME: Page = Page([0; 512]);
static mut DATA: Page = Page([0; 512]);
static mut DEST: Page = Page([0; 512]);
/// Where grants get mapped; nothing else touches it.
static mut MAP_AT: Page = Page([0; 512]);

fn va<T>(p: *const T) -> u64 {
    p as u64
}

fn map_frame(at: u64, mfn: u64) -> i64 {
    update_va_mapping(at, (mfn << 12) | _PAGE_PRESENT | _PAGE_RW, UVMF_INVLPG)
}

/// Set up `nr` grant frames and map the first at GRANT_FRAME.
fn setup() -> Result<(), super::Failed> {
    let mut frames = [0u64; 1];
    let mut st = SetupTable {
        dom: DOMID_SELF as u16,
        nr_frames: 1,
        frame_list: frames.as_mut_ptr() as u64,
        ..Default::default()
    };
    ensure_eq!(gnttab(GNTTABOP_setup_table, &mut st), 0, "setup_table");
    ensure_eq!(st.status, GNTST_okay, "setup_table's status");
    ensure_eq!(map_frame(va(addr_of!(GRANT_FRAME)), frames[0]), 0, "mapping the grant frame");
    Ok(())
}

/// A pointer `off` bytes into one of the pages above.
fn at<T>(page: *mut Page, off: usize) -> *mut T {
    (page as usize + off) as *mut T
}

fn flags_v1(r: usize) -> u16 {
    // SAFETY: entry `r` of the mapped grant frame (r < 512).
    unsafe { read_volatile(at::<u16>(addr_of_mut!(GRANT_FRAME), r * 8)) }
}

/// Grant `frame` to `dom` in v1 entry `r`: domid and frame, then the flags.
fn grant_v1(r: usize, dom: u16, frame: u64, flags: u16) {
    let g = addr_of_mut!(GRANT_FRAME);
    // SAFETY: entry `r` of the mapped grant frame, as a guest fills it.
    unsafe {
        write_volatile(at::<u16>(g, r * 8 + 2), dom);
        write_volatile(at::<u32>(g, r * 8 + 4), frame as u32);
        write_volatile(at::<u16>(g, r * 8), flags);
    }
}

/// The same in v2 (16-byte entries, the frame a u64 at offset 8).
fn grant_v2(r: usize, dom: u16, frame: u64, flags: u16) {
    let g = addr_of_mut!(GRANT_FRAME);
    // SAFETY: entry `r` of the mapped grant frame (r < 256).
    unsafe {
        write_volatile(at::<u16>(g, r * 16 + 2), dom);
        write_volatile(at::<u64>(g, r * 16 + 8), frame);
        write_volatile(at::<u16>(g, r * 16), flags);
    }
}

fn status_v2(r: usize) -> u16 {
    // SAFETY: status word `r` of the mapped status frame.
    unsafe { read_volatile(at::<u16>(addr_of_mut!(STATUS_FRAME), r * 2)) }
}

fn map(r: u32, dom: u16, flags: u32) -> MapGrantRef {
    let mut m = MapGrantRef { host_addr: va(addr_of!(MAP_AT)), flags, gref: r, dom, status: 99, ..Default::default() };
    gnttab(GNTTABOP_map_grant_ref, &mut m);
    m
}

fn unmap(handle: u32) -> i16 {
    let mut u = UnmapGrantRef { host_addr: va(addr_of!(MAP_AT)), handle, status: 99, ..Default::default() };
    gnttab(GNTTABOP_unmap_grant_ref, &mut u);
    u.status
}

/// Read word `i` at MAP_AT; `None` when it faults (#PF skipped).
fn read_mapped(i: usize) -> Option<u64> {
    traps::expect_skip(3);
    let mut v = 0xdead_u64;
    // SAFETY: a read of MAP_AT, mapped or not; a #PF resumes after the
    // 3-byte instruction (48 8b 01) with rax unchanged.
    unsafe { asm!("mov rax, qword ptr [rcx]", in("rcx") va(addr_of!(MAP_AT)) + 8 * i as u64, inout("rax") v) };
    (traps::taken().0 == 0).then_some(v)
}

/// Write word `i` at MAP_AT; false when it faults, with the #PF's error code.
fn write_mapped(i: usize, v: u64) -> Result<(), Option<u64>> {
    traps::expect_skip(3);
    // SAFETY: as read_mapped (48 89 01).
    unsafe { asm!("mov qword ptr [rcx], rax", in("rcx") va(addr_of!(MAP_AT)) + 8 * i as u64, in("rax") v) };
    let (n, t) = traps::taken();
    if n == 0 {
        Ok(())
    } else {
        Err(t.error_code)
    }
}

fn data(i: usize) -> u64 {
    // SAFETY: this module's own page (it may also be mapped at MAP_AT).
    unsafe { read_volatile(at::<u64>(addr_of_mut!(DATA), 8 * i)) }
}

fn fill_data() {
    for i in 0..512 {
        // SAFETY: as data.
        unsafe { write_volatile(at::<u64>(addr_of_mut!(DATA), 8 * i), 0x0101_0101_0101_0101 * (i as u64 % 255 + 1)) };
    }
}

fn version() -> Result<u32, super::Failed> {
    let mut v = GetVersion { dom: DOMID_SELF as u16, ..Default::default() };
    ensure_eq!(gnttab(GNTTABOP_get_version, &mut v), 0, "get_version");
    Ok(v.version)
}

fn set_version(v: u32) -> i64 {
    let mut a = v;
    gnttab(GNTTABOP_set_version, &mut a)
}

/// The domain's id, which grant entries grant to and maps name.
fn domid() -> Result<u16, super::Failed> {
    xenstore::domid().map_err(|e| {
        println!("conformance:   reading domid from xenstore: {e}");
        super::Failed
    })
}

pub fn v1_maps_copy_swap() -> Outcome {
    let dom = domid()?;
    setup()?;
    let mut q = QuerySize { dom: DOMID_SELF as u16, status: 99, ..Default::default() };
    ensure_eq!(gnttab(GNTTABOP_query_size, &mut q), 0, "query_size");
    ensure!(
        q.status == GNTST_okay && q.nr_frames >= 1 && q.max_nr_frames >= q.nr_frames,
        "query_size gave status {} frames {} of {}",
        q.status,
        q.nr_frames,
        q.max_nr_frames
    );
    ensure_eq!(version()?, 1, "the version a domain starts with");
    fill_data();
    let data_mfn = mfn_of(va(addr_of!(DATA)));
    grant_v1(10, dom, data_mfn, GTF_permit_access);
    // Map it read-write at MAP_AT: the frame's data there, both in-use flags set.
    let m = map(10, dom, GNTMAP_host_map);
    ensure_eq!(m.status, GNTST_okay, "map_grant_ref of the domain's own grant");
    ensure_eq!(read_mapped(5), Some(data(5)), "word 5 read through the mapping");
    ensure_eq!(flags_v1(10), GTF_permit_access | GTF_reading | GTF_writing, "the entry's flags while mapped");
    ensure_eq!(write_mapped(6, 0x6666), Ok(()), "a write through the mapping");
    ensure_eq!(data(6), 0x6666, "the granted frame after it");
    ensure_eq!(unmap(m.handle), GNTST_okay, "unmap_grant_ref");
    ensure_eq!(flags_v1(10), GTF_permit_access, "the entry's flags after unmap");
    ensure_eq!(read_mapped(5), None, "a read at the unmapped address (#PF)");
    ensure_eq!(unmap(m.handle), GNTST_bad_handle, "unmapping the same handle again");
    // A device mapping (no host address): the frame's bus address, which
    // for a PV domain without an IOMMU is its machine address.
    let mut d = MapGrantRef { flags: GNTMAP_device_map, gref: 10, dom, status: 99, ..Default::default() };
    gnttab(GNTTABOP_map_grant_ref, &mut d);
    ensure_eq!((d.status, d.dev_bus_addr), (GNTST_okay, data_mfn << 12), "a device map: (status, dev_bus_addr)");
    ensure_eq!(flags_v1(10), GTF_permit_access | GTF_reading | GTF_writing, "the entry's flags while device-mapped");
    let mut u = UnmapGrantRef { dev_bus_addr: data_mfn << 12, handle: d.handle, status: 99, ..Default::default() };
    gnttab(GNTTABOP_unmap_grant_ref, &mut u);
    ensure_eq!(u.status, GNTST_okay, "unmapping the device mapping");
    ensure_eq!(flags_v1(10), GTF_permit_access, "the entry's flags after it");
    // Bad references and domains.
    ensure_eq!(map(q.nr_frames * 512, dom, GNTMAP_host_map).status, GNTST_bad_gntref, "a ref past the table");
    ensure_eq!(map(10, DOMID_SELF as u16, GNTMAP_host_map).status, GNTST_bad_domain, "a map naming DOMID_SELF");
    // A read-only grant: not mapped writable; mapped read-only, writes fault.
    grant_v1(11, dom, data_mfn, GTF_permit_access | GTF_readonly);
    let rw = map(11, dom, GNTMAP_host_map);
    ensure!(rw.status != GNTST_okay, "a read-only grant mapped writable: status {}", rw.status);
    ensure_eq!(read_mapped(0), None, "the address after the refused map");
    let ro = map(11, dom, GNTMAP_host_map | GNTMAP_readonly);
    ensure_eq!(ro.status, GNTST_okay, "the read-only grant mapped read-only");
    ensure_eq!(read_mapped(1), Some(data(1)), "reading it");
    ensure_eq!(write_mapped(1, 0), Err(Some(3)), "writing it (#PF: present, write)");
    ensure_eq!(flags_v1(11), GTF_permit_access | GTF_readonly | GTF_reading, "its flags while mapped");
    ensure_eq!(unmap(ro.handle), GNTST_okay, "unmapping it");
    // Copy from a grant to a frame of the domain's.
    let dest_mfn = mfn_of(va(addr_of!(DEST)));
    let mut c = Copy {
        source: CopyPtr { u: 10, domid: dom, offset: 8 },
        dest: CopyPtr { u: dest_mfn, domid: DOMID_SELF as u16, offset: 100 },
        len: 16,
        flags: GNTCOPY_source_gref,
        status: 99,
    };
    ensure_eq!(gnttab(GNTTABOP_copy, &mut c), 0, "copy");
    ensure_eq!(c.status, GNTST_okay, "copy's status");
    // SAFETY: this module's own page, bytes 100..116.
    let copied: [u8; 16] = unsafe { read_volatile(at::<[u8; 16]>(addr_of_mut!(DEST), 100)) };
    // SAFETY: as above, bytes 8..24 of DATA.
    let source: [u8; 16] = unsafe { read_volatile(at::<[u8; 16]>(addr_of_mut!(DATA), 8)) };
    ensure_eq!(copied, source, "the copied bytes");
    ensure_eq!(flags_v1(10), GTF_permit_access, "the source entry after the copy (pinned only during it)");
    c.dest.offset = 4090;
    c.status = 99;
    gnttab(GNTTABOP_copy, &mut c);
    ensure_eq!(c.status, GNTST_bad_copy_arg, "a copy past the end of the page");
    // Swap two entries.
    let mut s = SwapGrantRef { ref_a: 10, ref_b: 11, status: 99 };
    ensure_eq!(gnttab(GNTTABOP_swap_grant_ref, &mut s), 0, "swap_grant_ref");
    ensure_eq!(s.status, GNTST_okay, "swap's status");
    ensure_eq!(
        (flags_v1(10), flags_v1(11)),
        (GTF_permit_access | GTF_readonly, GTF_permit_access),
        "the entries' flags after the swap"
    );
    grant_v1(10, 0, 0, 0);
    grant_v1(11, 0, 0, 0);
    Ok(())
}

pub fn v2_status_frames() -> Outcome {
    let dom = domid()?;
    ensure_eq!(set_version(2), 0, "set_version(2)");
    ensure_eq!(version()?, 2, "the version after it");
    let mut frames = [0u64; 1];
    let mut gs =
        GetStatusFrames { nr_frames: 1, dom: DOMID_SELF as u16, status: 99, frame_list: frames.as_mut_ptr() as u64 };
    ensure_eq!(gnttab(GNTTABOP_get_status_frames, &mut gs), 0, "get_status_frames");
    ensure_eq!(gs.status, GNTST_okay, "get_status_frames' status");
    ensure_eq!(map_frame(va(addr_of!(STATUS_FRAME)), frames[0]), 0, "mapping the status frame");
    setup()?;
    fill_data();
    grant_v2(10, dom, mfn_of(va(addr_of!(DATA))), GTF_permit_access);
    let m = map(10, dom, GNTMAP_host_map);
    ensure_eq!(m.status, GNTST_okay, "map_grant_ref of a v2 grant");
    ensure_eq!(read_mapped(7), Some(data(7)), "word 7 read through the mapping");
    ensure_eq!(status_v2(10), GTF_reading | GTF_writing, "the status word while mapped");
    ensure_eq!(set_version(1), -XEN_EBUSY, "set_version(1) while a grant is mapped");
    ensure_eq!(unmap(m.handle), GNTST_okay, "unmap");
    ensure_eq!(status_v2(10), 0, "the status word after unmap");
    grant_v2(10, 0, 0, 0);
    // Back to v1 needs the status frame unmapped first (Xen: -EBUSY while mapped).
    ensure_eq!(update_va_mapping(va(addr_of!(STATUS_FRAME)), 0, UVMF_INVLPG), 0, "unmapping the status frame");
    ensure_eq!(set_version(1), 0, "set_version(1)");
    ensure_eq!(version()?, 1, "the version after it");
    Ok(())
}

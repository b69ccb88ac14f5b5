//! Parsing a typical message and reading its key headers allocates nothing: a counting
//! global allocator proves it (a count, not a timing, so it is deterministic).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sip_message::header::Contact;
use sip_message::Message;

#[path = "../benches/support/messages.rs"]
mod messages;

struct Counting;

thread_local! {
    /// Allocations made by this thread: the test harness's own threads allocate meanwhile.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_for(msg: &'static [u8]) -> usize {
    let buf = bytes::Bytes::from_static(msg);
    let before = ALLOCATIONS.with(Cell::get);
    let m = Message::parse(buf).expect("valid");
    m.validate().expect("valid");
    m.sanity_check().expect("sane");
    let via = m.top_via().expect("Via");
    let (from, to, cseq, call_id) = (
        m.from().expect("From"),
        m.to().expect("To"),
        m.cseq().expect("CSeq"),
        m.call_id().expect("Call-ID"),
    );
    let contacts = m
        .contacts()
        .filter(|c| matches!(c, Ok(Contact::Address(_))))
        .count();
    std::hint::black_box((via, from, to, cseq, call_id, contacts));
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn parsing_and_reading_headers_allocates_nothing() {
    assert_eq!(allocations_for(messages::INVITE), 0);
    assert_eq!(allocations_for(messages::REGISTER), 0);
}

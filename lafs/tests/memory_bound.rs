//! Encoding a stream holds a few segments, whatever the file's size: the peak of live heap
//! bytes (counted by this test binary's allocator) is the same for a 4 MiB and a 96 MiB file.
//!
//! This file is its own test binary with one test, so no other test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use tahoe_jobs_lafs::chk::{ChkEncoder, EncodingParams};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Encodes `size` bytes generated segment by segment (never held whole), dropping each
/// segment's blocks as an uploader does once they are sent; returns the peak heap growth.
fn peak_while_encoding(size: u64) -> usize {
    let params = EncodingParams::DEFAULT;
    let mut encoder = ChkEncoder::new([7; 16], &params, size).unwrap();
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let mut sent = 0u64;
    for segnum in 0..encoder.plan().num_segments {
        let len = encoder.plan().segment_len(segnum) as usize;
        let segment: Vec<u8> = (0..len).map(|i| (i as u64 + segnum * 31) as u8).collect();
        let encoded = encoder.encode_segment(segment).unwrap();
        sent += encoded.blocks().map(|b| b.len() as u64).sum::<u64>();
    }
    let file = encoder.finish().unwrap();
    assert_eq!(sent, u64::from(params.total) * encoder_share_size(size));
    assert_eq!(file.cap.size, size);
    PEAK.load(Ordering::SeqCst) - base
}

fn encoder_share_size(size: u64) -> u64 {
    size.div_ceil(u64::from(EncodingParams::DEFAULT.needed))
}

#[test]
fn peak_memory_does_not_grow_with_the_file() {
    let segment = EncodingParams::DEFAULT.max_segment_size as usize;
    let small = peak_while_encoding(4 << 20);
    let large = peak_while_encoding(96 << 20);
    eprintln!("peak heap growth: {small} bytes for 4 MiB, {large} bytes for 96 MiB");
    // The segment (encrypted in place, its pieces are the first k blocks) and the N - k parity
    // blocks (7/3 of a segment) live at once: about 3.4 segments, under 5 with slack. The
    // per-segment hashes add 32 bytes per share per segment.
    assert!(large < 5 * segment, "peak {large} bytes for a 96 MiB file");
    assert!(
        large <= small + 96 * 11 * 32 + 64 * 1024,
        "peak grew from {small} to {large} bytes with the file's size"
    );
}

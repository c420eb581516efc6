//! One upload from source to shares: the convergent key from a first read, server selection,
//! then the encoder fed segment by segment from a second read, every allocated share written as
//! it goes (header with the first block, the last block with the trailer, so a one-segment file
//! is one request per share).
//!
//! The writes of up to [`SEGMENTS_IN_FLIGHT`] segments are under way at once, and the next
//! segment is read and encoded while they travel: one segment at a time would leave the link
//! idle for a round trip per segment, which behind a 40 ms round trip is most of the time
//! (Tahoe's own uploader pipelines its writes too). The last segment's writes go only once all
//! earlier ones have landed, since their answers say whether each share is complete. Share
//! bytes in flight are also bounded across all uploads of one [`Uploader`]
//! ([`IN_FLIGHT_BYTES`]), so many large files at once do not multiply the memory.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::ops::Range;

use bytes::Bytes;
use futures::future::join_all;
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::pace::{Pacer, ShareWrite};
use super::placement::failure_message;
use super::select::Selection;
use super::{Source, UploadError, Uploaded, Uploader};
use crate::cap::StorageIndex;
use crate::chk::{lit_cap, ChkEncoder, ChkError, ConvergentKeyHasher, LIT_SIZE_THRESHOLD};
use crate::storage::{StorageError, WriteProgress};
use crate::upload::partial::{PartialShares, ShareKey};

/// Reads the source in order, one piece at a time.
enum Reader<'a> {
    File(tokio::fs::File),
    Bytes(&'a [u8]),
}

impl<'a> Reader<'a> {
    async fn open(source: &Source<'a>) -> Result<(Reader<'a>, u64), ChkError> {
        Ok(match source {
            Source::File(path) => {
                let file = tokio::fs::File::open(path).await?;
                let size = file.metadata().await?.len();
                (Reader::File(file), size)
            }
            Source::Open(file) => {
                use std::io::Seek;
                let mut file = file.try_clone()?;
                // Clones share the offset: each pass starts again from the beginning.
                file.seek(std::io::SeekFrom::Start(0))?;
                let size = file.metadata()?.len();
                (Reader::File(tokio::fs::File::from_std(file)), size)
            }
            Source::Bytes(data) => (Reader::Bytes(data), data.len() as u64),
        })
    }

    /// Exactly `len` bytes; a file that ended early has changed.
    async fn read(&mut self, len: usize) -> Result<Vec<u8>, ChkError> {
        match self {
            Reader::File(file) => {
                let mut buffer = vec![0u8; len];
                match file.read_exact(&mut buffer).await {
                    Ok(_) => Ok(buffer),
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => Err(ChkError::ContentChanged),
                    Err(e) => Err(e.into()),
                }
            }
            Reader::Bytes(data) => {
                if data.len() < len {
                    return Err(ChkError::ContentChanged);
                }
                let (head, rest) = data.split_at(len);
                *data = rest;
                Ok(head.to_vec())
            }
        }
    }

    /// Fails when bytes remain (the file grew).
    async fn expect_end(&mut self) -> Result<(), ChkError> {
        let more = match self {
            Reader::File(file) => file.read(&mut [0u8; 1]).await? > 0,
            Reader::Bytes(data) => !data.is_empty(),
        };
        if more {
            Err(ChkError::ContentChanged)
        } else {
            Ok(())
        }
    }
}

/// Bytes read per step of the key pass.
const KEY_PASS_CHUNK: u64 = 1 << 20;

/// Segments of one upload whose writes may be under way at once (see the module header). Four
/// keeps a 40 ms round trip busy at the servers' pace here (`docs/benchmarks.md`, B3); a kill
/// cuts off at most this many writes per share.
pub const SEGMENTS_IN_FLIGHT: usize = 4;

/// Share bytes under way at once over all uploads of one uploader: sixteen uploads of large
/// files each pipelining four 1 MiB segments would otherwise hold about 100 MiB of blocks.
pub const IN_FLIGHT_BYTES: u64 = 16 << 20;

/// The unit of [`Uploader`]'s in-flight semaphore (its permits count KiB, to fit a `u32`).
const PERMIT_BYTES: u64 = 1024;

/// The semaphore that bounds [`IN_FLIGHT_BYTES`].
pub(crate) fn in_flight_room() -> Semaphore {
    Semaphore::new((IN_FLIGHT_BYTES / PERMIT_BYTES) as usize)
}

/// One pending write.
struct Write {
    holder: usize,
    shnum: u16,
    offset: u64,
    data: Bytes,
}

impl Uploader {
    pub(crate) async fn upload(
        &self,
        source: Source<'_>,
        pacer: &dyn Pacer,
    ) -> Result<Uploaded, UploadError> {
        // The key pass.
        let (mut reader, size) = Reader::open(&source).await?;
        if size <= LIT_SIZE_THRESHOLD {
            let data = reader.read(size as usize).await?;
            reader.expect_end().await?;
            return Ok(Uploaded {
                cap: lit_cap(&data),
                shares_written: 0,
                shares_existing: 0,
                bytes_sent: 0,
                happiness: 0,
                shares_restarted: 0,
            });
        }
        let convergence = &self.convergence.0;
        let mut hasher = ConvergentKeyHasher::new(convergence, &self.params, size)?;
        let mut left = size;
        while left > 0 {
            let n = left.min(KEY_PASS_CHUNK);
            hasher.update(&reader.read(n as usize).await?);
            left -= n;
        }
        reader.expect_end().await?;
        let key = hasher.finish();

        let mut restarted = 0;
        let mut bytes_sent = 0;
        let mut retried = false;
        loop {
            let encoder = ChkEncoder::convergent(key, convergence, &self.params, size)?;
            let si = StorageIndex(encoder.storage_index());
            let layout = encoder.layout();
            let selection = self
                .select(&si, layout.allocated_size(), &layout.header(), pacer)
                .await?;
            restarted += selection.restarted;

            // The encoding pass; whatever fails in it leaves no allocation behind, but a stop
            // leaves the shares begun (in the partial-share record, for the keeper) for the
            // next upload to continue.
            let mut sender = Sender::new(&selection, &si, self.happy, self.params.needed, pacer);
            sender.partial = self.partial.as_deref();
            let sent = encode_and_send(&source, encoder, &mut sender, &self.in_flight).await;
            bytes_sent += sender.bytes_sent;
            let cap = match sent {
                Ok(cap) => cap,
                Err(UploadError::Stopped) => return Err(UploadError::Stopped),
                Err(e) => {
                    selection.abort(&si, &sender.lost).await;
                    self.forget_partial(&si, &selection);
                    // A server that dropped a share mid-upload (it restarted, or the share sat
                    // idle past its limit) holds none: once, start the upload again, which
                    // allocates that share afresh.
                    if !sender.gone.is_empty() && !retried {
                        tracing::info!(
                            "{} partial share(s) of an upload were dropped by their server: \
                             sending the file again",
                            sender.gone.len()
                        );
                        retried = true;
                        restarted += sender.gone.len();
                        continue;
                    }
                    return Err(e);
                }
            };
            self.forget_partial(&si, &selection);
            let (shares_written, shares_existing) = sender.counts();
            return Ok(Uploaded {
                cap,
                shares_written,
                shares_existing,
                bytes_sent,
                happiness: selection.happiness_without(&sender.lost),
                shares_restarted: restarted,
            });
        }
    }
}

/// Reads the source again, encodes it and sends every block and trailer, pipelined (see the
/// module header); the cap. A stop lets the writes under way end before it returns.
async fn encode_and_send(
    source: &Source<'_>,
    encoder: ChkEncoder,
    sender: &mut Sender<'_>,
    room: &Semaphore,
) -> Result<String, UploadError> {
    let layout = encoder.layout();
    let plan = *encoder.plan();
    // Lent to a blocking thread for each segment but the last, so that encoding does not hold
    // up the answers and the next writes of the segments under way.
    let mut encoder = Some(encoder);
    let (mut reader, _) = Reader::open(source).await?;
    let segments = plan.num_segments;
    let header = layout.header();
    let (needed, shares_written, pacer) = (
        u64::from(sender.needed),
        sender.shares_to_write(),
        sender.pacer,
    );
    let mut in_flight = FuturesOrdered::new();
    let mut stopped = false;
    for segnum in 0..segments - 1 {
        while in_flight.len() >= SEGMENTS_IN_FLIGHT {
            let sent = in_flight.next().await.expect("segments are in flight");
            stopped |= sender.absorb(sent, false)?;
        }
        if stopped {
            break;
        }
        // The next segment is read and encoded while the answers of the writes under way come
        // in.
        let len = plan.segment_len(segnum);
        let prepare = async {
            pacer
                .before_segment(segnum, segments)
                .await
                .map_err(|_| UploadError::Stopped)?;
            let permit = room
                .acquire_many(room_permits(len.div_ceil(needed) * shares_written))
                .await
                .expect("the in-flight semaphore is never closed");
            let plaintext = reader.read(len as usize).await?;
            let mut lent = encoder
                .take()
                .expect("the encoder is back after each segment");
            let (lent, encoded) = tokio::task::spawn_blocking(move || {
                let encoded = lent.encode_segment(plaintext);
                (lent, encoded)
            })
            .await
            .expect("encoding a segment does not panic");
            encoder = Some(lent);
            Ok::<_, UploadError>((encoded?, permit))
        };
        let (segment, permit) =
            match absorb_while(&mut in_flight, sender, &mut stopped, prepare).await? {
                Ok(prepared) => prepared,
                Err(UploadError::Stopped) => {
                    stopped = true;
                    break;
                }
                Err(e) => return Err(e),
            };
        if stopped {
            break;
        }
        let offset = layout.block_offset(segnum);
        let writes = sender.writes(|shnum| {
            let block = segment.block(usize::from(shnum));
            if segnum == 0 {
                (0, [header.as_slice(), block].concat())
            } else {
                (offset, block.to_vec())
            }
        });
        drop(segment);
        in_flight.push_back(sender.dispatch(writes, Some(permit), len));
    }
    // Every earlier write lands before the last ones, whose answers say whether each share is
    // complete.
    while let Some(sent) = in_flight.next().await {
        stopped |= sender.absorb(sent, false)?;
    }
    if stopped || pacer.before_segment(segments - 1, segments).await.is_err() {
        return Err(UploadError::Stopped);
    }
    let mut encoder = encoder.expect("the encoder is back after each segment");
    let last_len = plan.segment_len(segments - 1);
    let segment = encoder.encode_segment(reader.read(last_len as usize).await?)?;
    let last_blocks: Vec<Vec<u8>> = segment.blocks().map(<[u8]>::to_vec).collect();
    drop(segment);
    reader.expect_end().await?;
    let file = encoder.finish()?;
    let last_offset = layout.block_offset(segments - 1);
    let writes = sender.writes(|shnum| {
        let shnum = usize::from(shnum);
        let mut data = Vec::new();
        let offset = if segments == 1 {
            data.extend_from_slice(&header);
            0
        } else {
            last_offset
        };
        data.extend_from_slice(&last_blocks[shnum]);
        data.extend_from_slice(&file.trailers[shnum]);
        (offset, data)
    });
    let sent = sender.dispatch(writes, None, last_len).await;
    if sender.absorb(sent, true)? {
        return Err(UploadError::Stopped);
    }
    Ok(file.cap.to_uri())
}

/// Runs `work` to its end while taking in the answers of the segments under way (a stream's
/// futures make progress only while it is polled); what `work` returns. Fails when an answer
/// leaves the upload unhappy.
async fn absorb_while<F, W>(
    in_flight: &mut FuturesOrdered<F>,
    sender: &mut Sender<'_>,
    stopped: &mut bool,
    work: W,
) -> Result<W::Output, UploadError>
where
    F: std::future::Future<Output = Sent>,
    W: std::future::Future,
{
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            out = &mut work => return Ok(out),
            Some(sent) = in_flight.next(), if !in_flight.is_empty() => {
                *stopped |= sender.absorb(sent, false)?;
            }
        }
    }
}

/// The permits of [`in_flight_room`] that `bytes` take (all of them at most, so that one
/// segment bigger than the bound still goes, alone).
fn room_permits(bytes: u64) -> u32 {
    (bytes.div_ceil(PERMIT_BYTES)).min(IN_FLIGHT_BYTES / PERMIT_BYTES) as u32
}

/// One segment's writes, sent: each with its answer, or `None` where the pacer said stop.
struct Sent {
    writes: Vec<Write>,
    results: Vec<Option<Result<WriteProgress, StorageError>>>,
}

/// Sends writes to the shareholders, each once the pacer lets it, dropping those that fail
/// while the rest stays happy.
struct Sender<'a> {
    selection: &'a Selection,
    pacer: &'a dyn Pacer,
    si: &'a StorageIndex,
    happy: usize,
    needed: u16,
    lost: BTreeSet<usize>,
    failures: Vec<String>,
    bytes_sent: u64,
    /// Byte ranges still missing of shares an interrupted upload began (by holder and share).
    required: BTreeMap<(usize, u16), Vec<Range<u64>>>,
    /// Told of every accepted write, for the keeper's schedule.
    partial: Option<&'a PartialShares>,
    /// Shares whose writes were refused because the server holds no such upload (any more),
    /// by holder and share.
    gone: BTreeSet<(usize, u16)>,
}

impl<'a> Sender<'a> {
    fn new(
        selection: &'a Selection,
        si: &'a StorageIndex,
        happy: usize,
        needed: u16,
        pacer: &'a dyn Pacer,
    ) -> Self {
        Sender {
            selection,
            pacer,
            si,
            happy,
            needed,
            lost: BTreeSet::new(),
            failures: Vec::new(),
            bytes_sent: selection.claim_bytes,
            required: selection
                .holders
                .iter()
                .enumerate()
                .flat_map(|(i, h)| h.required.iter().map(move |(&s, r)| ((i, s), r.clone())))
                .collect(),
            partial: None,
            gone: BTreeSet::new(),
        }
    }

    /// One write for every allocated share of every holder still in, from `(offset, bytes)`.
    fn writes(&self, mut make: impl FnMut(u16) -> (u64, Vec<u8>)) -> Vec<Write> {
        let mut writes = Vec::new();
        for (holder, h) in self.selection.holders.iter().enumerate() {
            if self.lost.contains(&holder) {
                continue;
            }
            for &shnum in &h.allocated {
                let (offset, data) = make(shnum);
                let span = offset..offset + data.len() as u64;
                if let Some(required) = self.required.get(&(holder, shnum)) {
                    if !required
                        .iter()
                        .any(|r| r.start < span.end && span.start < r.end)
                    {
                        continue;
                    }
                }
                writes.push(Write {
                    holder,
                    shnum,
                    offset,
                    data: Bytes::from(data),
                });
            }
        }
        writes
    }

    /// Shares this upload writes (allocated on the holders).
    fn shares_to_write(&self) -> u64 {
        let shares: usize = self
            .selection
            .holders
            .iter()
            .map(|h| h.allocated.len())
            .sum();
        shares as u64
    }

    /// Sends `writes`, each once the pacer lets it, holding `permit` (their room in flight)
    /// until all have answered, then tells the pacer that `plaintext` bytes of the file went
    /// out (unless it said stop, or every write failed). The future borrows what the upload shares, not the sender, so
    /// several segments' writes can be under way while the sender takes the answers in.
    fn dispatch(
        &self,
        writes: Vec<Write>,
        permit: Option<SemaphorePermit<'a>>,
        plaintext: u64,
    ) -> impl std::future::Future<Output = Sent> + 'a {
        let (selection, pacer, si) = (self.selection, self.pacer, self.si);
        async move {
            let results = join_all(writes.iter().map(|w| {
                let h = &selection.holders[w.holder];
                async move {
                    let write = ShareWrite {
                        server_id: &h.server_id,
                        shnum: w.shnum,
                        offset: w.offset,
                        bytes: w.data.len() as u64,
                    };
                    pacer.before_write(write).await.ok()?;
                    Some(
                        h.client
                            .write_immutable(
                                si,
                                w.shnum,
                                &h.upload_secret,
                                w.offset,
                                w.data.clone(),
                            )
                            .await,
                    )
                }
            }))
            .await;
            drop(permit);
            // Counted here, as the writes land: the caller may drop the upload (its run
            // stopped) before the answers are taken in.
            let all_let_through = results.iter().all(Option::is_some);
            if all_let_through && results.iter().any(|r| matches!(r, Some(Ok(_)))) {
                pacer.segment_sent(plaintext);
            }
            Sent { writes, results }
        }
    }

    /// Takes in one segment's answers; with `last`, each write must have completed its share.
    /// True when the pacer said stop for some write (the others were sent); fails when the
    /// holders left are not happy. A holder already dropped for an earlier segment's failure
    /// is not counted again.
    fn absorb(&mut self, sent: Sent, last: bool) -> Result<bool, UploadError> {
        let Sent { writes, results } = sent;
        let mut stopped = false;
        let mut newly_lost = false;
        for (w, result) in writes.iter().zip(results) {
            let Some(result) = result else {
                stopped = true;
                continue;
            };
            match result {
                Ok(WriteProgress { finished, required }) => {
                    self.bytes_sent += w.data.len() as u64;
                    self.note_write(w, finished);
                    if let Some(known) = self.required.get_mut(&(w.holder, w.shnum)) {
                        known.clone_from(&required);
                    }
                    if last && !finished && self.lost.insert(w.holder) {
                        newly_lost = true;
                        self.failures.push(format!(
                            "storage server {} still requires {required:?} of share {} after \
                             the last write",
                            self.selection.holders[w.holder].name, w.shnum
                        ));
                    }
                }
                Err(e) => {
                    if e.status() == Some(404) {
                        self.gone.insert((w.holder, w.shnum));
                    }
                    if self.lost.insert(w.holder) {
                        newly_lost = true;
                        self.failures.push(e.to_string());
                    }
                }
            }
        }
        if newly_lost {
            let happiness = self.selection.happiness_without(&self.lost);
            if happiness < self.happy {
                let left = self.selection.holders.len() - self.lost.len();
                return Err(UploadError::NotEnoughServers {
                    message: failure_message(left, self.needed, self.happy, happiness),
                    failures: std::mem::take(&mut self.failures),
                });
            }
            for failure in &self.failures {
                tracing::warn!("a storage server dropped out of an upload, which goes on without it: {failure}");
            }
            self.failures.clear();
        }
        Ok(stopped)
    }

    /// Tells the partial-share record of an accepted write: the share's idle timer restarted,
    /// or the share is complete.
    fn note_write(&self, w: &Write, finished: bool) {
        let Some(partial) = self.partial else {
            return;
        };
        let key = ShareKey {
            server_id: self.selection.holders[w.holder].server_id.clone(),
            storage_index: *self.si,
            shnum: w.shnum,
        };
        if finished {
            partial.remove(&key);
        } else {
            partial.upload_wrote(&key, tokio::time::Instant::now());
        }
    }

    /// Shares written and shares found, on the holders still in.
    fn counts(&self) -> (usize, usize) {
        self.selection
            .holders
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.lost.contains(i))
            .fold((0, 0), |(w, e), (_, h)| {
                (w + h.allocated.len(), e + h.already_have.len())
            })
    }
}

//! One upload from source to shares: the convergent key from a first read, server selection,
//! then the encoder fed segment by segment from a second read, every allocated share written as
//! it goes (header with the first block, the last block with the trailer, so a one-segment file
//! is one request per share).

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::ops::Range;

use bytes::Bytes;
use futures::future::join_all;
use tokio::io::AsyncReadExt;

use super::pace::{Pacer, ShareWrite};
use super::placement::failure_message;
use super::select::Selection;
use super::{Source, UploadError, Uploaded, Uploader};
use crate::cap::StorageIndex;
use crate::chk::{lit_cap, ChkEncoder, ChkError, ConvergentKeyHasher, LIT_SIZE_THRESHOLD};
use crate::storage::WriteProgress;
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
            let sent = encode_and_send(&source, encoder, &mut sender).await;
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
                    if sender.gone > 0 && !retried {
                        tracing::info!(
                            "{} partial share(s) of an upload were dropped by their server: \
                             sending the file again",
                            sender.gone
                        );
                        retried = true;
                        restarted += sender.gone;
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

/// Reads the source again, encodes it and sends every block and trailer; the cap.
async fn encode_and_send(
    source: &Source<'_>,
    mut encoder: ChkEncoder,
    sender: &mut Sender<'_>,
) -> Result<String, UploadError> {
    let layout = encoder.layout();
    let (mut reader, _) = Reader::open(source).await?;
    let segments = encoder.plan().num_segments;
    let header = layout.header();
    let mut last_blocks: Vec<Vec<u8>> = Vec::new();
    for segnum in 0..segments {
        sender
            .pacer
            .before_segment(segnum, segments)
            .await
            .map_err(|_| UploadError::Stopped)?;
        let len = encoder.plan().segment_len(segnum) as usize;
        let segment = encoder.encode_segment(reader.read(len).await?)?;
        if segnum + 1 == segments {
            // Held back to go with the trailer.
            last_blocks = segment.blocks().map(<[u8]>::to_vec).collect();
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
        if sender.send(writes, false).await? {
            sender.pacer.segment_sent(len as u64);
        }
    }
    reader.expect_end().await?;
    let last_len = encoder.plan().segment_len(segments - 1);
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
    if sender.send(writes, true).await? {
        sender.pacer.segment_sent(last_len);
    }
    Ok(file.cap.to_uri())
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
    /// Writes refused because the server holds no such upload (any more).
    gone: usize,
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
            gone: 0,
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

    /// Sends `writes`, each once the pacer lets it; with `last`, each must complete its share.
    /// Whether any write was sent; [`UploadError::Stopped`] when the pacer said stop (after
    /// the writes already under way end).
    async fn send(&mut self, writes: Vec<Write>, last: bool) -> Result<bool, UploadError> {
        let (pacer, si) = (self.pacer, self.si);
        let results = join_all(writes.iter().map(|w| {
            let h = &self.selection.holders[w.holder];
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
                        .write_immutable(si, w.shnum, &h.upload_secret, w.offset, w.data.clone())
                        .await,
                )
            }
        }))
        .await;
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
                    if last && !finished {
                        newly_lost |= self.lost.insert(w.holder);
                        self.failures.push(format!(
                            "storage server {} still requires {required:?} of share {} after \
                             the last write",
                            self.selection.holders[w.holder].name, w.shnum
                        ));
                    }
                }
                Err(e) => {
                    if e.status() == Some(404) {
                        self.gone += 1;
                    }
                    newly_lost |= self.lost.insert(w.holder);
                    self.failures.push(e.to_string());
                }
            }
        }
        if stopped {
            return Err(UploadError::Stopped);
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
        Ok(!writes.is_empty())
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

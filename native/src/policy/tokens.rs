//! Token-file targets (`--target-tokens FILE_OR_DIR`): websockify's `TokenFile` format, where
//! `/ws?token=NAME` or `/websockify?token=NAME` picks the target written beside `NAME`.
//!
//! ```text
//! # comment
//! vnc1: 127.0.0.1:5901
//! vnc2: [::1]:5902 proxy-protocol
//! ```
//!
//! One entry per line: the token, a colon and white space (websockify splits on `: `), the
//! target in the forms `--allow` takes, and optionally the word `proxy-protocol` (the target is
//! sent a PROXY protocol v2 header, see [`crate::proxy_protocol`]). `#` starts a comment line;
//! blank lines are skipped, and so is white space around an entry. A directory means every file
//! directly in it (names starting with `.`, such as editors' swap files, are skipped), read in
//! name order; as in websockify, whose plugin fills a dictionary line by line, the last
//! definition of a token wins (a warning names both places).
//!
//! Errors stay where they are. A line that does not parse is skipped with a warning naming
//! its file and line, as websockify skips it. A file that cannot be used (it cannot be read,
//! is not UTF-8, or is past one of the limits below) loses its own tokens: those it defined
//! when it was last read, and any token found in no other file (it might be in that one),
//! answer with the file's error. The log says why when the files change, not on each request,
//! and a failed read is kept under the file's stamp, not tried again until the file changes.
//! A name that does not resolve fails its own token only. The relay refuses to start only when
//! the source itself cannot be used: a missing path, an unreadable directory, or a single file
//! that cannot be.
//!
//! The files are the operator's allow-list: a token's target counts as allowed, and nothing
//! else is. A name in them is resolved when a client asks for its token, as websockify resolves
//! it when it connects: the name is the operator's own entry, and a machine that gets its
//! address by DHCP keeps its token across a new address. No client can make the relay resolve
//! anything else. A lookup has [`RESOLVE_TIMEOUT`]; the handshakes for a name share the lookup
//! under way, and its answer (or failure) for [`NAME_TTL`] after it. Addresses written out are
//! used as they are.
//!
//! Changes are picked up without a restart, within [`CHECK_INTERVAL`]: a lookup at least that
//! long after the last check compares the files' modification time, size, inode and change time
//! with those of the last read (one directory listing and one `stat` per file, on a blocking
//! thread) and reads again the files that changed. Other lookups meanwhile use the last read
//! and wait for nothing: the table is swapped whole when a check is done, and no lock is held
//! across file I/O or name resolution.
//!
//! The cost is bounded. Of a directory, the first [`MAX_FILES`] names in name order are looked
//! at (a bounded heap picks them, so neither memory nor `stat`s grow with the directory); the
//! names after them are not, and a token found in no file read is refused as one that may be in
//! them. A file larger than [`MAX_FILE_BYTES`] is not read, and neither are, in name order, the
//! file that would take what is kept past [`MAX_TOTAL_BYTES`] and the files after it (what is
//! kept: the text of the files read, and a file's last good read while it cannot be used);
//! files are never cut short. Files are read and parsed one at a time, bad lines are counted
//! rather than kept, and each kind of warning is logged [`MAX_WARNINGS`] times at most per
//! change, then counted. The table of the most tokens that fit, 8 MiB of 21-byte lines
//! (386,250 tokens), took 96 MiB of memory (debug build); 8 MiB of bad lines took none.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::ffi::OsString;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use super::target::{Host, Spec, TargetError, TargetSpec};
use crate::bridge::target::{Dest, TcpAddr, UdpAddr, UnixAddr};

/// The most names of a token directory (dotfiles aside) that are looked at: the first ones.
pub const MAX_FILES: usize = 1024;
/// The largest token file read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// The most bytes of token files kept in all (see the module notes): 8 MiB.
pub const MAX_TOTAL_BYTES: u64 = 8 << 20;
/// How often at most the files are compared with the last read.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long the resolution of a name in the files may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an answer for a name (or its failure) serves the handshakes that follow it.
pub const NAME_TTL: Duration = Duration::from_secs(1);

/// A token's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTarget {
    pub spec: Spec,
    /// What a TCP or UDP target resolves to at the lookup (a name's addresses now).
    pub addrs: Vec<SocketAddr>,
    /// The line asked for a PROXY protocol v2 header.
    pub proxy_protocol: bool,
}

impl TokenTarget {
    /// Where a bridge to this target goes.
    pub fn dest(&self) -> Dest {
        let name = self.spec.to_string();
        match &self.spec {
            Spec::Tcp(_) => Dest::Tcp(TcpAddr {
                name,
                addrs: self.addrs.clone(),
            }),
            Spec::Udp(net) => Dest::Udp(UdpAddr {
                name,
                addrs: self.addrs.clone(),
                // As for `--allow`: only an address written out may be a broadcast one.
                broadcast: matches!(net.host, Host::Ip(_)),
            }),
            Spec::Unix(path) => Dest::Unix(UnixAddr {
                name,
                path: path.into(),
            }),
        }
    }
}

/// The token files, checked again when they may have changed.
pub struct TokenTargets {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenTargets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenTargets")
            .field("source", &self.inner.source)
            .finish_non_exhaustive()
    }
}

struct Inner {
    source: PathBuf,
    /// [`CHECK_INTERVAL`]; the tests check on every lookup, or never.
    interval: Duration,
    io: Io,
    /// What lookups read: replaced whole by a check that found a change.
    table: RwLock<Arc<Table>>,
    /// When a lookup next compares the files with the last read.
    next_check: Mutex<Instant>,
    /// The files as last read; held by the one check under way.
    files: Arc<tokio::sync::Mutex<Files>>,
    /// The latest resolution of each name in the files, by target (`udp:` ones apart: they
    /// keep only some addresses).
    names: Mutex<HashMap<String, watch::Receiver<Option<Answer>>>>,
}

/// A name's addresses (or why there are none), and when they came.
type Answer = (Instant, Result<Vec<SocketAddr>, String>);

type Resolving = Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>;
type Reader = dyn Fn(&Path, u64) -> std::io::Result<Vec<u8>> + Send + Sync;

/// The file system and the resolver: the tests substitute ones that stall or count.
#[derive(Clone)]
struct Io {
    /// A file's bytes: at most the limit given, and one more if the file is longer.
    read: Arc<Reader>,
    resolve: Arc<dyn Fn(TargetSpec) -> Resolving + Send + Sync>,
}

impl Io {
    fn system() -> Io {
        Io {
            read: Arc::new(read_limited),
            resolve: Arc::new(|net| {
                Box::pin(async move { super::target::resolve_with_system(&net).await })
            }),
        }
    }
}

/// What lookups see.
#[derive(Debug, Default)]
struct Table {
    tokens: HashMap<String, Entry>,
    /// Why a token found nowhere may exist all the same: a file that cannot be used (it may
    /// be in it), names past [`MAX_FILES`], or the source itself.
    unknown: Option<Arc<TokenFileError>>,
    /// The lines that ask for a PROXY header, those of a file that cannot be used now as it
    /// was last read included: a target that opted in keeps its header through a broken edit.
    proxied: Vec<Arc<Line>>,
}

#[derive(Debug, Clone)]
enum Entry {
    /// A line, with the index of its file in the listing and its line number (for the warning
    /// when a later line defines the token again).
    Target {
        line: Arc<Line>,
        file: usize,
        number: usize,
    },
    /// The file that defined it last cannot be used now.
    Failed(Arc<TokenFileError>),
}

/// The files as last read.
#[derive(Debug, Default)]
struct Files {
    /// What the last check found.
    listing: Option<Result<Listing, TokenFileError>>,
    /// Each file's last read, by path: the files of the listing only.
    read: HashMap<PathBuf, FileRead>,
}

/// What a check finds of the source: one file, or the first [`MAX_FILES`] names of a
/// directory, whatever it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listing {
    /// The source is a file, not a directory.
    single: bool,
    /// The files looked at, in name order, with their stamps.
    files: Vec<(PathBuf, Stamp)>,
    /// Past [`MAX_FILES`] names: the first one not looked at, and how many were not.
    over: Option<(PathBuf, usize)>,
}

/// A file's last read.
#[derive(Debug)]
struct FileRead {
    /// The file as it was read; `None` when it was not read (past a limit): it is looked at
    /// again at the next change.
    stamp: Option<Stamp>,
    /// Its entries, or why it cannot be used.
    result: Result<Arc<Entries>, Arc<TokenFileError>>,
    /// While it cannot be used, the entries of its last good read: their tokens fail with it
    /// (kept only within [`MAX_TOTAL_BYTES`]).
    known: Option<Arc<Entries>>,
}

impl FileRead {
    /// The entries of its last good read.
    fn good(self) -> Option<Arc<Entries>> {
        self.result.ok().or(self.known)
    }
}

/// The entries of a file with their line numbers, and the size of the text they came from
/// (what counts toward [`MAX_TOTAL_BYTES`]). Bad lines are not kept: they are warned about
/// when the file is read.
#[derive(Debug, Default)]
struct Entries {
    lines: Vec<(usize, Arc<Line>)>,
    bytes: u64,
}

/// What tells that a file changed: its modification time, size, inode and change time (which
/// a `chmod` moves: a file made readable is read again).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    changed: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: inode(meta),
            changed: ctime(meta),
        }
    }
}

/// A token file, or the source, that cannot be used; the message is the operator's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TokenFileError {
    pub path: String,
    pub message: String,
}

/// Why a token was not turned into a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("unknown target token: ask the relay's operator for a valid one")]
    Unknown,
    /// The details (a path, a line) are the operator's: they go to the log, not to clients.
    #[error("the relay's token file cannot be read: its log says why")]
    File(#[from] TokenFileError),
    /// The token's target is a name that does not resolve now (the log names it).
    #[error("the target of this token does not resolve now: the relay's log says why")]
    Unresolved,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TokenTargets {
    /// Reads `source` (a file or a directory of them) once, so that a source that cannot be
    /// read stops the relay at startup rather than failing every request; errors inside it
    /// are logged and stay local, as later.
    pub async fn open(source: &Path) -> Result<TokenTargets, TokenFileError> {
        TokenTargets::with(source, CHECK_INTERVAL, Io::system()).await
    }

    async fn with(
        source: &Path,
        interval: Duration,
        io: Io,
    ) -> Result<TokenTargets, TokenFileError> {
        let inner = Arc::new(Inner {
            source: source.to_owned(),
            interval,
            io,
            table: RwLock::default(),
            next_check: Mutex::new(Instant::now() + interval),
            files: Arc::default(),
            names: Mutex::default(),
        });
        let files = inner.files.clone().lock_owned().await;
        match inner.clone().refresh(files, true).await {
            Some(e) => Err(e),
            None => Ok(TokenTargets { inner }),
        }
    }

    /// The file or directory the targets come from.
    pub fn source(&self) -> &Path {
        &self.inner.source
    }

    /// The target of `token`, from the files as they were at the last check, and its name's
    /// addresses now.
    pub async fn lookup(&self, token: &str) -> Result<TokenTarget, LookupError> {
        self.check().await;
        let table = self.table();
        match table.tokens.get(token) {
            None => Err(table
                .unknown
                .as_deref()
                .cloned()
                .map_or(LookupError::Unknown, LookupError::File)),
            Some(Entry::Failed(e)) => Err(LookupError::File(TokenFileError::clone(e))),
            Some(Entry::Target { line, .. }) => Ok(TokenTarget {
                addrs: self.inner.addrs(&line.spec).await?,
                spec: line.spec.clone(),
                proxy_protocol: line.proxy_protocol,
            }),
        }
    }

    /// The targets of the lines that ask for a PROXY protocol v2 header, from the files as they
    /// were at the last check (a file that cannot be read as it was last read), with their
    /// names' addresses now; a name that does not resolve is left out.
    pub async fn proxy_protocol_targets(&self) -> Vec<TokenTarget> {
        self.check().await;
        let table = self.table();
        let targets = table.proxied.iter().map(|line| async move {
            Some(TokenTarget {
                addrs: self.inner.addrs(&line.spec).await.ok()?,
                spec: line.spec.clone(),
                proxy_protocol: true,
            })
        });
        futures_util::future::join_all(targets)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    fn table(&self) -> Arc<Table> {
        self.inner
            .table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Compares the files with the last read when the interval has passed and no check is
    /// under way; otherwise the last read stands.
    async fn check(&self) {
        let inner = &self.inner;
        {
            let mut next = lock(&inner.next_check);
            let now = Instant::now();
            if now < *next {
                return;
            }
            *next = now + inner.interval;
        }
        let Ok(files) = inner.files.clone().try_lock_owned() else {
            return;
        };
        // A task of its own: a client that goes away does not stop the check halfway.
        let _ = tokio::spawn(inner.clone().refresh(files, false)).await;
    }
}

impl Inner {
    /// Reads the files that changed (on a blocking thread) and installs the table; the error
    /// that stops the start, if the source itself cannot be read. At `startup` that error is the
    /// whole report: the warnings, which say what the relay does meanwhile ("every token is
    /// refused until..."), are not logged before it.
    async fn refresh(
        self: Arc<Inner>,
        mut files: tokio::sync::OwnedMutexGuard<Files>,
        startup: bool,
    ) -> Option<TokenFileError> {
        let state = std::mem::take(&mut *files);
        let (source, io) = (self.source.clone(), self.io.clone());
        let scanned = tokio::task::spawn_blocking(move || {
            let mut state = state;
            let table = scan(&source, &io, &mut state);
            (state, table)
        })
        .await;
        // Only a panic loses the state: the next check reads every file again.
        let Ok((state, table)) = scanned else {
            return Some(error(&self.source, "the check of the token files failed"));
        };
        *files = state;
        let fatal = files.fatal();
        if let Some((table, warnings)) = table {
            if !(startup && fatal.is_some()) {
                for warning in &warnings {
                    tracing::warn!("target tokens: {warning}");
                }
            }
            tracing::debug!(source = %self.source.display(), tokens = table.tokens.len(), "read the target tokens");
            self.install(table);
        }
        fatal
    }

    fn install(&self, table: Table) {
        let named: HashSet<String> = table
            .tokens
            .values()
            .filter_map(|entry| match entry {
                Entry::Target { line, .. } => Some(line.spec.to_string()),
                Entry::Failed(_) => None,
            })
            .collect();
        lock(&self.names).retain(|name, _| named.contains(name));
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
    }

    /// The addresses of a target now: a name is resolved (or its answer of the last
    /// [`NAME_TTL`] reused), an address is itself.
    async fn addrs(&self, spec: &Spec) -> Result<Vec<SocketAddr>, LookupError> {
        let net = match spec {
            Spec::Tcp(net) | Spec::Udp(net) => net,
            Spec::Unix(_) => return Ok(Vec::new()),
        };
        if let Host::Ip(ip) = net.host {
            return Ok(vec![SocketAddr::new(ip, net.port)]);
        }
        let mut answer = self.resolution(spec, net);
        // The resolution answers within RESOLVE_TIMEOUT.
        let addrs = match answer.wait_for(Option::is_some).await {
            Ok(answer) => match &*answer {
                Some((_, Ok(addrs))) => Some(addrs.clone()),
                _ => None,
            },
            Err(_) => None,
        };
        addrs.ok_or(LookupError::Unresolved)
    }

    /// The resolution of `spec`'s name: the one under way, a fresh answer, or a new one.
    fn resolution(&self, spec: &Spec, net: &TargetSpec) -> watch::Receiver<Option<Answer>> {
        let key = spec.to_string();
        let mut names = lock(&self.names);
        if let Some(answer) = names.get(&key) {
            // Under way (unless its task is gone without an answer), or answered of late.
            let alive = answer.has_changed().is_ok();
            let fresh = match &*answer.borrow() {
                None => alive,
                Some((at, _)) => at.elapsed() < NAME_TTL,
            };
            if fresh {
                return answer.clone();
            }
        }
        let (tx, rx) = watch::channel(None);
        let lookup = (self.io.resolve)(net.clone());
        let udp = matches!(spec, Spec::Udp(_));
        let name = key.clone();
        // A task of its own: the clients waiting for it may go away.
        tokio::spawn(async move {
            let result = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Err(_) => Err(format!("no answer within {} s", RESOLVE_TIMEOUT.as_secs())),
                Ok(Err(e)) => Err(e.to_string()),
                Ok(Ok(addrs)) => {
                    // As for `--allow`: a name never reaches a broadcast or multicast address.
                    let kept: Vec<SocketAddr> = addrs
                        .into_iter()
                        .filter(|a| !(udp && super::target::is_broadcast_or_multicast(a.ip())))
                        .collect();
                    if kept.is_empty() {
                        Err("no addresses (a UDP target's broadcast and multicast ones are not used)".into())
                    } else {
                        Ok(kept)
                    }
                }
            };
            if let Err(e) = &result {
                tracing::warn!(target_name = %name, error = %e, "a token file's target does not resolve: its token is refused");
            }
            let _ = tx.send(Some((Instant::now(), result)));
        });
        names.insert(key, rx.clone());
        rx
    }
}

impl Files {
    /// What stops a start: the source cannot be listed, or it is one file that cannot be used.
    fn fatal(&self) -> Option<TokenFileError> {
        match self.listing.as_ref()? {
            Err(e) => Some(e.clone()),
            Ok(listing) if listing.single => listing.files.iter().find_map(|(path, _)| {
                let e = self.read.get(path)?.result.as_ref().err()?;
                Some(TokenFileError::clone(e))
            }),
            Ok(_) => None,
        }
    }
}

fn error(path: &Path, e: impl std::fmt::Display) -> TokenFileError {
    TokenFileError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// At most this many lines of warnings for one kind of trouble after a change.
pub const MAX_WARNINGS: usize = 20;

/// The warnings of one check, at most [`MAX_WARNINGS`] of each kind and a count of the rest.
#[derive(Debug, Default)]
struct Warnings {
    lines: Vec<String>,
    /// Bad lines, redefined tokens, files not used.
    counts: [usize; 3],
}

const BAD_LINE: usize = 0;
const REDEFINED: usize = 1;
const UNUSABLE: usize = 2;

impl Warnings {
    fn add(&mut self, kind: usize, text: impl FnOnce() -> String) {
        self.counts[kind] += 1;
        if self.counts[kind] <= MAX_WARNINGS {
            self.lines.push(text());
        }
    }

    fn finish(mut self) -> Vec<String> {
        let kinds = ["lines skipped", "tokens redefined", "files not used"];
        for (count, what) in self.counts.into_iter().zip(kinds) {
            if count > MAX_WARNINGS {
                self.lines.push(format!("{count} {what} in all"));
            }
        }
        self.lines
    }
}

/// Compares the files with the last read, reads again those that changed, and builds the new
/// table with its warnings; `None` when nothing changed. On a blocking thread.
fn scan(source: &Path, io: &Io, files: &mut Files) -> Option<(Table, Vec<String>)> {
    let listing = list(source);
    if files.listing.as_ref() == Some(&listing) {
        return None;
    }
    let built = match &listing {
        Err(e) => (
            Table {
                unknown: Some(Arc::new(e.clone())),
                ..Table::default()
            },
            vec![format!("{e}: every token is refused until it can be read")],
        ),
        Ok(listing) => build(io, &mut files.read, listing),
    };
    files.listing = Some(listing);
    Some(built)
}

/// What `source` is now: one file, or the files among the first [`MAX_FILES`] names of a
/// directory (dotfiles aside), in name order, with their stamps. The names are chosen in a
/// bounded heap, so that neither memory nor the `stat`s grow with the directory.
fn list(source: &Path) -> Result<Listing, TokenFileError> {
    let meta = std::fs::metadata(source).map_err(|e| error(source, e))?;
    if meta.is_file() {
        return Ok(Listing {
            single: true,
            files: vec![(source.to_owned(), Stamp::of(&meta))],
            over: None,
        });
    }
    if !meta.is_dir() {
        return Err(error(source, "neither a file nor a directory"));
    }
    let mut first = BinaryHeap::with_capacity(MAX_FILES + 1);
    let mut over: Option<(OsString, usize)> = None;
    for entry in std::fs::read_dir(source).map_err(|e| error(source, e))? {
        let name = entry.map_err(|e| error(source, e))?.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        first.push(name);
        if first.len() > MAX_FILES {
            // The greatest name of the heap is not looked at.
            if let Some(last) = first.pop() {
                over = Some(match over {
                    Some((least, count)) => (least.min(last), count + 1),
                    None => (last, 1),
                });
            }
        }
    }
    let mut files = Vec::new();
    for name in first.into_sorted_vec() {
        let path = source.join(name);
        // Symbolic links are followed: a directory of links to files is common.
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.is_file() {
                files.push((path, Stamp::of(&meta)));
            }
        }
    }
    Ok(Listing {
        single: false,
        files,
        over: over.map(|(name, count)| (source.join(name), count)),
    })
}

/// Reads the files of `listing` that changed since `read` (within the limits), and merges them
/// in name order: the last definition of a token wins.
fn build(
    io: &Io,
    read: &mut HashMap<PathBuf, FileRead>,
    listing: &Listing,
) -> (Table, Vec<String>) {
    let mut previous = std::mem::take(read);
    let mut table = Table::default();
    let mut warnings = Warnings::default();
    // The bytes kept so far: the files' entries, or a file's last good ones while it cannot
    // be used.
    let mut total = 0;
    let mut past_total = false;
    let total_message = format!(
        "not read: the token files up to this one hold more than {MAX_TOTAL_BYTES} bytes in \
         all (read in name order)"
    );
    for (index, (path, stamp)) in listing.files.iter().enumerate() {
        let last = previous.remove(path);
        let mut file = if stamp.len > MAX_FILE_BYTES {
            not_read(
                path,
                last,
                format!("not read: larger than {MAX_FILE_BYTES} bytes"),
            )
        } else if past_total || total + stamp.len > MAX_TOTAL_BYTES {
            past_total = true;
            not_read(path, last, total_message.clone())
        } else {
            match last {
                // A failed read too: it is tried again when the file changes.
                Some(last) if last.stamp.as_ref() == Some(stamp) => last,
                last => {
                    let limit = MAX_FILE_BYTES.min(MAX_TOTAL_BYTES - total);
                    read_file(io, path, stamp, limit, last, &mut warnings)
                }
            }
        };
        match &file.result {
            Ok(entries) if total + entries.bytes <= MAX_TOTAL_BYTES => total += entries.bytes,
            // Kept from a read whose file has not changed its stamp since, but not its size.
            Ok(_) => {
                past_total = true;
                file = not_read(path, Some(file), total_message.clone());
            }
            Err(_) => {}
        }
        if let (Err(_), Some(known)) = (&file.result, &file.known) {
            if total + known.bytes <= MAX_TOTAL_BYTES {
                total += known.bytes;
            } else {
                file.known = None;
            }
        }
        match &file.result {
            Ok(entries) => {
                for (number, line) in &entries.lines {
                    let entry = Entry::Target {
                        line: line.clone(),
                        file: index,
                        number: *number,
                    };
                    if let Some(Entry::Target {
                        file: before,
                        number: at,
                        ..
                    }) = table.tokens.insert(line.token.clone(), entry)
                    {
                        warnings.add(REDEFINED, || {
                            format!(
                                "a token defined at {}:{at} is defined again at {}:{number}: \
                                 the later definition is used",
                                listing.files[before].0.display(),
                                path.display()
                            )
                        });
                    }
                    if line.proxy_protocol {
                        table.proxied.push(line.clone());
                    }
                }
            }
            Err(e) => {
                warnings.add(UNUSABLE, || {
                    format!("{e}: its tokens, and tokens found in no other file, are refused")
                });
                for (_, line) in file.known.iter().flat_map(|known| &known.lines) {
                    table
                        .tokens
                        .insert(line.token.clone(), Entry::Failed(e.clone()));
                    if line.proxy_protocol {
                        table.proxied.push(line.clone());
                    }
                }
                table.unknown.get_or_insert_with(|| e.clone());
            }
        }
        if file.stamp.is_some() || file.known.is_some() {
            read.insert(path.clone(), file);
        }
    }
    if let Some((first, count)) = &listing.over {
        let e = error(
            first,
            format!(
                "not looked at: the directory holds more than {MAX_FILES} names (dotfiles \
                 aside), taken in name order; this one and {} after it are not read, and \
                 tokens found in no file read are refused",
                count - 1
            ),
        );
        warnings.lines.push(e.to_string());
        table.unknown.get_or_insert_with(|| Arc::new(e));
    }
    (table, warnings.finish())
}

/// A file that is not read now, with the entries of its last good read.
fn not_read(path: &Path, last: Option<FileRead>, message: String) -> FileRead {
    FileRead {
        stamp: None,
        result: Err(Arc::new(error(path, message))),
        known: last.and_then(FileRead::good),
    }
}

/// Reads and parses a file that changed; its bad lines are warned about now.
fn read_file(
    io: &Io,
    path: &Path,
    stamp: &Stamp,
    limit: u64,
    last: Option<FileRead>,
    warnings: &mut Warnings,
) -> FileRead {
    let text = match read_text(io, path, limit) {
        Ok(text) => text,
        Err(e) => {
            return FileRead {
                stamp: Some(stamp.clone()),
                result: Err(Arc::new(e)),
                known: last.and_then(FileRead::good),
            }
        }
    };
    let mut lines = Vec::new();
    for (number, parsed) in parse(&text) {
        match parsed {
            Ok(line) => lines.push((number, Arc::new(line))),
            Err(message) => warnings.add(BAD_LINE, || {
                format!("{}:{number}: {message} (line skipped)", path.display())
            }),
        }
    }
    FileRead {
        stamp: Some(stamp.clone()),
        result: Ok(Arc::new(Entries {
            lines,
            bytes: text.len() as u64,
        })),
        known: None,
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

#[cfg(unix)]
fn ctime(meta: &std::fs::Metadata) -> (i64, i64) {
    use std::os::unix::fs::MetadataExt;
    (meta.ctime(), meta.ctime_nsec())
}

#[cfg(not(unix))]
fn ctime(_: &std::fs::Metadata) -> (i64, i64) {
    (0, 0)
}

fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A file's text, at most `limit` bytes of it (it may have grown since its `stat`).
fn read_text(io: &Io, path: &Path, limit: u64) -> Result<String, TokenFileError> {
    let bytes = (io.read)(path, limit).map_err(|e| error(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(error(
            path,
            format!("not read: it grew past {limit} bytes, the most left to read"),
        ));
    }
    String::from_utf8(bytes).map_err(|_| error(path, "not UTF-8 text"))
}

/// One entry of a token file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub token: String,
    pub spec: Spec,
    pub proxy_protocol: bool,
}

/// An entry of a token file with its line number (from 1), or what is wrong with that line.
pub type Parsed = (usize, Result<Line, String>);

/// Parses a token file: each entry with its line number, or what is wrong with it, one line
/// at a time.
pub fn parse(text: &str) -> impl Iterator<Item = Parsed> + '_ {
    text.lines().enumerate().filter_map(|(n, raw)| {
        let line = raw.trim();
        (!line.is_empty() && !line.starts_with('#')).then(|| (n + 1, parse_line(line)))
    })
}

/// A token file's `host:port` with an IPv6 host written without brackets (`::1:5900`), as
/// websockify reads it (the port after the last colon), bracketed; `None` when the host is no
/// IPv6 address. Only token files take this spelling, for websockify's sake: elsewhere
/// `::1:80` stays refused as ambiguous.
fn bracketed(target: &str) -> Option<String> {
    let (kind, rest) = match target.strip_prefix("udp:") {
        Some(rest) => ("udp:", rest),
        None => ("", target),
    };
    let (host, port) = rest.rsplit_once(':')?;
    host.parse::<std::net::Ipv6Addr>().ok()?;
    Some(format!("{kind}[{host}]:{port}"))
}

fn parse_line(line: &str) -> Result<Line, String> {
    // websockify splits on a colon followed by white space: `token: host:port`, where the
    // token may hold a colon itself.
    let Some((token, rest)) = line
        .match_indices(':')
        .map(|(i, _)| (&line[..i], &line[i + 1..]))
        .find(|(_, rest)| rest.starts_with(char::is_whitespace))
    else {
        return Err("expected `token: host:port`".into());
    };
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err("a token is one word before the colon".into());
    }
    let mut words = rest.split_whitespace();
    let target = words.next().unwrap_or_default();
    let proxy_protocol = match words.next() {
        None => false,
        Some("proxy-protocol") => true,
        Some(other) => {
            return Err(format!(
                "unexpected {other:?} after the target (only `proxy-protocol` may follow it)"
            ))
        }
    };
    if let Some(extra) = words.next() {
        return Err(format!("unexpected {extra:?} at the end of the line"));
    }
    // websockify writes a Unix socket target as `unix_socket:/path`.
    let spelled = match target.strip_prefix("unix_socket:") {
        Some(path) => format!("unix:{path}"),
        None => target.to_owned(),
    };
    let spec = match Spec::parse(&spelled) {
        Err(TargetError::UnbracketedIpv6) => match bracketed(&spelled) {
            Some(spelled) => Spec::parse(&spelled),
            None => Err(TargetError::UnbracketedIpv6),
        },
        parsed => parsed,
    }
    .map_err(|e| format!("invalid target {target:?}: {e}"))?;
    if proxy_protocol && matches!(spec, Spec::Udp(_)) {
        return Err("PROXY headers go to TCP and Unix socket targets only".into());
    }
    Ok(Line {
        token: token.to_owned(),
        spec,
        proxy_protocol,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// Checks on every lookup, or never after the first read.
    const EVERY: Duration = Duration::ZERO;
    const NEVER: Duration = Duration::from_secs(3600);
    /// A bound on waits that only a broken build reaches.
    const WAIT: Duration = Duration::from_secs(20);

    fn good(text: &str) -> Vec<Line> {
        parse(text).map(|(_, l)| l.unwrap()).collect()
    }

    #[test]
    fn websockify_s_format_with_comments_blank_lines_and_the_proxy_word() {
        let text = "# targets\n\nvnc1: 127.0.0.1:5901\n  vnc2:\t[::1]:5902 proxy-protocol\n\
                    vnc3: unix_socket:/run/vnc.sock\nvnc4: unix:/run/vnc.sock\r\n";
        let lines = good(text);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2].spec.to_string(), "unix:/run/vnc.sock");
        assert_eq!(lines[3].spec, lines[2].spec);
        let colon = good("a:b: 127.0.0.1:1\n");
        assert_eq!(colon[0].token, "a:b");
        assert_eq!(lines[0].token, "vnc1");
        assert_eq!(lines[0].spec.to_string(), "127.0.0.1:5901");
        assert!(!lines[0].proxy_protocol);
        assert_eq!(lines[1].token, "vnc2");
        assert_eq!(lines[1].spec.to_string(), "[::1]:5902");
        assert!(lines[1].proxy_protocol);
        // Regression: an IPv6 host without brackets, which websockify reads with the port
        // after the last colon, was skipped.
        let v6 = good("v6: ::1:5900\nu6: udp:fd00::1:53\n");
        assert_eq!(v6[0].spec.to_string(), "[::1]:5900");
        assert_eq!(v6[1].spec.to_string(), "udp:[fd00::1]:53");
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, line, fragment) in [
            ("vnc1 127.0.0.1:5901\n", 1, "expected `token: host:port`"),
            ("ok: 127.0.0.1:1\nvnc1:127.0.0.1:5901\n", 2, "expected"),
            ("vnc1: 127.1:5901\n", 1, "invalid target"),
            ("vnc1: unix:relative.sock\n", 1, "invalid target"),
            ("vnc1: ::1\n", 1, "invalid target"),
            ("vnc1: fe80::1:5900\n", 1, "link-local"),
            (
                "vnc1: udp:127.0.0.1:5901 proxy-protocol\n",
                1,
                "TCP and Unix",
            ),
            ("vnc1: 127.0.0.1:5901 please\n", 1, "unexpected \"please\""),
            ("two words: 127.0.0.1:5901\n", 1, "one word"),
            (": 127.0.0.1:5901\n", 1, "one word"),
        ] {
            let (n, message) = parse(text).find_map(|(n, l)| Some((n, l.err()?))).unwrap();
            assert_eq!(n, line, "{text:?}");
            assert!(message.contains(fragment), "{text:?}: {message}");
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sockrelay-tokens-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    async fn open(source: &Path, interval: Duration, io: Io) -> TokenTargets {
        TokenTargets::with(source, interval, io).await.unwrap()
    }

    /// The first address of a token's target.
    async fn addr(targets: &TokenTargets, token: &str) -> Result<String, LookupError> {
        Ok(targets.lookup(token).await?.addrs[0].to_string())
    }

    /// The system's files, counting the reads of each file by name.
    fn counting(reads: &Arc<Mutex<HashMap<String, usize>>>) -> Io {
        let reads = reads.clone();
        Io {
            read: Arc::new(move |path, limit| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                *lock(&reads).entry(name).or_default() += 1;
                read_limited(path, limit)
            }),
            ..Io::system()
        }
    }

    /// The system's files, and a resolver that answers `NAME.test` from `answer` and records
    /// what it was asked.
    fn resolving(
        asked: &Arc<Mutex<Vec<String>>>,
        answer: impl Fn(&str, usize) -> Option<std::io::Result<Vec<SocketAddr>>> + Send + Sync + 'static,
    ) -> Io {
        let asked = asked.clone();
        let answer = Arc::new(answer);
        Io {
            resolve: Arc::new(move |net| {
                let name = net.to_string();
                let n = {
                    let mut asked = lock(&asked);
                    asked.push(name.clone());
                    asked.len()
                };
                let answer = answer.clone();
                Box::pin(async move {
                    match answer(&name, n) {
                        Some(result) => result,
                        None => std::future::pending().await,
                    }
                })
            }),
            ..Io::system()
        }
    }

    #[tokio::test]
    async fn a_directory_means_every_file_in_it_but_dotfiles_and_the_last_definition_wins() {
        let dir = temp_dir("dir");
        std::fs::write(dir.join("a"), "one: 127.0.0.1:7001\n").unwrap();
        std::fs::write(
            dir.join("b.conf"),
            "two: 127.0.0.1:7002\none: 127.0.0.1:7009\n",
        )
        .unwrap();
        std::fs::write(dir.join(".b.conf.swp"), "\u{0}garbage").unwrap();
        let targets = TokenTargets::open(&dir).await.unwrap();
        // websockify fills a dictionary line by line, file by file.
        assert_eq!(addr(&targets, "one").await.unwrap(), "127.0.0.1:7009");
        assert_eq!(addr(&targets, "two").await.unwrap(), "127.0.0.1:7002");
        assert_eq!(targets.lookup("three").await, Err(LookupError::Unknown));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_redefined_token_is_warned_about_with_both_places() {
        let dir = temp_dir("twice");
        std::fs::write(dir.join("a"), "x: 127.0.0.1:1\nx: 127.0.0.1:2\n").unwrap();
        std::fs::write(dir.join("b"), "# b\nx: 127.0.0.1:3\n").unwrap();
        let (table, warnings) = scan(&dir, &Io::system(), &mut Files::default()).unwrap();
        let Some(Entry::Target { line: x, .. }) = table.tokens.get("x") else {
            panic!("{table:?}")
        };
        assert_eq!(x.spec.to_string(), "127.0.0.1:3");
        let (a, b) = (dir.join("a"), dir.join("b"));
        let expected = [
            format!(
                "defined at {}:1 is defined again at {}:2",
                a.display(),
                a.display()
            ),
            format!(
                "defined at {}:2 is defined again at {}:2",
                a.display(),
                b.display()
            ),
        ];
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        for (warning, expected) in warnings.iter().zip(expected) {
            assert!(warning.contains(&expected), "{warning}");
        }
        // The warnings name places, never the tokens themselves.
        assert!(warnings.iter().all(|w| !w.contains("x:")), "{warnings:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_bad_line_is_skipped_with_its_place_and_the_rest_of_the_file_served() {
        let dir = temp_dir("badline");
        let file = dir.join("tokens");
        std::fs::write(&file, "fine: 127.0.0.1:1\nbroken\nalso: 127.0.0.1:2\n").unwrap();
        let targets = open(&file, EVERY, Io::system()).await;
        assert_eq!(addr(&targets, "fine").await.unwrap(), "127.0.0.1:1");
        assert_eq!(addr(&targets, "also").await.unwrap(), "127.0.0.1:2");
        assert_eq!(targets.lookup("broken").await, Err(LookupError::Unknown));
        let (_, warnings) = scan(&file, &Io::system(), &mut Files::default()).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with(&format!("{}:2: expected", file.display())),
            "{warnings:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_lines_are_warned_about_when_their_file_is_read_and_counted_past_twenty() {
        let dir = temp_dir("manybad");
        let mut text = "ok: 127.0.0.1:1\n".to_owned();
        text.push_str(&"x\n".repeat(100_000));
        std::fs::write(dir.join("a"), &text).unwrap();
        std::fs::write(dir.join("b"), "b: 127.0.0.1:2\n").unwrap();
        let mut files = Files::default();
        let (table, warnings) = scan(&dir, &Io::system(), &mut files).unwrap();
        assert!(table.tokens.contains_key("ok"));
        assert_eq!(warnings.len(), MAX_WARNINGS + 1, "{warnings:?}");
        assert_eq!(warnings[MAX_WARNINGS], "100000 lines skipped in all");
        // Nothing of them is kept: the file's entries are its one good line.
        let a = files.read[&dir.join("a")].result.as_ref().unwrap();
        assert_eq!(a.lines.len(), 1);
        // Another file changes: the unchanged one is not read, nor warned about, again.
        std::fs::write(dir.join("b"), "b: 127.0.0.1:22\n# moved\n").unwrap();
        let (_, warnings) = scan(&dir, &Io::system(), &mut files).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_changed_file_is_read_again() {
        let dir = temp_dir("change");
        let file = dir.join("tokens");
        std::fs::write(&file, "one: 127.0.0.1:7001\n").unwrap();
        let targets = open(&file, EVERY, Io::system()).await;
        assert!(targets.lookup("one").await.is_ok());
        // A longer file: its size differs even where the clock's grain hides the new mtime.
        std::fs::write(&file, "two: 127.0.0.1:7002\n# one is gone\n").unwrap();
        assert_eq!(targets.lookup("one").await, Err(LookupError::Unknown));
        assert!(targets.lookup("two").await.is_ok());
        // Unreadable now: refused with the reason, not served from the old read.
        std::fs::write(&file, b"two: 127.0.0.1:7002\n\xff\n").unwrap();
        assert!(matches!(
            targets.lookup("two").await,
            Err(LookupError::File(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_unreadable_file_loses_only_its_own_tokens_and_is_read_again_only_when_changed() {
        let dir = temp_dir("unreadable");
        std::fs::write(dir.join("a"), "one: 127.0.0.1:1\n").unwrap();
        std::fs::write(dir.join("b"), "two: 127.0.0.1:2\n").unwrap();
        let reads = Arc::default();
        let targets = open(&dir, EVERY, counting(&reads)).await;
        std::fs::write(dir.join("b"), b"two: 127.0.0.1:2\n\xff\xfe\n").unwrap();
        for _ in 0..3 {
            assert_eq!(addr(&targets, "one").await.unwrap(), "127.0.0.1:1");
            // Its own token, and one that may be in it: the file's error, not "unknown".
            for token in ["two", "three"] {
                let Err(LookupError::File(e)) = targets.lookup(token).await else {
                    panic!("{token}")
                };
                assert!(
                    e.path.ends_with("b") && e.message == "not UTF-8 text",
                    "{e}"
                );
            }
        }
        // Read once when it was written, and not on each lookup after.
        assert_eq!(lock(&reads)["b"], 2, "{reads:?}");
        assert_eq!(lock(&reads)["a"], 1, "{reads:?}");
        std::fs::write(dir.join("b"), "two: 127.0.0.1:22\n").unwrap();
        assert_eq!(addr(&targets, "two").await.unwrap(), "127.0.0.1:22");
        assert_eq!(targets.lookup("three").await, Err(LookupError::Unknown));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_source_that_cannot_be_read_stops_the_start() {
        let dir = temp_dir("broken");
        let e = TokenTargets::open(&dir.join("missing")).await.unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        let file = dir.join("tokens");
        std::fs::write(&file, b"fine: 127.0.0.1:1\n\xff\n").unwrap();
        let e = TokenTargets::open(&file).await.unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        // In a directory, the same file costs its own tokens only.
        std::fs::write(dir.join("other"), "other: 127.0.0.1:2\n").unwrap();
        let targets = TokenTargets::open(&dir).await.unwrap();
        assert!(targets.lookup("other").await.is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn the_files_past_the_total_are_not_read_and_say_so() {
        let dir = temp_dir("total");
        // Nine files of 1,000,000 bytes: eight fit in 8 MiB, the ninth does not.
        for n in 0..9 {
            let mut text = format!("t{n}: 127.0.0.1:{}\n", n + 1);
            text.push_str(&"#".repeat(999_999 - text.len()));
            text.push('\n');
            assert_eq!(text.len(), 1_000_000);
            std::fs::write(dir.join(format!("f{n}")), text).unwrap();
        }
        let bytes = Arc::new(AtomicUsize::new(0));
        let counted = bytes.clone();
        let io = Io {
            read: Arc::new(move |path, limit| {
                let read = read_limited(path, limit)?;
                counted.fetch_add(read.len(), Ordering::Relaxed);
                Ok(read)
            }),
            ..Io::system()
        };
        let targets = open(&dir, EVERY, io).await;
        assert!(bytes.load(Ordering::Relaxed) as u64 <= MAX_TOTAL_BYTES);
        assert_eq!(addr(&targets, "t7").await.unwrap(), "127.0.0.1:8");
        for token in ["t8", "unknown"] {
            let Err(LookupError::File(e)) = targets.lookup(token).await else {
                panic!("{token}")
            };
            assert!(e.path.ends_with("f8"), "{e}");
            assert!(e.message.contains("8388608 bytes in all"), "{e}");
        }
        // One file over its own limit is refused alone.
        std::fs::remove_file(dir.join("f8")).unwrap();
        std::fs::write(dir.join("f0"), "#".repeat(MAX_FILE_BYTES as usize + 1)).unwrap();
        assert_eq!(addr(&targets, "t7").await.unwrap(), "127.0.0.1:8");
        let Err(LookupError::File(e)) = targets.lookup("t0").await else {
            panic!("t0")
        };
        assert!(e.message.contains("larger than 1048576 bytes"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_names_past_the_first_1024_are_not_looked_at_and_cost_one_warning() {
        let dir = temp_dir("many");
        // Written in reverse name order: the listing's order is not the directory's.
        for n in (0..MAX_FILES + 30).rev() {
            std::fs::write(dir.join(format!("f{n:04}")), format!("t{n}: 127.0.0.1:1\n")).unwrap();
        }
        let (table, warnings) = scan(&dir, &Io::system(), &mut Files::default()).unwrap();
        assert!(matches!(table.tokens.get("t0"), Some(Entry::Target { .. })));
        assert!(matches!(
            table.tokens.get("t1023"),
            Some(Entry::Target { .. })
        ));
        assert!(!table.tokens.contains_key("t1024"));
        // A token past the limit, or any other not found, may be in a file not read: 503.
        let unknown = table.unknown.unwrap();
        assert!(unknown.path.ends_with("f1024"), "{unknown}");
        assert!(
            unknown.message.contains("more than 1024 names"),
            "{unknown}"
        );
        assert!(unknown.message.contains("29 after it"), "{unknown}");
        assert_eq!(warnings, [unknown.to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_files_are_looked_at_once_per_interval() {
        let dir = temp_dir("interval");
        let file = dir.join("tokens");
        std::fs::write(&file, "one: 127.0.0.1:1\n").unwrap();
        let reads = Arc::default();
        let targets = open(&file, CHECK_INTERVAL, counting(&reads)).await;
        std::fs::write(&file, "one: 127.0.0.1:11\n").unwrap();
        assert_eq!(addr(&targets, "one").await.unwrap(), "127.0.0.1:1");
        assert_eq!(lock(&reads)["tokens"], 1);
        tokio::time::advance(CHECK_INTERVAL).await;
        assert_eq!(addr(&targets, "one").await.unwrap(), "127.0.0.1:11");
        assert_eq!(lock(&reads)["tokens"], 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_check_under_way_holds_up_no_other_lookup() {
        let dir = temp_dir("stall");
        std::fs::write(dir.join("fast"), "a: 127.0.0.1:1\n").unwrap();
        std::fs::write(dir.join("slow"), "b: 127.0.0.1:2\n").unwrap();
        // Once `hold` is set, reading `slow` says so and waits for `release`.
        let hold = Arc::new(AtomicBool::new(false));
        let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Mutex::new(released);
        let held = hold.clone();
        let io = Io {
            read: Arc::new(move |path, limit| {
                if held.load(Ordering::SeqCst) && path.ends_with("slow") {
                    let _ = entered_tx.send(());
                    let _ = lock(&released).recv_timeout(WAIT);
                }
                read_limited(path, limit)
            }),
            ..Io::system()
        };
        let targets = Arc::new(open(&dir, EVERY, io).await);
        hold.store(true, Ordering::SeqCst);
        std::fs::write(dir.join("slow"), "b: 127.0.0.1:3\n# moved\n").unwrap();
        let checking = tokio::spawn({
            let targets = targets.clone();
            async move { addr(&targets, "b").await }
        });
        tokio::time::timeout(WAIT, entered.recv())
            .await
            .unwrap()
            .unwrap();
        // The check is stuck in a read: others answer from the last read meanwhile.
        let others = async {
            (
                addr(&targets, "a").await.unwrap(),
                addr(&targets, "b").await.unwrap(),
            )
        };
        let answered = tokio::time::timeout(WAIT, others).await;
        release.send(()).unwrap();
        assert_eq!(
            answered.unwrap(),
            ("127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned())
        );
        assert_eq!(checking.await.unwrap().unwrap(), "127.0.0.1:3");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_fails_its_own_token_only() {
        let dir = temp_dir("noname");
        let file = dir.join("tokens");
        std::fs::write(
            &file,
            "gone: nowhere.test:1\ndesk: desk.test:5900\nlit: 127.0.0.1:7\nsock: unix:/run/x.sock\n",
        )
        .unwrap();
        let asked = Arc::default();
        let io = resolving(&asked, |name, _| {
            Some(match name {
                "desk.test:5900" => Ok(vec!["127.0.0.1:5900".parse().unwrap()]),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such name",
                )),
            })
        });
        let targets = open(&file, EVERY, io).await;
        assert_eq!(targets.lookup("gone").await, Err(LookupError::Unresolved));
        assert_eq!(addr(&targets, "desk").await.unwrap(), "127.0.0.1:5900");
        assert_eq!(addr(&targets, "lit").await.unwrap(), "127.0.0.1:7");
        assert!(targets.lookup("sock").await.unwrap().addrs.is_empty());
        // Addresses written out are not looked up.
        assert_eq!(*lock(&asked), ["nowhere.test:1", "desk.test:5900"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_name_is_resolved_when_its_token_is_asked_for() {
        let dir = temp_dir("dhcp");
        let file = dir.join("tokens");
        std::fs::write(&file, "vm: vm.test:5900\nudp: udp:vm.test:5900\n").unwrap();
        let asked = Arc::default();
        // The machine's address changes with each answer, as a DHCP lease might.
        let io = resolving(&asked, |_, n| {
            Some(Ok(vec![
                SocketAddr::from(([127, 0, 0, n as u8], 5900)),
                "224.0.0.1:5900".parse().unwrap(),
            ]))
        });
        let targets = Arc::new(open(&file, NEVER, io).await);
        assert!(lock(&asked).is_empty(), "nothing is resolved when read");
        let (a, b) = tokio::join!(targets.lookup("vm"), targets.lookup("vm"));
        assert_eq!(a, b);
        assert_eq!(a.unwrap().addrs[0].to_string(), "127.0.0.1:5900");
        assert_eq!(lock(&asked).len(), 1, "handshakes at once share one lookup");
        tokio::time::advance(NAME_TTL).await;
        assert_eq!(addr(&targets, "vm").await.unwrap(), "127.0.0.2:5900");
        // A UDP target by name never gets the multicast address.
        let udp = targets.lookup("udp").await.unwrap();
        assert_eq!(udp.addrs, ["127.0.0.3:5900".parse().unwrap()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_name_holds_up_its_own_token_only_and_times_out() {
        let dir = temp_dir("slowdns");
        let file = dir.join("tokens");
        std::fs::write(&file, "stuck: stuck.test:1\nfine: fine.test:2\n").unwrap();
        let asked = Arc::default();
        let io = resolving(&asked, |name, _| {
            (name == "fine.test:2").then(|| Ok(vec!["127.0.0.1:2".parse().unwrap()]))
        });
        let targets = Arc::new(open(&file, NEVER, io).await);
        let started = Instant::now();
        let stuck = tokio::spawn({
            let targets = targets.clone();
            async move { targets.lookup("stuck").await }
        });
        tokio::task::yield_now().await;
        // Well within the resolver's timeout: nothing waits for the stuck name.
        let fine = tokio::time::timeout(Duration::from_secs(1), addr(&targets, "fine")).await;
        assert_eq!(fine.unwrap().unwrap(), "127.0.0.1:2");
        let stuck = tokio::time::timeout(WAIT, stuck).await.unwrap();
        assert_eq!(stuck.unwrap(), Err(LookupError::Unresolved));
        assert!(started.elapsed() >= RESOLVE_TIMEOUT);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Token-file targets (`--target-tokens FILE_OR_DIR`): websockify's `TokenFile` format, where
//! `/ws?token=NAME` or `/websockify?token=NAME` picks the target written beside `NAME`.
//!
//! ```text
//! # comment
//! vnc1: 127.0.0.1:5901
//! vnc2: [::1]:5902 proxy-protocol
//! ```
//!
//! One entry per line: the token, a colon and white space, the target in the forms `--allow`
//! takes, and optionally the word `proxy-protocol` (the target is sent a PROXY protocol v2
//! header, see [`crate::proxy_protocol`]). `#` starts a comment line; blank lines are skipped.
//! A directory means every file directly in it (names starting with `.`, such as editors' swap
//! files, are skipped), read in name order; the first definition of a token wins.
//!
//! The files are the operator's allow-list: a token's target counts as allowed, and nothing
//! else is. A name in them is resolved when the file is read, and requests use those addresses,
//! as `--allow` entries use their startup ones (no DNS rebinding between a read and a request).
//!
//! Changes are picked up without a restart: each lookup compares the files' modification time,
//! size and inode with those of the last read (one directory listing and one `stat` per file),
//! and reads them again when any differs. The cost is bounded: at most [`MAX_FILES`] files of at
//! most [`MAX_FILE_BYTES`] each, and lookups wait for one shared read instead of each starting
//! their own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::sync::Mutex;

use super::target::{Host, Spec};
use crate::bridge::target::{Dest, TcpAddr, UdpAddr, UnixAddr};

/// The most files of a token directory that are read; more is a configuration error.
pub const MAX_FILES: usize = 1024;
/// The largest token file read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// A token's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTarget {
    pub spec: Spec,
    /// What a TCP or UDP target resolved to when its file was read.
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

/// The token files, read again when they change.
#[derive(Debug)]
pub struct TokenTargets {
    source: PathBuf,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    /// The files as they were when `entries` was read; `None` before the first read.
    stamps: Option<Vec<Stamp>>,
    entries: HashMap<String, TokenTarget>,
}

/// What tells that a file changed: its path, modification time, size and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    path: PathBuf,
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// A token file that cannot be used: the relay refuses to start on it, and a request that
/// meets it later is refused (the previous read is not kept: the operator changed the file).
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
}

impl TokenTargets {
    /// Reads `source` (a file or a directory of them) once, so that a broken file stops the
    /// relay at startup rather than at the first request.
    pub async fn open(source: &Path) -> Result<TokenTargets, TokenFileError> {
        let targets = TokenTargets {
            source: source.to_owned(),
            cache: Mutex::new(Cache::default()),
        };
        {
            let mut cache = targets.cache.lock().await;
            targets.refresh(&mut cache).await?;
        }
        Ok(targets)
    }

    /// The file or directory the targets come from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The target of `token`, from the files as they are now.
    pub async fn lookup(&self, token: &str) -> Result<TokenTarget, LookupError> {
        let mut cache = self.cache.lock().await;
        if let Err(e) = self.refresh(&mut cache).await {
            tracing::warn!(error = %e, "cannot read the target tokens");
            return Err(e.into());
        }
        cache
            .entries
            .get(token)
            .cloned()
            .ok_or(LookupError::Unknown)
    }

    /// Reads the files again if any changed since the last read.
    async fn refresh(&self, cache: &mut Cache) -> Result<(), TokenFileError> {
        let source = self.source.clone();
        let stamps = blocking(move || stamps(&source)).await?;
        if cache.stamps.as_ref() == Some(&stamps) {
            return Ok(());
        }
        // Whatever happens next, the old entries no longer describe the files.
        cache.stamps = None;
        cache.entries.clear();
        let paths: Vec<PathBuf> = stamps.iter().map(|s| s.path.clone()).collect();
        let texts = blocking(move || {
            paths
                .into_iter()
                .map(|path| read_limited(&path).map(|text| (path, text)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
        let mut entries = HashMap::new();
        for (path, text) in texts {
            for line in parse(&text).map_err(|(line, message)| TokenFileError {
                path: format!("{}, line {line}", path.display()),
                message,
            })? {
                if entries.contains_key(&line.token) {
                    tracing::warn!(token_file = %path.display(), "a token is defined twice: the first definition is used");
                    continue;
                }
                let addrs = resolve(&line.spec).await.map_err(|e| TokenFileError {
                    path: path.display().to_string(),
                    message: format!("cannot resolve {}: {e}", line.spec),
                })?;
                entries.insert(
                    line.token,
                    TokenTarget {
                        spec: line.spec,
                        addrs,
                        proxy_protocol: line.proxy_protocol,
                    },
                );
            }
        }
        tracing::debug!(source = %self.source.display(), tokens = entries.len(), "read the target tokens");
        cache.entries = entries;
        cache.stamps = Some(stamps);
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TokenFileError> + Send + 'static,
) -> Result<T, TokenFileError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(error(Path::new("-"), e)))
}

fn error(path: &Path, e: impl std::fmt::Display) -> TokenFileError {
    TokenFileError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The files `source` stands for, with what tells whether they changed: one `stat` per file.
fn stamps(source: &Path) -> Result<Vec<Stamp>, TokenFileError> {
    let stamp = |path: PathBuf, meta: &std::fs::Metadata| Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: inode(meta),
        path,
    };
    let meta = std::fs::metadata(source).map_err(|e| error(source, e))?;
    if !meta.is_dir() {
        return Ok(vec![stamp(source.to_owned(), &meta)]);
    }
    let mut stamps = Vec::new();
    for entry in std::fs::read_dir(source).map_err(|e| error(source, e))? {
        let entry = entry.map_err(|e| error(source, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Symbolic links are followed: a directory of links to files is common.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => stamps.push(stamp(path, &meta)),
            _ => continue,
        }
        if stamps.len() > MAX_FILES {
            return Err(error(
                source,
                format!("more than {MAX_FILES} token files in the directory"),
            ));
        }
    }
    stamps.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(stamps)
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

fn read_limited(path: &Path) -> Result<String, TokenFileError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| error(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(path, e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(error(path, format!("larger than {MAX_FILE_BYTES} bytes")));
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

/// Parses a token file; an error names the line (from 1) and what is wrong with it.
pub fn parse(text: &str) -> Result<Vec<Line>, (usize, String)> {
    let mut lines = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let number = n + 1;
        // websockify splits on a colon followed by white space: `token: host:port`, where the
        // token may hold a colon itself.
        let Some((token, rest)) = line
            .match_indices(':')
            .map(|(i, _)| (&line[..i], &line[i + 1..]))
            .find(|(_, rest)| rest.starts_with(char::is_whitespace))
        else {
            return Err((number, "expected `token: host:port`".into()));
        };
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err((number, "a token is one word before the colon".into()));
        }
        let mut words = rest.split_whitespace();
        let target = words.next().unwrap_or_default();
        let proxy_protocol = match words.next() {
            None => false,
            Some("proxy-protocol") => true,
            Some(other) => {
                return Err((
                    number,
                    format!(
                    "unexpected {other:?} after the target (only `proxy-protocol` may follow it)"
                ),
                ))
            }
        };
        if let Some(extra) = words.next() {
            return Err((
                number,
                format!("unexpected {extra:?} at the end of the line"),
            ));
        }
        // websockify writes a Unix socket target as `unix_socket:/path`.
        let spelled = match target.strip_prefix("unix_socket:") {
            Some(path) => format!("unix:{path}"),
            None => target.to_owned(),
        };
        let spec = Spec::parse(&spelled)
            .map_err(|e| (number, format!("invalid target {target:?}: {e}")))?;
        if proxy_protocol && matches!(spec, Spec::Udp(_)) {
            return Err((
                number,
                "PROXY headers go to TCP and Unix socket targets only".into(),
            ));
        }
        lines.push(Line {
            token: token.to_owned(),
            spec,
            proxy_protocol,
        });
    }
    Ok(lines)
}

async fn resolve(spec: &Spec) -> std::io::Result<Vec<SocketAddr>> {
    match spec {
        Spec::Tcp(net) => super::target::resolve_with_system(net).await,
        Spec::Udp(net) => {
            // As for `--allow`: a name never reaches a broadcast or multicast address.
            let named = matches!(net.host, Host::Name(_));
            let kept: Vec<SocketAddr> = super::target::resolve_with_system(net)
                .await?
                .into_iter()
                .filter(|a| !(named && super::target::is_broadcast_or_multicast(a.ip())))
                .collect();
            if kept.is_empty() {
                return Err(std::io::Error::other(
                    "resolves only to broadcast or multicast addresses",
                ));
            }
            Ok(kept)
        }
        Spec::Unix(_) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn websockify_s_format_with_comments_blank_lines_and_the_proxy_word() {
        let text = "# targets\n\nvnc1: 127.0.0.1:5901\n  vnc2:\t[::1]:5902 proxy-protocol\n\
                    vnc3: unix_socket:/run/vnc.sock\nvnc4: unix:/run/vnc.sock\n";
        let lines = parse(text).unwrap();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2].spec.to_string(), "unix:/run/vnc.sock");
        assert_eq!(lines[3].spec, lines[2].spec);
        let colon = parse("a:b: 127.0.0.1:1\n").unwrap();
        assert_eq!(colon[0].token, "a:b");
        assert_eq!(lines[0].token, "vnc1");
        assert_eq!(lines[0].spec.to_string(), "127.0.0.1:5901");
        assert!(!lines[0].proxy_protocol);
        assert_eq!(lines[1].token, "vnc2");
        assert_eq!(lines[1].spec.to_string(), "[::1]:5902");
        assert!(lines[1].proxy_protocol);
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, line, fragment) in [
            ("vnc1 127.0.0.1:5901\n", 1, "expected `token: host:port`"),
            ("ok: 127.0.0.1:1\nvnc1:127.0.0.1:5901\n", 2, "expected"),
            ("vnc1: 127.1:5901\n", 1, "invalid target"),
            ("vnc1: unix:relative.sock\n", 1, "invalid target"),
            (
                "vnc1: udp:127.0.0.1:5901 proxy-protocol\n",
                1,
                "TCP and Unix",
            ),
            ("vnc1: 127.0.0.1:5901 please\n", 1, "unexpected \"please\""),
            ("two words: 127.0.0.1:5901\n", 1, "one word"),
            (": 127.0.0.1:5901\n", 1, "one word"),
        ] {
            let (n, message) = parse(text).unwrap_err();
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

    #[tokio::test]
    async fn a_directory_means_every_file_in_it_but_dotfiles() {
        let dir = temp_dir("dir");
        std::fs::write(dir.join("a"), "one: 127.0.0.1:7001\n").unwrap();
        std::fs::write(
            dir.join("b.conf"),
            "two: 127.0.0.1:7002\none: 127.0.0.1:7009\n",
        )
        .unwrap();
        std::fs::write(dir.join(".b.conf.swp"), "\u{0}garbage").unwrap();
        let targets = TokenTargets::open(&dir).await.unwrap();
        let one = targets.lookup("one").await.unwrap();
        assert_eq!(
            one.addrs,
            vec!["127.0.0.1:7001".parse().unwrap()],
            "first wins"
        );
        assert_eq!(
            targets.lookup("two").await.unwrap().spec.to_string(),
            "127.0.0.1:7002"
        );
        assert_eq!(targets.lookup("three").await, Err(LookupError::Unknown));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_changed_file_is_read_again() {
        let dir = temp_dir("change");
        let file = dir.join("tokens");
        std::fs::write(&file, "one: 127.0.0.1:7001\n").unwrap();
        let targets = TokenTargets::open(&file).await.unwrap();
        assert!(targets.lookup("one").await.is_ok());
        // A longer file: its size differs even where the clock's grain hides the new mtime.
        std::fs::write(&file, "two: 127.0.0.1:7002\n# one is gone\n").unwrap();
        assert_eq!(targets.lookup("one").await, Err(LookupError::Unknown));
        assert!(targets.lookup("two").await.is_ok());
        // Broken now: refused with the reason, not served from the old read.
        std::fs::write(&file, "two 127.0.0.1:7002\n").unwrap();
        assert!(matches!(
            targets.lookup("two").await,
            Err(LookupError::File(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_broken_file_stops_the_start() {
        let dir = temp_dir("broken");
        let file = dir.join("tokens");
        std::fs::write(&file, "fine: 127.0.0.1:1\nbroken\n").unwrap();
        let e = TokenTargets::open(&file).await.unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = TokenTargets::open(&dir.join("missing")).await.unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

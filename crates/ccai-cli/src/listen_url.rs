//! Where the last `ccai listen` listens, for `ccai trigger` to send to by default. A file of its
//! own in the config directory (`listen-url`), written whatever the credentials: it once lived
//! only in the development credentials, so with configured ones `trigger` went to port 8080.

use std::fs;
use std::path::PathBuf;

use anyhow::Result;

use crate::dev_credentials;

const FILE_NAME: &str = "listen-url";

fn path() -> Result<PathBuf> {
    Ok(dev_credentials::config_dir()?.join(FILE_NAME))
}

/// A URL recorded by [`save`], and the one it replaced, for [`Saved::restore`] at stop.
#[derive(Debug)]
pub(crate) struct Saved {
    url: String,
    previous: Option<String>,
}

impl Saved {
    /// Puts back the URL this one replaced, if the file still holds this one and the listener
    /// there still answers: once this `ccai listen` stops, a `trigger` sent to it would find
    /// nothing, while the one before may still run (a second listener started and stopped
    /// beside a first). Nothing is done when another `ccai listen` recorded its own since, or
    /// when none was recorded before, or when the one before has gone too (killed, or stopped
    /// while this one held the file): the file then keeps this one's URL, as after a lone
    /// listener's stop, and `trigger` says the saved address may have stopped. Removing the
    /// file would not do: `trigger` then reads the URL kept in the development credentials,
    /// this one's too.
    pub(crate) async fn restore(self) {
        let Some(previous) = self.previous.filter(|p| *p != self.url) else {
            return;
        };
        let still_ours = || load().is_some_and(|(now, _)| now == self.url);
        // Looked at again after the probe, which may take a second: a listener started
        // meanwhile keeps its own URL.
        if still_ours() && listening(&previous).await && still_ours() {
            write(&previous);
        }
    }
}

/// How long the check that an earlier listener still runs may take: a connection on the same
/// machine is accepted or refused at once.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether something accepts connections at `url`'s host and port. A connection, not a request:
/// a listener killed without its clean stop leaves its URL behind, and a refused connection
/// tells that much; a program that has taken the port since passes the check.
async fn listening(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return false;
    };
    // `[::1]` is the URL's spelling; the address is `::1`.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    matches!(
        tokio::time::timeout(CHECK_TIMEOUT, tokio::net::TcpStream::connect((host, port))).await,
        Ok(Ok(_))
    )
}

/// Records `url` (best effort: `trigger` then falls back to its default), and what it replaced.
pub(crate) fn save(url: &str) -> Saved {
    let previous = load().map(|(url, _)| url);
    write(url);
    Saved {
        url: url.to_owned(),
        previous,
    }
}

fn write(url: &str) {
    if let Ok(path) = path() {
        // Owner-only, like the development credentials that may later go in the same folder.
        if let Some(dir) = path.parent() {
            let _ = dev_credentials::create_private_dir(dir);
        }
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        if fs::write(&tmp, format!("{url}\n")).is_ok() {
            let _ = fs::rename(&tmp, &path);
        }
    }
}

/// The URL the last `ccai listen` recorded, if any, and the file it is in (for messages).
pub(crate) fn load() -> Option<(String, PathBuf)> {
    read().ok().flatten()
}

/// Why the `listen-url` file that is there gives no URL.
#[derive(Debug)]
pub(crate) enum Unusable {
    /// It cannot be read (a folder in its place, not this user's to read).
    Unreadable(std::io::Error),
    /// A line that is not blank follows the URL's: not what [`save`] writes, and read as one
    /// text the lines made one URL (a URL parser drops line breaks).
    MoreThanOneLine,
    /// The URL's line holds a space, a tab or another control character: a URL parser drops
    /// tabs, so `…/web<TAB>hook` went to `…/webhook`.
    SpaceInside,
}

/// The most of the file read: [`save`] writes one URL and a line feed.
const MAX_BYTES: u64 = 64 * 1024;

/// [`load`], or why the file that is there gives no URL: for `trigger`, which without it would
/// send elsewhere (to the URL the development credentials keep, an older listener's) and say
/// that no `ccai listen` announced one.
pub(crate) fn read() -> Result<Option<(String, PathBuf)>, (Unusable, PathBuf)> {
    let Ok(path) = path() else {
        return Ok(None);
    };
    let text = match read_text(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err((Unusable::Unreadable(e), path)),
    };
    match url_in(&text) {
        Ok(url) => Ok(url.map(|url| (url.to_owned(), path))),
        Err(unusable) => Err((unusable, path)),
    }
}

/// The text of the file at `path`, if it is a file of at most [`MAX_BYTES`]. Anything else in
/// its place is an error, before it is opened: opening a FIFO waits for a writer, so `trigger`
/// hung, and a device may never end.
fn read_text(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let meta = fs::metadata(path)?;
    // A folder is left to the read, whose error says what it is.
    if !meta.is_file() && !meta.is_dir() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "not a regular file: a FIFO, a socket or a device",
        ));
    }
    let mut text = String::new();
    fs::File::open(path)?
        .take(MAX_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {} KiB", MAX_BYTES / 1024),
        ));
    }
    Ok(text)
}

/// The URL a `listen-url` file's text holds: its first line, without the spaces around it or
/// its line ending (CRLF too); `None` if that is empty. Blank lines after it are allowed (an
/// editor's), any other is an error, as is a space or control character inside the URL.
fn url_in(text: &str) -> Result<Option<&str>, Unusable> {
    // A lone CR (an old Mac line ending) ends a line too: left inside the line, the URL parser
    // drops it and joins the lines. A CRLF leaves a blank piece between CR and LF.
    let mut lines = text.split(['\n', '\r']);
    let url = lines.next().unwrap_or_default().trim();
    if lines.any(|line| !line.trim().is_empty()) {
        return Err(Unusable::MoreThanOneLine);
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Unusable::SpaceInside);
    }
    Ok((!url.is_empty()).then_some(url))
}

#[cfg(test)]
mod tests {
    use super::listening;

    #[tokio::test]
    async fn a_listener_is_there_while_its_port_accepts() {
        let bound = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhook", bound.local_addr().unwrap());
        assert!(listening(&url).await);
        drop(bound);
        assert!(!listening(&url).await);
        assert!(!listening("not a url").await);
    }
}

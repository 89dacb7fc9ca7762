//! The development client id and secret that `ccai listen` creates and `ccai trigger` reuses, so
//! the two work together on a fresh machine with no configuration.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Overrides the folder the credentials live in (default: the user's config directory + `ccai`).
pub(crate) const CONFIG_DIR_ENV: &str = "CCAI_CONFIG_DIR";
const FILE_NAME: &str = "dev-credentials.json";
/// The client id used when none is configured.
pub(crate) const DEV_CLIENT_ID: &str = "ccai-dev";
/// Where `trigger` sends when neither `--to` nor a running listener says otherwise.
pub(crate) const DEFAULT_LISTEN_URL: &str = "http://127.0.0.1:8080/webhook";

/// The stored development settings.
#[derive(Clone)]
pub(crate) struct DevCredentials {
    pub client_id: String,
    pub secret: String,
    /// The URL the last `ccai listen` announced.
    pub listen_url: Option<String>,
}

pub(crate) fn config_dir() -> Result<PathBuf> {
    located().map(|(dir, _)| dir)
}

/// The config directory, and whether it came from `CCAI_CONFIG_DIR`.
fn located() -> Result<(PathBuf, bool)> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        // As for the store: a `~` no shell expanded would put the secret in a folder named `~`.
        crate::store_path::refuse_unexpanded_home(CONFIG_DIR_ENV, &dir)?;
        return Ok((dir, true));
    }
    let dir = dirs::config_dir().map(|d| d.join("ccai")).context(
        "cannot find your config directory: set CCAI_CONFIG_DIR to a folder ccai may write to",
    )?;
    Ok((dir, false))
}

/// The config folder made ready for the development credentials before `ccai listen` opens its
/// store, so that a folder the secret cannot be written to refuses the start before a store file
/// exists (the secret itself is written only once the store is open). Unless kept, the folders it
/// created are removed again when it is dropped: a start refused later leaves nothing behind.
pub(crate) struct PreparedDir {
    /// The folders this start created, deepest first.
    created: Vec<PathBuf>,
    kept: bool,
}

impl PreparedDir {
    /// The start went through: the folder stays.
    pub(crate) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for PreparedDir {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        // `remove_dir` removes only an empty folder: whatever another process put there stays.
        for dir in &self.created {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Checks that the development credentials can be read, or created in the config folder (making
/// the folder, writing and removing a probe file), without writing them.
pub(crate) fn prepare() -> Result<PreparedDir> {
    let (dir, from_env) = located()?;
    let next_step = if from_env {
        format!(
            "set {CONFIG_DIR_ENV} to a folder ccai may write to, or unset it to use the default"
        )
    } else {
        format!("set {CONFIG_DIR_ENV} to a folder ccai may write to")
    };
    let named = if from_env {
        format!("{} ({CONFIG_DIR_ENV})", dir.display())
    } else {
        dir.display().to_string()
    };
    if dir.exists() && !dir.is_dir() {
        bail!("the config folder {named} is not a folder: {next_step}");
    }
    let created: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .map(Path::to_path_buf)
        .collect();
    let prepared = PreparedDir {
        created,
        kept: false,
    };
    create_private_dir(&dir).map_err(|e| {
        let cause = e.root_cause();
        anyhow::anyhow!("cannot create the config folder {named}: {cause}: {next_step}")
    })?;
    if load()?.is_none() {
        let probe = dir.join(format!(".{FILE_NAME}.probe.{}", std::process::id()));
        let _ = fs::remove_file(&probe);
        private_file(&probe).map_err(|e| {
            anyhow::anyhow!(
                "cannot write a development secret in the config folder {named}: {e}: {next_step}"
            )
        })?;
        let _ = fs::remove_file(&probe);
    }
    Ok(prepared)
}

pub(crate) fn path() -> Result<PathBuf> {
    Ok(config_dir()?.join(FILE_NAME))
}

/// Reads the stored credentials, if any.
pub(crate) fn load() -> Result<Option<DevCredentials>> {
    let path = path()?;
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let value: Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not valid JSON: delete it and run `ccai listen` again",
            path.display()
        )
    })?;
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    match (field("client_id"), field("secret")) {
        (Some(client_id), Some(secret)) if !client_id.is_empty() && !secret.is_empty() => {
            Ok(Some(DevCredentials {
                client_id,
                secret,
                listen_url: field("listen_url"),
            }))
        }
        _ => bail!(
            "{} lacks client_id or secret: delete it and run `ccai listen` again",
            path.display()
        ),
    }
}

/// The stored credentials, created (random secret, owner-only file) when there are none.
/// Returns them and whether they were just created.
pub(crate) fn load_or_create() -> Result<(DevCredentials, bool)> {
    if let Some(existing) = load()? {
        return Ok((existing, false));
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot get random bytes for a secret: {e}"))?;
    let secret = format!("whsec_dev_{}", hex(&bytes));
    let credentials = DevCredentials {
        client_id: DEV_CLIENT_ID.to_owned(),
        secret,
        listen_url: None,
    };
    let path = path()?;
    let tmp = write_temp(&path, &credentials)?;
    // Publish only if no other `ccai listen` created the file meanwhile: a hard link fails when the
    // target exists, so concurrent first runs agree on one secret (the first one's).
    let published = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match published {
        Ok(()) => Ok((credentials, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match load()? {
            Some(existing) => Ok((existing, false)),
            None => bail!(
                "{} vanished while being created: run the command again",
                path.display()
            ),
        },
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// Writes the credentials with mode 0600 (the folder 0700) on Unix, replacing the file atomically.
pub(crate) fn save(credentials: &DevCredentials) -> Result<()> {
    let path = path()?;
    let tmp = write_temp(&path, credentials)?;
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
}

/// A new owner-only temporary file beside `path` holding the credentials.
fn write_temp(path: &Path, credentials: &DevCredentials) -> Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let body = json!({
        "client_id": credentials.client_id,
        "secret": credentials.secret,
        "listen_url": credentials.listen_url,
    });
    let tmp = dir.join(format!(".{FILE_NAME}.{}", std::process::id()));
    // A stale file of a crashed run may have other permissions: start from a new one.
    let _ = fs::remove_file(&tmp);
    let mut file = private_file(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(format!("{body:#}\n").as_bytes())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    Ok(tmp)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `dir` (and its parents) owner-only (0700 on Unix), as the credentials' folder is: every
/// file ccai keeps in its config directory goes through this, whichever is written first.
#[cfg(unix)]
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(not(unix))]
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

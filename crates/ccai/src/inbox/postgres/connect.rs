//! Connecting: the URL (with an optional `schema` parameter of ours), how it is shown (never with
//! its password), TLS (rustls for `sslmode=require`), the pool, and PostgreSQL errors as
//! [`StoreError`]s.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::inbox::StoreError;

/// How connections are encrypted.
#[derive(Clone)]
pub(crate) enum Tls {
    /// `sslmode=disable` or `prefer` (the default): plain TCP.
    Plain,
    /// `sslmode=require`: rustls, the server's certificate checked against the web PKI roots or
    /// the `sslrootcert` file's CA certificates.
    Rustls(MakeRustlsConnect),
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tls::Plain => "Plain",
            Tls::Rustls(_) => "Rustls",
        })
    }
}

/// A parsed `postgres://` URL.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) config: tokio_postgres::Config,
    /// The `schema` query parameter, if the URL had one.
    pub(crate) schema: Option<String>,
    /// The `operation_timeout` query parameter (seconds), if the URL had one.
    pub(crate) operation_timeout: Option<Duration>,
    pub(crate) tls: Tls,
}

/// Parses `url`. Errors never repeat the URL (it may hold a password).
pub(crate) fn parse_url(url: &str) -> Result<Target, StoreError> {
    let invalid = |why: String| {
        StoreError::InvalidRequest(format!(
            "invalid PostgreSQL URL (expected postgres://user@host:port/database): {why}"
        ))
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(invalid("it must start with postgres://".into()));
    }
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut schema = None;
    let mut operation_timeout = None;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        match pair.split_once('=') {
            Some(("schema", value)) => schema = Some(value.to_owned()),
            Some(("operation_timeout", value)) => {
                // Not under the URL-shape prefix: the shape is fine, the value is not.
                operation_timeout = Some(seconds(value).ok_or_else(|| {
                    StoreError::InvalidRequest(format!(
                        "the PostgreSQL URL's operation_timeout must be a number of seconds above 0 and at most {MAX_OPERATION_TIMEOUT_SECS} (a day), like 10 or 2.5 (got {value:?})"
                    ))
                })?)
            }
            // libpq's name; tokio-postgres does not know it, so it is ours to apply.
            Some(("sslrootcert", value)) => root_cert = Some(value.to_owned()),
            _ if !pair.is_empty() => kept.push(pair),
            _ => {}
        }
    }
    let rebuilt = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    // tokio-postgres takes the user name and password up to the first `@` anywhere in the URL:
    // with an unencoded `@` in the password (even after a `/` or `#` in it), the rest of the
    // password would become the host name, and every connection error would show it.
    if rebuilt.matches('@').count() > 1 {
        return Err(invalid(
            "more than one @: write an @ in the user name, password or a parameter as %40".into(),
        ));
    }
    let config: tokio_postgres::Config = rebuilt.parse().map_err(|e: tokio_postgres::Error| {
        // tokio-postgres's own text is only "invalid connection string"; the error under it
        // names the offending option ("unknown option `sslmod`", "invalid value for option
        // `port`"), never its value.
        match std::error::Error::source(&e) {
            Some(cause) => invalid(format!("{e}: {cause}")),
            None => invalid(e.to_string()),
        }
    })?;
    let tls = match (config.get_ssl_mode(), root_cert) {
        (SslMode::Require, root_cert) => Tls::Rustls(rustls_connector(root_cert.as_deref())?),
        (_, Some(_)) => {
            return Err(invalid(
                "sslrootcert needs sslmode=require (the certificate is checked only with TLS)"
                    .into(),
            ))
        }
        (_, None) => Tls::Plain,
    };
    Ok(Target {
        config,
        schema,
        operation_timeout,
        tls,
    })
}

/// The longest `operation_timeout`, in seconds: a day.
const MAX_OPERATION_TIMEOUT_SECS: u32 = 86_400;

/// `10` or `2.5` seconds, above 0 and at most a day.
fn seconds(value: &str) -> Option<Duration> {
    let secs: f64 = value.parse().ok()?;
    (secs > 0.0 && secs <= f64::from(MAX_OPERATION_TIMEOUT_SECS))
        .then(|| Duration::from_secs_f64(secs))
}

/// The TLS set-up: the server's certificate is checked against the CA certificates in the PEM
/// file `root_cert` (`sslrootcert=`, for a private CA or a cloud provider's), else against the
/// web PKI roots.
fn rustls_connector(root_cert: Option<&str>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let unusable =
                |why: String| StoreError::InvalidRequest(format!("sslrootcert {path}: {why}"));
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| unusable(format!("cannot read PEM certificates ({e})")))?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(unusable("holds no usable CA certificate".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Unavailable(format!("cannot set up TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `postgres://user@host:port/database`: the URL as shown in messages, logs and Debug, without
/// the password or any other parameter.
pub(crate) fn shown(config: &tokio_postgres::Config) -> String {
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{name}:{port}")
        })
        .collect();
    let db = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

/// A pool of `size` connections to `target`; connecting, waiting and recycling each give up
/// after `timeout` (then [`StoreError::Unavailable`]). With `read_only`, every session is
/// read-only on the server before it is used.
pub(crate) fn pool(
    target: &Target,
    size: usize,
    timeout: Duration,
    read_only: bool,
) -> Result<Pool, StoreError> {
    let mut config = target.config.clone();
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("ccai-inbox");
    }
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match &target.tls {
        Tls::Plain => Manager::from_config(config, NoTls, manager_config),
        Tls::Rustls(tls) => Manager::from_config(config, tls.clone(), manager_config),
    };
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .post_create(Hook::async_fn(move |client, _| {
            Box::pin(async move {
                check_client_connection(client, timeout).await?;
                if read_only {
                    read_only_session(client, timeout).await?;
                }
                Ok(())
            })
        }))
        .build()
        .map_err(|e| StoreError::Unavailable(format!("cannot build the connection pool: {e}")))
}

/// How often a backend checks, while it runs a statement, that this client is still there.
pub(crate) const CLIENT_CHECK_INTERVAL_MS: u32 = 1000;

/// Asks the backend of a new connection to check every second, while it runs a statement, that
/// the client is still connected, and to stop if not (PostgreSQL 14 and later, on Linux and
/// others with `POLLRDHUP`). The operation timeout gives up on a statement by closing its
/// connection; without this, the backend would not notice until it next wrote to the socket: a
/// purge would go on deleting (to be rolled back in the end), a statement waiting for a lock
/// would wait on, holding its place in the lock queue. Older servers lack the setting: that is
/// no error. The hook runs outside the pool's create timeout, so it bounds itself.
async fn check_client_connection(
    client: &mut deadpool_postgres::ClientWrapper,
    timeout: Duration,
) -> Result<(), HookError> {
    let set = format!("SET client_connection_check_interval = {CLIENT_CHECK_INTERVAL_MS}");
    match tokio::time::timeout(timeout, client.batch_execute(&set)).await {
        Ok(Ok(())) => Ok(()),
        // Before 14, no such setting; a platform without the check refuses any value but 0.
        Ok(Err(e))
            if e.code() == Some(&SqlState::UNDEFINED_OBJECT)
                || e.code() == Some(&SqlState::INVALID_PARAMETER_VALUE) =>
        {
            Ok(())
        }
        Ok(Err(e)) => Err(HookError::Backend(e)),
        Err(_) => Err(HookError::Message(
            "the database did not answer a new connection's first statement in time".into(),
        )),
    }
}

/// Makes a new connection's session read-only on the server, for a store connected read-only:
/// whatever statement the store sends, the server writes nothing.
async fn read_only_session(
    client: &mut deadpool_postgres::ClientWrapper,
    timeout: Duration,
) -> Result<(), HookError> {
    let set = "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY";
    match tokio::time::timeout(timeout, client.batch_execute(set)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(HookError::Backend(e)),
        Err(_) => Err(HookError::Message(
            "the database did not answer a new connection's first statement in time".into(),
        )),
    }
}

/// Maps the error of a statement that writes: the server's refusal for want of a privilege
/// (42501) or because it takes no writes (25006) is [`StoreError::NotWritable`], which a tool
/// that only reads may answer by connecting read-only; any other as [`pg_error`].
pub(crate) fn write_error(location: &str, error: &tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db)
            if *db.code() == SqlState::INSUFFICIENT_PRIVILEGE
                || *db.code() == SqlState::READ_ONLY_SQL_TRANSACTION =>
        {
            StoreError::NotWritable {
                path: location.to_owned(),
                reason: format!("{}, SQLSTATE {}", db.message(), db.code().code()),
            }
        }
        _ => pg_error(location, error),
    }
}

/// Whether `error` is worth retrying the same transaction for (deadlock, serialization failure).
pub(crate) fn is_retryable(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// Maps a PostgreSQL error; `shown` names the store.
pub(crate) fn pg_error(shown: &str, error: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNDEFINED_TABLE
            || *code == SqlState::UNDEFINED_COLUMN
            || *code == SqlState::INVALID_SCHEMA_NAME
        {
            return StoreError::Corrupt(format!(
                "{shown}: {} (was the inbox schema dropped or changed?)",
                db.message()
            ));
        }
        return StoreError::Unavailable(format!("{shown}: {} ({})", db.message(), code.code()));
    }
    if error.is_closed() {
        return StoreError::Unavailable(format!(
            "{shown}: the connection to PostgreSQL was closed"
        ));
    }
    // tokio-postgres's own text ("error connecting to server") leaves out why; the error under
    // it says so (connection refused, a host name that does not resolve, a TLS failure) and
    // never holds the password.
    match std::error::Error::source(error) {
        Some(cause) => StoreError::Unavailable(format!("{shown}: {error}: {cause}")),
        None => StoreError::Unavailable(format!("{shown}: {error}")),
    }
}

/// Maps a pool error.
pub(crate) fn pool_error(shown: &str, error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => pg_error(shown, &error),
        PoolError::Timeout(_) => StoreError::Unavailable(format!(
            "{shown}: no database connection in time (is PostgreSQL running and reachable?)"
        )),
        PoolError::Closed => StoreError::Unavailable(format!("{shown}: the store is closed")),
        PoolError::PostCreateHook(HookError::Backend(error)) => pg_error(shown, &error),
        PoolError::PostCreateHook(HookError::Message(why)) => {
            StoreError::Unavailable(format!("{shown}: {why}"))
        }
        other => StoreError::Unavailable(format!("{shown}: {other}")),
    }
}

/// `name` as a quoted SQL identifier, if it is a plain one (letters, digits, `_`; at most 63
/// bytes; not starting with a digit or `pg_`).
pub(crate) fn schema_ident(name: &str) -> Result<String, StoreError> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
        && !name.starts_with("pg_");
    if plain {
        Ok(format!("\"{name}\""))
    } else {
        Err(StoreError::InvalidRequest(format!(
            "invalid schema name {:?}: use letters, digits and _ (at most 63, not starting with a digit or pg_)",
            name.chars().take(70).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_password_or_parameters() {
        let target = parse_url(
            "postgres://alice:s3cr3t@db.example:6543/inbox?schema=tenant_a&connect_timeout=3",
        )
        .expect("valid");
        assert_eq!(
            shown(&target.config),
            "postgres://alice@db.example:6543/inbox"
        );
        assert_eq!(target.schema.as_deref(), Some("tenant_a"));
        assert!(matches!(target.tls, Tls::Plain));
        assert!(!format!("{target:?}").is_empty());
        let required = parse_url("postgresql://bob:pw@h/db?sslmode=require").expect("valid");
        assert!(matches!(required.tls, Tls::Rustls(_)));
        assert_eq!(shown(&required.config), "postgres://bob@h:5432/db");
        // A raw / in the password, and an @ in the password encoded: the host is the host.
        let slash = parse_url("postgres://alice:a/s3cr3t@db.example/inbox").expect("valid");
        assert_eq!(
            shown(&slash.config),
            "postgres://alice@db.example:5432/inbox"
        );
        // An @ in the password, encoded: the host is the host.
        let encoded = parse_url("postgres://alice:My%40s3cr3t@db.example/inbox").expect("valid");
        assert_eq!(
            shown(&encoded.config),
            "postgres://alice@db.example:5432/inbox"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for url in [
            "mysql://alice:s3cr3t@h/db",
            "postgres://alice:s3cr3t@h/db?sslmode=sometimes",
            "postgres://alice:s3cr3t@h/db?nonsense=1",
            "postgres://alice:My@s3cr3t@127.0.0.1:5432/db",
            "postgres://alice:p@s3cr3t/w0rd@127.0.0.1:5432/db",
            "postgres://alice:p#s3cr3t@w0rd@127.0.0.1:5432/db",
            "postgres://alice:p?s3cr3t@w0rd@127.0.0.1:5432/db",
        ] {
            let error = parse_url(url).expect_err(url);
            assert!(matches!(error, StoreError::InvalidRequest(_)), "{error:?}");
            assert!(!error.to_string().contains("s3cr3t"), "{error}");
        }
    }

    #[test]
    fn sslrootcert_is_read_and_needs_require() {
        let error = parse_url("postgres://alice:s3cr3t@h/db?sslrootcert=/etc/hostname")
            .expect_err("no TLS");
        assert!(error.to_string().contains("sslmode=require"), "{error}");
        let missing =
            "postgres://alice:s3cr3t@h/db?sslmode=require&sslrootcert=/nonexistent/ca.pem";
        let error = parse_url(missing).expect_err("no such file");
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
        assert!(!error.to_string().contains("s3cr3t"), "{error}");
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let url = format!(
            "postgres://h/db?sslmode=require&sslrootcert={}",
            empty.display()
        );
        let error = parse_url(&url).expect_err("no certificate in it");
        assert!(
            error.to_string().contains("no usable CA certificate"),
            "{error}"
        );
    }

    #[test]
    fn operation_timeout_is_ours_to_read() {
        let target = parse_url("postgres://alice:s3cr3t@h/db?operation_timeout=2.5&schema=s")
            .expect("valid");
        assert_eq!(target.operation_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(target.schema.as_deref(), Some("s"));
        let none = parse_url("postgres://alice:s3cr3t@h/db").expect("valid");
        assert_eq!(none.operation_timeout, None);
        for bad in [
            "0", "-1", "ten", "NaN", "inf", "1e9", "", "100000", "86400.5",
        ] {
            let url = format!("postgres://alice:s3cr3t@h/db?operation_timeout={bad}");
            let Err(StoreError::InvalidRequest(why)) = parse_url(&url) else {
                panic!("{bad}: not refused as an invalid request");
            };
            // The value is wrong, not the URL's shape; the limit is said.
            assert_eq!(
                why,
                format!(
                    "the PostgreSQL URL's operation_timeout must be a number of seconds above 0 and at most 86400 \
                     (a day), like 10 or 2.5 (got {bad:?})"
                ),
            );
        }
        let day = parse_url("postgres://h/db?operation_timeout=86400").expect("a day");
        assert_eq!(day.operation_timeout, Some(Duration::from_secs(86_400)));
        // A real shape error keeps its prefix.
        let shape = parse_url("postgres://a@b@h/db?operation_timeout=1").expect_err("two @");
        assert!(
            shape
                .to_string()
                .contains(": invalid PostgreSQL URL (expected "),
            "{shape}"
        );
    }

    #[test]
    fn schema_names_are_checked() {
        assert_eq!(schema_ident("ccai_inbox").as_deref(), Ok("\"ccai_inbox\""));
        for bad in ["", "1abc", "pg_catalog", "a\"b", "a;drop", &"x".repeat(64)] {
            assert!(schema_ident(bad).is_err(), "{bad}");
        }
    }
}

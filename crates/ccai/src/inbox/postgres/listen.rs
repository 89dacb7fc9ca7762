//! `LISTEN` on a dedicated connection: a notification from any instance's insert wakes this
//! store's waiters at once. Reconnects with backoff; waiters are also woken after each
//! (re)connect, since notifications sent while disconnected are lost. The dispatcher's polling
//! interval remains the fallback.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, NoTls, Socket};

use super::connect::Tls;

/// Listens on `channel` until the returned task is aborted.
pub(crate) fn spawn(
    config: tokio_postgres::Config,
    tls: Tls,
    channel: String,
    wake: Arc<Notify>,
    shown: Arc<str>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let result = match &tls {
                Tls::Plain => listen(&config, NoTls, &channel, &wake).await,
                Tls::Rustls(tls) => listen(&config, tls.clone(), &channel, &wake).await,
            };
            match result {
                // It was listening: start the backoff over.
                Ok(()) => backoff = Duration::from_millis(100),
                Err(error) => {
                    tracing::debug!(target: "ccai::inbox", store = %shown, %error, "LISTEN connection failed; polling until it is back");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            tokio::time::sleep(backoff).await;
        }
    })
}

/// One connection's life: `Ok` once it was listening and then ended.
async fn listen<T>(
    config: &tokio_postgres::Config,
    tls: T,
    channel: &str,
    wake: &Arc<Notify>,
) -> Result<(), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await?;
    let notified = Arc::clone(wake);
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(_)) => super::wake_all(&notified),
                Ok(_) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    });
    let quoted = format!("\"{}\"", channel.replace('"', "\"\""));
    if let Err(error) = client.batch_execute(&format!("LISTEN {quoted}")).await {
        driver.abort();
        return Err(error);
    }
    // Whatever was inserted while we were not listening is due now.
    super::wake_all(wake);
    let ended = driver.await;
    drop(client);
    match ended {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

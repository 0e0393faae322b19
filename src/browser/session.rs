//! One page's session: the WebTransport handshake and the page's proof
//! within `HANDSHAKE_TIMEOUT`, then the page's calls and datagrams until
//! it closes its control stream, the session ends or the daemon stops.

use std::sync::Arc;
use std::time::Duration;

use peerd::rpc::wire::codec::FrameType;
use peerd::rpc::{Code, Status};
use tokio::sync::Semaphore;
use web_transport_quinn::{Request, SendStream};

use super::frames::{FrameStream, frame, status_frame, write};
use super::handshake::{Accepted, Challenge};
use super::pages::Page;
use super::{Shared, datagrams, outgoing, proto};

/// From the first packet to the proof checked.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a refused page has to read why, before the daemon closes.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

/// The session's close codes (WebTransport application error codes).
const CLOSE_REFUSED: u32 = 1;
const CLOSE_REPLACED: u32 = 2;
const REPLACED: &[u8] = b"replaced by a new session of the same page";

/// How long a replaced session may take to let its datagram services go.
const RELEASE_WAIT: Duration = Duration::from_secs(1);

pub async fn run(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let started = tokio::time::timeout(HANDSHAKE_TIMEOUT, start(&shared, incoming)).await;
    let (page, control, subscriptions) = match started {
        Ok(Ok(started)) => started,
        Ok(Err(reason)) => {
            tracing::debug!("browser session refused: {reason}");
            shared.metrics.session_refused();
            return;
        }
        Err(_) => {
            tracing::debug!("browser session refused: no proof within {HANDSHAKE_TIMEOUT:?}");
            shared.metrics.session_refused();
            return;
        }
    };
    if let Some(old) = shared.pages.insert(page.clone()) {
        old.session.close(CLOSE_REPLACED, REPLACED);
    }
    shared.metrics.session_opened();
    tracing::info!(page = %page.id(), "browser agent connected");
    serve(&shared, &page, control, subscriptions).await;
    shared.pages.remove(&page);
    shared.metrics.session_closed();
    tracing::info!(page = %page.id(), "browser agent left");
}

/// The page's control stream, both halves: the session lasts as long as it.
struct Control {
    /// Kept, unused, so as not to end the stream.
    _send: SendStream,
    frames: FrameStream,
}

/// The session up to the proof checked; a refusal has been sent to the page.
async fn start(
    shared: &Shared,
    incoming: quinn::Incoming,
) -> Result<(Arc<Page>, Control, datagrams::Subscriptions), String> {
    let connection = incoming.await.map_err(|e| e.to_string())?;
    let request = Request::accept(connection)
        .await
        .map_err(|e| e.to_string())?;
    let session = request.ok().await.map_err(|e| e.to_string())?;
    let (mut send, recv) = session.accept_bi().await.map_err(|e| e.to_string())?;
    let mut control = FrameStream::new(recv, super::handshake::MAX_PROOF);
    let challenge = Challenge::new(shared.node.id(), shared.certificates.current().hash);
    let checked = async {
        write(&mut send, frame(FrameType::Message, &challenge.message())).await?;
        let proof: proto::Proof = control.message().await?;
        let accepted = challenge.check(proof)?;
        let subscriptions = subscribe_replacing(shared, &accepted).await?;
        Ok::<_, Status>((accepted, subscriptions))
    };
    let outcome = checked.await;
    let status = match &outcome {
        Ok(_) => Status::ok(),
        Err(status) => status.clone(),
    };
    let _ = write(&mut send, status_frame(&status)).await;
    let (accepted, subscriptions) = match outcome {
        Ok(accepted) => accepted,
        Err(status) => {
            // Closed at once, the session would lose the status on its way.
            let _ = send.finish();
            let _ = tokio::time::timeout(REFUSAL_LINGER, session.closed()).await;
            session.close(CLOSE_REFUSED, status.message().as_bytes());
            return Err(status.to_string());
        }
    };
    let page = Arc::new(Page {
        proof: accepted.proof,
        session,
        calls: Arc::new(Semaphore::new(shared.settings.max_calls_per_session)),
    });
    let control = Control {
        _send: send,
        frames: control,
    };
    Ok((page, control, subscriptions))
}

/// The page's datagram services. A page that connects again replaces its
/// older session, closed here, and takes over its services once that
/// session has let them go.
async fn subscribe_replacing(
    shared: &Shared,
    accepted: &Accepted,
) -> Result<datagrams::Subscriptions, Status> {
    let Some(old) = shared.pages.get(accepted.proof.agent) else {
        return datagrams::subscribe(shared, accepted);
    };
    old.session.close(CLOSE_REPLACED, REPLACED);
    let until = tokio::time::Instant::now() + RELEASE_WAIT;
    loop {
        match datagrams::subscribe(shared, accepted) {
            Err(status)
                if status.code() == Code::AlreadyExists && tokio::time::Instant::now() < until =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            subscribed => return subscribed,
        }
    }
}

/// The page's calls and datagrams until the session ends.
async fn serve(
    shared: &Arc<Shared>,
    page: &Arc<Page>,
    mut control: Control,
    subscriptions: datagrams::Subscriptions,
) {
    let cancel = shared.cancel.child_token();
    let _stop_on_return = cancel.clone().drop_guard();
    datagrams::pass_to_page(shared, page, subscriptions, cancel.clone());
    let session = &page.session;
    loop {
        tokio::select! {
            () = cancel.cancelled() => {
                session.close(Code::Unavailable as u32, b"the daemon is shutting down");
                return;
            }
            ended = control.frames.next() => {
                match ended {
                    Ok(None) => session.close(0, b"the page closed its control stream"),
                    Ok(Some(_)) => session.close(
                        Code::InvalidArgument as u32,
                        b"a frame on the control stream after the proof",
                    ),
                    Err(status) => session.close(Code::Internal as u32, status.message().as_bytes()),
                }
                return;
            }
            stream = session.accept_bi() => match stream {
                Ok((send, recv)) => {
                    let call = outgoing::forward(shared.clone(), page.clone(), send, recv);
                    let cancel = cancel.clone();
                    shared.tasks.spawn(async move {
                        tokio::select! {
                            () = cancel.cancelled() => {}
                            () = call => {}
                        }
                    });
                }
                Err(_) => return,
            },
            datagram = session.read_datagram() => match datagram {
                Ok(datagram) => datagrams::pass_from_page(shared, datagram),
                Err(_) => return,
            },
        }
    }
}

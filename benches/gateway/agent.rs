//! The agents' side: agent B's plain gRPC echo server (no peerd code, as
//! any language's stock server would be) and the tonic channels agent A
//! calls through, with the gateway's byte codec so no schema is needed.

use std::convert::Infallible;
use std::path::PathBuf;

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use peerd_daemon::gateway::RawCodec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};

pub const SERVICE: &str = "bench.Echo";
pub const METHOD: &str = "/bench.Echo/Unary";

/// Serves echo on both listeners until `stop`.
pub async fn serve(unix: UnixListener, tcp: TcpListener, mut stop: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            accepted = unix.accept() => {
                tokio::spawn(serve_connection(accepted.expect("a connection").0));
            }
            accepted = tcp.accept() => {
                let stream = accepted.expect("a connection").0;
                stream.set_nodelay(true).unwrap();
                tokio::spawn(serve_connection(stream));
            }
            _ = &mut stop => return,
        }
    }
}

async fn serve_connection<S>(stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(|request| async {
        let echo = tower::service_fn(|call: tonic::Request<Bytes>| async {
            Ok::<_, tonic::Status>(tonic::Response::new(call.into_inner()))
        });
        Ok::<_, Infallible>(
            tonic::server::Grpc::new(RawCodec)
                .unary(echo, request)
                .await,
        )
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A channel to a gRPC server on a Unix socket (the URI is not used).
pub async fn unix_channel(path: PathBuf) -> Channel {
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .expect("a channel to the socket")
}

pub async fn tcp_channel(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("an endpoint")
        .tcp_nodelay(true)
        .connect()
        .await
        .expect("a channel to the port")
}

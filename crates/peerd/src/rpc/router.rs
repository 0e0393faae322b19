//! `Handlers`: one proto service's typed method handlers, erased to
//! byte-level methods the server can run, and the `Router` that finds them
//! by their full name.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use rustc_hash::FxBuildHasher;
use tokio::sync::mpsc;

use super::io::FrameReader;
use super::raw::{RawRequests, RawResponses};
use super::status::CallError;
use super::unary::UnaryCall;
use super::wire::outgoing::OutFrames;
use super::wire::outgoing::response_frames;
use super::{CallContext, RequestStream, ResponseSink, Status};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Serves a whole unary call in one future: a trait, not a closure, so the
/// future can borrow the handler instead of holding a clone of it.
pub(crate) trait UnaryMethod: Send + Sync {
    fn serve<'a>(&'a self, call: UnaryCall<'a>) -> BoxFuture<'a, Result<(), Status>>;
}

/// Takes the request frames and a queue for response frames.
pub(crate) type StreamingFn = dyn Fn(CallContext, FrameReader, mpsc::Sender<OutFrames>) -> BoxFuture<'static, Result<(), Status>>
    + Send
    + Sync;

#[derive(Clone)]
pub(crate) enum Method {
    Unary(Arc<dyn UnaryMethod>),
    Streaming(Arc<StreamingFn>),
}

/// A unary handler between prost messages.
struct ProstUnary<Req, Resp, F> {
    handler: F,
    messages: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp, F, Fut> UnaryMethod for ProstUnary<Req, Resp, F>
where
    Req: prost::Message + Default + 'static,
    Resp: prost::Message + 'static,
    F: Fn(CallContext, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
{
    fn serve<'a>(&'a self, call: UnaryCall<'a>) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(call.answer(async |context, payload: Bytes| {
            let request = Req::decode(payload).map_err(CallError::BadRequest)?;
            let response = (self.handler)(context, request).await?;
            Ok(response_frames(&response))
        }))
    }
}

/// The handlers of one proto service, e.g. `peerd.node.v1.Node`, by method
/// name.
pub struct Handlers {
    name: String,
    methods: Vec<(String, Method)>,
}

impl Handlers {
    /// No handlers yet for the service `name`, its full proto name
    /// (`package.Service`); methods are then called as `name/Method`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            methods: Vec::new(),
        }
    }

    /// The service's full name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One request, one response.
    pub fn unary<Req, Resp, F, Fut>(mut self, method: &str, handler: F) -> Self
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: Fn(CallContext, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
    {
        let unary = ProstUnary {
            handler,
            messages: PhantomData,
        };
        self.methods
            .push((method.into(), Method::Unary(Arc::new(unary))));
        self
    }

    /// One request, a stream of responses.
    pub fn server_streaming<Req, Resp, F, Fut>(self, method: &str, handler: F) -> Self
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: Fn(CallContext, Req, ResponseSink<Resp>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.streaming(
            method,
            move |context, requests: RequestStream<Req>, sink| {
                let handler = handler.clone();
                async move { handler(context, requests.single().await?, sink).await }
            },
        )
    }

    /// A stream of requests, one response.
    pub fn client_streaming<Req, Resp, F, Fut>(self, method: &str, handler: F) -> Self
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: Fn(CallContext, RequestStream<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.streaming(
            method,
            move |context, requests, mut sink: ResponseSink<Resp>| {
                let handler = handler.clone();
                async move { sink.send(&handler(context, requests).await?).await }
            },
        )
    }

    /// Streams both ways, interleaved as the handler likes.
    pub fn bidi_streaming<Req, Resp, F, Fut>(self, method: &str, handler: F) -> Self
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: Fn(CallContext, RequestStream<Req>, ResponseSink<Resp>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        self.streaming(method, handler)
    }

    fn streaming<Req, Resp, F, Fut>(mut self, method: &str, handler: F) -> Self
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: Fn(CallContext, RequestStream<Req>, ResponseSink<Resp>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let erased = move |context, reader, frames| -> BoxFuture<'static, _> {
            let requests = RequestStream::for_requests(reader);
            Box::pin(handler(context, requests, ResponseSink::new(frames)))
        };
        self.methods
            .push((method.into(), Method::Streaming(Arc::new(erased))));
        self
    }
}

/// Finds handlers by their full name, `package.Service/Method`.
#[derive(Clone, Default)]
pub struct Router {
    /// Unkeyed hash: the names are fixed before any peer connects, and a
    /// lookup cannot change the table, so SipHash's resistance to chosen
    /// keys buys nothing here and cost ~200 instructions per call.
    methods: HashMap<Box<[u8]>, Route, FxBuildHasher>,
    /// Full method names in the order routed (a route's index is its
    /// position), the same allocations the routes hold.
    names: Vec<Arc<str>>,
    services: Vec<String>,
    /// Serves every method without a route, if set.
    fallback: Option<Method>,
    /// Serves calls for the agents this node hosts, if set.
    hosted: Option<Method>,
}

/// A routed method and its index, which names it in the call metrics.
#[derive(Clone)]
pub(crate) struct Route {
    pub index: usize,
    /// The full name, shared with every call's context.
    pub name: Arc<str>,
    pub method: Method,
}

impl Router {
    /// A router with no methods: every call is answered UNIMPLEMENTED.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every method of `handlers`.
    ///
    /// # Panics
    /// If a method of the same full name is already routed: that is a
    /// programming error, found at start-up.
    pub fn with_handlers(mut self, handlers: Handlers) -> Self {
        for (method, handler) in handlers.methods {
            let full_name: Arc<str> = format!("{}/{}", handlers.name, method).into();
            let route = Route {
                index: self.names.len(),
                name: full_name.clone(),
                method: handler,
            };
            let previous = self.methods.insert(full_name.as_bytes().into(), route);
            assert!(previous.is_none(), "method {full_name} is registered twice");
            self.names.push(full_name);
        }
        if !self.services.contains(&handlers.name) {
            self.services.push(handlers.name);
        }
        self
    }

    /// Serves every method that has no route (instead of UNIMPLEMENTED),
    /// with its messages as bytes: a gateway forwards calls this way
    /// without the methods' schemas. Its context names the method called;
    /// it may answer UNIMPLEMENTED itself.
    pub fn with_fallback<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(CallContext, RawRequests, RawResponses) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        self.fallback = Some(raw_method(handler));
        self
    }

    /// Serves every call whose header names, in `peerd-callee`, an agent
    /// this node hosts (docs/protocol.md §11), whatever its method: the
    /// handler forwards it to the agent, or answers NOT_FOUND for an agent
    /// it does not host. Without one, such calls are answered NOT_FOUND.
    pub fn with_hosted<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(CallContext, RawRequests, RawResponses) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        self.hosted = Some(raw_method(handler));
        self
    }

    pub(crate) fn fallback(&self) -> Option<&Method> {
        self.fallback.as_ref()
    }

    pub(crate) fn hosted(&self) -> Option<&Method> {
        self.hosted.as_ref()
    }

    /// Names of the services routed, in the order they were added.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// Full names of the methods routed, in the order they were added.
    pub fn method_names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// Found by the name's bytes as received: names are UTF-8, so only a
    /// routed name's bytes can match.
    pub(crate) fn route(&self, full_name: &[u8]) -> Option<&Route> {
        self.methods.get(full_name)
    }
}

/// A handler of raw messages as a streaming method.
fn raw_method<F, Fut>(handler: F) -> Method
where
    F: Fn(CallContext, RawRequests, RawResponses) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let erased = move |context, reader, frames| -> BoxFuture<'static, _> {
        Box::pin(handler(
            context,
            RawRequests::new(reader),
            RawResponses::new(frames),
        ))
    };
    Method::Streaming(Arc::new(erased))
}

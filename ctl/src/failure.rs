//! How a failed command reads: the server's status with its code and the cause beneath it
//! (an untrusted certificate, a refused connection), and a hint when the fix is tribctl's.

use tonic::{Code, Status};

/// What tribctl knew about its own links when the command failed.
pub struct Context {
    /// Every server named is reached over TLS (a CA given, no `http://` address).
    pub tls: bool,
    /// A client certificate is shown.
    pub cert: bool,
    /// A client certificate or a token is shown.
    pub credentials: bool,
}

/// The lines to print for `e`, and the exit code.
pub fn report(e: &anyhow::Error, ctx: &Context) -> (String, i32) {
    if e.downcast_ref::<crate::policy_cmds::Denied>().is_some() {
        // `policy check` printed its answer; "no" is the exit code.
        return (String::new(), 1);
    }
    let Some(s) = e.downcast_ref::<Status>() else {
        return (format!("error: {e:#}"), 1);
    };
    let mut out = format!(
        "error: {} ({})",
        tributary_common::grpc::describe(s),
        code_name(s.code())
    );
    if let Some(h) = hint(s, ctx) {
        out.push_str("\nhint: ");
        out.push_str(h);
    }
    (out, 1)
}

fn hint(s: &Status, ctx: &Context) -> Option<&'static str> {
    let text = tributary_common::grpc::describe(s);
    let transport = matches!(
        s.code(),
        Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
    ) && (text.contains("transport") || text.contains("connection"));
    match s.code() {
        Code::Unauthenticated if !ctx.credentials => Some(
            "give a client certificate (--cert/--key with --ca, or TRIBUTARY_CERT/TRIBUTARY_KEY) \
             or a token (--token-file, TRIBUTARY_TOKEN)",
        ),
        Code::PermissionDenied => {
            Some("`tribctl auth whoami` shows the subjects the server took you for")
        }
        _ if transport && text.contains("invalid peer certificate") => Some(
            "the server's certificate does not check against --ca: is that this cluster's CA, \
             and is the server's certificate valid for the address used?",
        ),
        _ if transport && !ctx.tls => Some(
            "if the servers speak TLS (they do unless started insecure), give the cluster CA \
             with --ca (or TRIBUTARY_CA), and no http:// in --server",
        ),
        _ if transport && ctx.cert => Some(
            "a server that refuses a client certificate closes the connection: is --cert signed \
             by this cluster's CA?",
        ),
        _ => None,
    }
}

/// gRPC's own spelling of a code (`UNAUTHENTICATED`), as its documentation and other
/// clients print it.
fn code_name(c: Code) -> &'static str {
    match c {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

//! How a failed command reads: the server's status with its code and the cause beneath it
//! (an untrusted certificate, a refused connection), and a hint when the fix is tribctl's.

use tonic::{Code, Status};

/// What tribctl knew about its own links when the command failed.
pub struct Context {
    pub tls: bool,
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
    match s.code() {
        Code::Unauthenticated if !ctx.credentials => Some(
            "give a client certificate (--cert/--key with --ca, or TRIBUTARY_CERT/TRIBUTARY_KEY) \
             or a token (--token-file, TRIBUTARY_TOKEN)",
        ),
        Code::PermissionDenied => {
            Some("`tribctl auth whoami` shows the subjects the server took you for")
        }
        Code::Unavailable | Code::Unknown | Code::Internal if !ctx.tls => Some(
            "if the servers speak TLS (they do unless started insecure), give the cluster CA \
             with --ca (or TRIBUTARY_CA) or name them https://HOST:PORT",
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

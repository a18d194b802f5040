//! How a transport error from the Kubernetes client is worded: which errors mean the connection
//! was cut in the middle of an exchange (never a certificate problem), and the client's
//! internal wrappers ("client error (SendRequest)") taken off so the cause is the message.
//! Used by `cluster::classify`.

/// Lower-case fragments of transport errors that mean the connection went away in the middle
/// of an exchange (hyper, rustls and the OS word it differently).
const DROPPED: &[&str] = &[
    "connection closed before message completed",
    "incomplete message",
    "end of file before message length reached",
    "unexpected eof",
    "unexpected end of file",
    "close_notify",
    "connection reset",
    "broken pipe",
    "error reading a body from connection",
];

/// An error chain without the wrappers that name only the client's internal step
/// ("client error (SendRequest): ", "ServiceError: ", "HyperError: "): the cause that follows
/// is the message.
pub(super) fn without_wrappers(detail: &str) -> String {
    let mut rest = detail;
    loop {
        let before = rest;
        for wrapper in [
            "ServiceError: ",
            "HyperError: ",
            "client error (SendRequest): ",
            "client error (Connect): ",
        ] {
            rest = rest.strip_prefix(wrapper).unwrap_or(rest);
        }
        if rest == before {
            break;
        }
    }
    let rest = rest.replace(": client error (SendRequest)", "");
    match rest.trim() {
        "" | "client error (SendRequest)" => {
            "the request could not be sent (no further detail)".to_string()
        }
        r => r.to_string(),
    }
}

/// Whether a lower-cased error chain says the connection went away mid-exchange.
pub(super) fn is_dropped(lower: &str) -> bool {
    DROPPED.iter().any(|d| lower.contains(d))
}

#[cfg(test)]
mod tests {
    use super::super::ClusterError;
    use super::*;
    use std::error::Error as StdError;

    #[test]
    fn a_dropped_connection_is_not_a_tls_problem_and_wrappers_go() {
        #[derive(Debug)]
        struct Chain(&'static str, Option<Box<Chain>>);
        impl std::fmt::Display for Chain {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl StdError for Chain {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                self.1.as_deref().map(|c| c as &(dyn StdError + 'static))
            }
        }
        let cut = Chain(
            "client error (SendRequest)",
            Some(Box::new(Chain(
                "connection closed before message completed",
                None,
            ))),
        );
        let e = super::super::transport(&cut);
        assert!(matches!(e, ClusterError::Dropped { .. }), "{e:?}");
        let text = e.to_string();
        assert!(!text.contains("certificate-authority"), "{text}");
        assert!(!text.contains("SendRequest"), "{text}");
        assert!(
            text.contains("closed the connection before its answer was complete (connection closed before message completed)"),
            "{text}"
        );
        let tls_eof = Chain(
            "peer closed connection without sending TLS close_notify: https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof",
            None,
        );
        assert!(matches!(
            super::super::transport(&tls_eof),
            ClusterError::Dropped { .. }
        ));
        // The control: a real certificate problem stays one.
        let bad_ca = Chain(
            "client error (Connect)",
            Some(Box::new(Chain(
                "invalid peer certificate: UnknownIssuer",
                None,
            ))),
        );
        let e = super::super::transport(&bad_ca);
        assert!(matches!(e, ClusterError::Tls { .. }), "{e:?}");
        assert!(!e.to_string().contains("(Connect)"), "{e}");
        // A bare wrapper never stands alone.
        assert_eq!(
            without_wrappers("client error (SendRequest)"),
            "the request could not be sent (no further detail)"
        );
    }
}

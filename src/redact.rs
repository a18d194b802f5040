//! Keeps secrets out of everything oomgate prints or writes: credentials embedded in URLs and
//! the values of sensitive headers. Every user-supplied URL or header passes through here
//! before it reaches a log line, an error or a report.

/// `https://user:secret@host/x` → `https://***@host/x`; URLs without credentials unchanged.
pub fn url(u: &str) -> String {
    if let Some((scheme, rest)) = u.split_once("://") {
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    u.to_string()
}

/// `text` with every occurrence of `secret` (a token read from the environment) replaced by `***`,
/// for messages that may echo what a server was sent. Secrets shorter than 4 characters are left
/// alone: replacing them would garble the message without hiding anything.
pub fn scrub(text: &str, secret: &str) -> String {
    if secret.len() < 4 {
        return text.to_string();
    }
    text.replace(secret, "***")
}

/// Header names whose values are never shown.
pub fn is_sensitive_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "proxy-authorization"
        || n == "cookie"
        || n == "set-cookie"
        || n.contains("token")
        || n.contains("secret")
        || n.contains("api-key")
        || n.contains("apikey")
        || n.contains("password")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_credentials() {
        assert_eq!(
            url("https://u:p@h.example/x?a=b"),
            "https://***@h.example/x?a=b"
        );
        assert_eq!(url("http://127.0.0.1:8080/x"), "http://127.0.0.1:8080/x");
        assert_eq!(url("http://h/x?next=a@b"), "http://h/x?next=a@b");
        assert!(is_sensitive_header("Authorization"));
        assert!(is_sensitive_header("X-Api-Key"));
        assert!(!is_sensitive_header("Content-Type"));
        assert_eq!(
            scrub("401 for token glpat-123 here", "glpat-123"),
            "401 for token *** here"
        );
    }
}

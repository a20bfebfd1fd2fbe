//! OAuth clients (RFC 6749 §2).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use rusqlite::{params, OptionalExtension};
use url::{Host, Url};

use super::{validate_name, Store, StoreError};
use crate::{Clearance, ScopeSet};

/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 16;
/// Longest redirect URI, in bytes.
pub const MAX_REDIRECT_URI_LEN: usize = 2048;
/// Largest JWKS a `private_key_jwt` client may register, in bytes.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Checks a redirect URI for registration:
/// - absolute, at most [`MAX_REDIRECT_URI_LEN`] bytes, no spaces or control
///   characters, no fragment (RFC 6749 §3.1.2), no user name or password;
/// - `https` with a host; or `http` only on the loopback interface
///   (`127.0.0.1`, `[::1]`, `localhost`; RFC 8252 §7.3, any port);
/// - or a private-use scheme for native apps containing a dot, i.e. a
///   reverse domain name like `org.example.app:/callback` (RFC 8252 §7.1).
pub fn validate_redirect_uri(uri: &str) -> Result<(), StoreError> {
    let bad = |why| StoreError::BadRedirectUri { uri: uri.chars().take(MAX_REDIRECT_URI_LEN).collect(), why };
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(bad("too long"));
    }
    // The URL parser silently drops tabs and newlines; refuse them instead,
    // since redirect URIs are compared as exact strings.
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("contains spaces or control characters"));
    }
    if uri.contains('#') {
        return Err(bad("must not contain a fragment (RFC 6749 §3.1.2)"));
    }
    let url = Url::parse(uri).map_err(|_| bad("not an absolute URI"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain a user name or password"));
    }
    match url.scheme() {
        "https" => match url.host() {
            Some(Host::Domain(d)) if !d.is_empty() => Ok(()),
            Some(Host::Ipv4(_) | Host::Ipv6(_)) => Ok(()),
            _ => Err(bad("https URI without a host")),
        },
        "http" => match url.host() {
            Some(Host::Ipv4(ip)) if ip == Ipv4Addr::LOCALHOST => Ok(()),
            Some(Host::Ipv6(ip)) if ip == Ipv6Addr::LOCALHOST => Ok(()),
            Some(Host::Domain("localhost")) => Ok(()),
            _ => Err(bad("http is allowed only for loopback (127.0.0.1, [::1], localhost; RFC 8252 §7.3)")),
        },
        s if s.contains('.') => Ok(()),
        _ => Err(bad("scheme must be https, loopback http, or a reverse-DNS private-use scheme (RFC 8252 §7.1)")),
    }
}

/// A client to register.
#[derive(Clone)]
pub struct NewClient {
    /// The `client_id` ([`validate_name`]).
    pub id: String,
    /// Exact redirect URIs ([`validate_redirect_uri`]).
    pub redirect_uris: Vec<String>,
    /// argon2id PHC string of the client secret (confidential clients,
    /// `client_secret_basic` / `client_secret_post`).
    pub secret_hash: Option<String>,
    /// JWKS with the client's public keys (`private_key_jwt`, RFC 7523).
    pub jwks: Option<String>,
    /// The most the client's tokens may carry.
    pub scopes: ScopeSet,
    /// Cap on the clearance of client-credentials tokens.
    pub clearance: Clearance,
}

impl fmt::Debug for NewClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_client(
            f,
            "NewClient",
            &self.id,
            &self.redirect_uris,
            &self.secret_hash,
            &self.jwks,
            &self.scopes,
            self.clearance,
        )
    }
}

/// A registered client. `Debug` does not show the secret hash.
#[derive(Clone)]
pub struct Client {
    /// The `client_id`.
    pub id: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// argon2id PHC string of the client secret.
    pub secret_hash: Option<String>,
    /// JWKS for `private_key_jwt`.
    pub jwks: Option<String>,
    /// The most the client's tokens may carry.
    pub scopes: ScopeSet,
    /// Cap on the clearance of client-credentials tokens.
    pub clearance: Clearance,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_client(
            f,
            "Client",
            &self.id,
            &self.redirect_uris,
            &self.secret_hash,
            &self.jwks,
            &self.scopes,
            self.clearance,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn debug_client(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    id: &str,
    redirect_uris: &[String],
    secret_hash: &Option<String>,
    jwks: &Option<String>,
    scopes: &ScopeSet,
    clearance: Clearance,
) -> fmt::Result {
    f.debug_struct(name)
        .field("id", &id)
        .field("redirect_uris", &redirect_uris)
        .field("secret_hash", &secret_hash.as_ref().map(|_| "<redacted>"))
        .field("jwks", &jwks.as_ref().map(|j| format!("<{} bytes>", j.len())))
        .field("scopes", scopes)
        .field("clearance", &clearance)
        .finish()
}

impl Client {
    /// Whether the client authenticates (secret or private key JWT);
    /// public clients rely on PKCE alone (RFC 6749 §2.1).
    pub fn confidential(&self) -> bool {
        self.secret_hash.is_some() || self.jwks.is_some()
    }

    /// How the client authenticates at the token endpoint (RFC 7591 §2 names).
    pub fn auth_method(&self) -> &'static str {
        auth_method(self.secret_hash.is_some(), self.jwks.is_some())
    }
}

fn auth_method(secret: bool, jwks: bool) -> &'static str {
    match (secret, jwks) {
        (true, _) => "client_secret_basic",
        (false, true) => "private_key_jwt",
        (false, false) => "none",
    }
}

/// What `seqshield client list` shows: no secrets, no keys.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ClientInfo {
    /// The `client_id`.
    pub id: String,
    /// `none` (public), `client_secret_basic` or `private_key_jwt`.
    pub auth_method: &'static str,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// The most the client's tokens may carry.
    pub scopes: ScopeSet,
    /// Cap on the clearance of client-credentials tokens.
    pub clearance: Clearance,
}

impl Store {
    /// Registers a client after checking it: id, redirect URIs, at most one
    /// authentication method, and at least one redirect URI for a public
    /// client (which can only use the code flow). [`StoreError::Exists`] if
    /// the id is taken.
    pub fn add_client(&self, c: &NewClient) -> Result<(), StoreError> {
        validate_name(&c.id)?;
        if c.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(StoreError::InvalidClient("too many redirect URIs"));
        }
        for uri in &c.redirect_uris {
            validate_redirect_uri(uri)?;
        }
        if c.secret_hash.is_some() && c.jwks.is_some() {
            return Err(StoreError::InvalidClient("a client has a secret or a JWKS, not both"));
        }
        if c.secret_hash.is_none() && c.jwks.is_none() && c.redirect_uris.is_empty() {
            return Err(StoreError::InvalidClient("a public client needs at least one redirect URI"));
        }
        if c.jwks.as_ref().is_some_and(|j| j.len() > MAX_JWKS_BYTES) {
            return Err(StoreError::InvalidClient("JWKS is too large"));
        }
        let uris = serde_json::to_string(&c.redirect_uris).expect("strings always serialise");
        let n = self
            .conn()
            .execute(
                "INSERT INTO clients (id, redirect_uris, secret_hash, jwks, scopes, clearance)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
                params![c.id, uris, c.secret_hash, c.jwks, c.scopes.to_string(), c.clearance.as_str()],
            )
            .map_err(self.sql())?;
        if n == 0 {
            return Err(StoreError::Exists);
        }
        Ok(())
    }

    /// The client with `id`, if any.
    pub fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        let row = self
            .conn()
            .query_row(
                "SELECT id, redirect_uris, secret_hash, jwks, scopes, clearance FROM clients WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                },
            )
            .optional()
            .map_err(self.sql())?;
        let Some((id, uris, secret_hash, jwks, scopes, clearance)) = row else { return Ok(None) };
        Ok(Some(Client {
            id,
            redirect_uris: serde_json::from_str(&uris).map_err(|_| self.corrupt("redirect URI list"))?,
            secret_hash,
            jwks,
            scopes: ScopeSet::parse(&scopes).map_err(|_| self.corrupt("scope set"))?,
            clearance: clearance.parse().map_err(|_| self.corrupt("clearance"))?,
        }))
    }

    /// All clients, by id, without secrets or keys.
    pub fn list_clients(&self) -> Result<Vec<ClientInfo>, StoreError> {
        let ids: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT id FROM clients ORDER BY id").map_err(self.sql())?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(self.sql())?;
            rows.collect::<Result<_, _>>().map_err(self.sql())?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(c) = self.client(&id)? {
                out.push(ClientInfo {
                    auth_method: c.auth_method(),
                    id: c.id,
                    redirect_uris: c.redirect_uris,
                    scopes: c.scopes,
                    clearance: c.clearance,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::store;
    use super::*;

    fn public(id: &str) -> NewClient {
        NewClient {
            id: id.into(),
            redirect_uris: vec!["https://portal.example.org/cb".into(), "http://127.0.0.1/cb".into()],
            secret_hash: None,
            jwks: None,
            scopes: ScopeSet::parse("openid data:read").unwrap(),
            clearance: Clearance::Internal,
        }
    }

    #[test]
    fn redirect_uris() {
        for ok in [
            "https://portal.example.org/callback",
            "https://portal.example.org:8443/cb?x=1",
            "https://192.0.2.10/cb",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:53412/cb",
            "http://[::1]:8080/cb",
            "http://localhost:9000/oauth",
            "org.example.genomics:/oauth2redirect",
            "com.example.app:callback",
        ] {
            assert!(validate_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/relative/cb",
            "portal.example.org/cb",
            "https://portal.example.org/cb#frag",
            "https://portal.example.org/cb#",
            "http://portal.example.org/cb",
            "http://127.0.0.2/cb",
            "http://localhost.evil.example/cb",
            "http://[::2]/cb",
            "https://user:pw@portal.example.org/cb",
            "https://portal.example.org/c b",
            "https://portal.example.org/c\tb",
            "myapp:/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            &format!("https://e.example/{}", "a".repeat(MAX_REDIRECT_URI_LEN)),
        ] {
            assert!(matches!(validate_redirect_uri(bad), Err(StoreError::BadRedirectUri { .. })), "{bad:?}");
        }
    }

    #[test]
    fn add_and_read_back() {
        let (_d, s) = store();
        s.add_client(&public("portal")).unwrap();
        let c = s.client("portal").unwrap().unwrap();
        assert!(!c.confidential());
        assert_eq!(c.redirect_uris, public("portal").redirect_uris);
        assert_eq!(c.auth_method(), "none");
        let conf = NewClient {
            redirect_uris: vec![],
            secret_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            ..public("pipeline")
        };
        s.add_client(&conf).unwrap();
        let c = s.client("pipeline").unwrap().unwrap();
        assert!(c.confidential());
        assert!(!format!("{c:?}").contains("argon2id"));
        assert!(matches!(s.add_client(&public("portal")), Err(StoreError::Exists)));
        assert!(s.client("nobody").unwrap().is_none());
        let list = s.list_clients().unwrap();
        assert_eq!(list.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["pipeline", "portal"]);
        assert_eq!(list[0].auth_method, "client_secret_basic");
    }

    #[test]
    fn impossible_clients_are_refused() {
        let (_d, s) = store();
        let no_uri = NewClient { redirect_uris: vec![], ..public("p") };
        assert!(matches!(s.add_client(&no_uri), Err(StoreError::InvalidClient(_))));
        let both =
            NewClient { secret_hash: Some("$argon2id$x".into()), jwks: Some("{\"keys\":[]}".into()), ..public("p") };
        assert!(matches!(s.add_client(&both), Err(StoreError::InvalidClient(_))));
        let bad_uri = NewClient { redirect_uris: vec!["http://example.org/cb".into()], ..public("p") };
        assert!(matches!(s.add_client(&bad_uri), Err(StoreError::BadRedirectUri { .. })));
        assert!(s.list_clients().unwrap().is_empty(), "nothing written");
    }
}

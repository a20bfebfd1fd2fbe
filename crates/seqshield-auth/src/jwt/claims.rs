//! The claims of the tokens we issue: access tokens (RFC 9068) and OpenID
//! Connect ID tokens (OIDC Core §2).

use serde::{Deserialize, Serialize};

use crate::{Clearance, ScopeSet};

/// Claims of an access token (RFC 9068 §2.2), plus seqshield's `clearance`
/// and the RFC 8693 §4.1 `act` chain of a token obtained by exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: our own URL.
    pub iss: String,
    /// Subject: the user (or, for client credentials, the client).
    pub sub: String,
    /// Audience: the one resource server the token is for.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Not before, seconds since the epoch.
    pub nbf: u64,
    /// Unique token id, for revocation.
    pub jti: String,
    /// Granted scopes (space-separated on the wire).
    pub scope: ScopeSet,
    /// Authentication methods used (RFC 8176), e.g. `pwd`, `otp`, `mfa`.
    pub amr: Vec<String>,
    /// Authentication context class reached.
    pub acr: String,
    /// The most sensitive data classification the holder may read.
    pub clearance: Clearance,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// The acting party, for a token obtained by delegation (RFC 8693 §4.1).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<Actor>,
    /// seqshield: the one task a worker's token is bound to. Present only
    /// on tokens minted by exchanging a signed task manifest; the data
    /// routes then allow nothing outside it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tsk: Option<TaskBinding>,
}

/// What a worker's token may touch: one task's inputs (read) and outputs
/// (written once, by name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskBinding {
    /// The task id.
    pub id: String,
    /// Object ids the worker may read.
    pub read: Vec<String>,
    /// Object names the worker may create (and upload, and commit).
    pub write: Vec<String>,
}

/// An acting party (RFC 8693 §4.1): who is acting on behalf of the subject,
/// nested for a chain of delegations (the outermost is the current actor).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The actor's subject.
    pub sub: String,
    /// The client the actor used, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_id: Option<String>,
    /// The prior actor in the chain, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// Number of actors in the chain, this one included.
    pub fn depth(&self) -> usize {
        let mut n = 1;
        let mut cur = self;
        while let Some(next) = &cur.act {
            n += 1;
            cur = next;
        }
        n
    }
}

/// Claims of an OpenID Connect ID token (OIDC Core §2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    /// Issuer: our own URL.
    pub iss: String,
    /// Subject: the user.
    pub sub: String,
    /// Audience: the client id of the relying party.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Not before, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nbf: Option<u64>,
    /// When the user authenticated, seconds since the epoch.
    pub auth_time: u64,
    /// The nonce from the authentication request; left out when the request
    /// had none (OIDC Core §2).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub nonce: String,
    /// Authentication methods used (RFC 8176).
    pub amr: Vec<String>,
    /// Authentication context class reached.
    pub acr: String,
    /// Unique token id.
    pub jti: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> AccessClaims {
        AccessClaims {
            iss: "https://auth.example".into(),
            sub: "alice".into(),
            aud: "gateway".into(),
            exp: 1_700_000_600,
            iat: 1_700_000_000,
            nbf: 1_700_000_000,
            jti: "j1".into(),
            scope: ScopeSet::parse("read write").unwrap(),
            amr: vec!["pwd".into(), "otp".into()],
            acr: "mfa".into(),
            clearance: Clearance::Restricted,
            client_id: "cli".into(),
            act: None,
            tsk: None,
        }
    }

    #[test]
    fn access_claims_round_trip_and_omit_absent_act() {
        let c = access();
        let json = serde_json::to_value(&c).unwrap();
        assert!(json.get("act").is_none());
        assert_eq!(json["scope"], "read write");
        assert_eq!(json["clearance"], "restricted");
        let back: AccessClaims = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn actor_chain_nests_per_rfc8693() {
        let mut c = access();
        c.act = Some(Actor {
            sub: "svc-a".into(),
            client_id: Some("a".into()),
            act: Some(Box::new(Actor { sub: "svc-b".into(), client_id: None, act: None })),
        });
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["act"]["act"]["sub"], "svc-b");
        assert!(json["act"]["act"].get("client_id").is_none());
        assert_eq!(c.act.as_ref().unwrap().depth(), 2);
        assert_eq!(serde_json::from_value::<AccessClaims>(json).unwrap(), c);
    }

    #[test]
    fn id_claims_omit_empty_nonce() {
        let c = IdClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "c".into(),
            exp: 2,
            iat: 1,
            nbf: None,
            auth_time: 1,
            nonce: String::new(),
            amr: vec![],
            acr: "pwd".into(),
            jti: "j".into(),
        };
        let json = serde_json::to_value(&c).unwrap();
        assert!(json.get("nonce").is_none() && json.get("nbf").is_none());
        assert_eq!(serde_json::from_value::<IdClaims>(json).unwrap(), c);
    }
}

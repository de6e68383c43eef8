//! API tokens: an operator token for every hospital and one token per hospital, kept as
//! sha256 digests so that a leaked config file does not leak a token.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// What a token may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every hospital.
    Operator,
    /// One hospital.
    Hospital(String),
}

impl Scope {
    /// The hospital a scope is limited to, or `None` for the operator.
    pub fn hospital(&self) -> Option<&str> {
        match self {
            Scope::Operator => None,
            Scope::Hospital(id) => Some(id),
        }
    }
}

/// Known token digests.
#[derive(Debug, Default, Clone)]
pub struct TokenStore {
    operator: Vec<String>,
    hospitals: BTreeMap<String, String>,
}

/// Lowercase hex sha256 of a token.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl TokenStore {
    /// Adds an operator token by digest.
    pub fn add_operator_digest(&mut self, digest: String) {
        self.operator.push(digest);
    }

    /// Adds a hospital token by digest.
    pub fn add_hospital_digest(&mut self, digest: String, hospital: String) {
        self.hospitals.insert(digest, hospital);
    }

    /// Creates a random operator token, stores its digest and returns the token.
    pub fn issue_operator_token(&mut self) -> String {
        let bytes: [u8; 24] = rand::random();
        let token = hex::encode(bytes);
        self.operator.push(digest(&token));
        token
    }

    /// The scope of a presented token, if it is known.
    pub fn scope_of(&self, token: &str) -> Option<Scope> {
        let presented = digest(token);
        if self.operator.contains(&presented) {
            return Some(Scope::Operator);
        }
        self.hospitals
            .get(&presented)
            .map(|hospital| Scope::Hospital(hospital.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hospital_token_scopes_to_its_hospital() {
        let mut store = TokenStore::default();
        store.add_hospital_digest(digest("secret-a"), "a".into());
        assert_eq!(
            store.scope_of("secret-a"),
            Some(Scope::Hospital("a".into()))
        );
        assert_eq!(store.scope_of("secret-b"), None);
    }

    #[test]
    fn issued_operator_token_is_accepted() {
        let mut store = TokenStore::default();
        let token = store.issue_operator_token();
        assert_eq!(token.len(), 48);
        assert_eq!(store.scope_of(&token), Some(Scope::Operator));
        assert_eq!(store.scope_of(""), None);
    }
}

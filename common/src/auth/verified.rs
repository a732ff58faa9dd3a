//! Bearer tokens already verified, so a client sending the same token on every call pays for
//! the signature check once (as Envoy's `jwt_authn` caches verified tokens). An entry serves
//! only while its token is unexpired and the key set it was checked against is still its
//! provider's current, fresh one: a JWKS refetch (a rotation, a withdrawn key) or keys older
//! than their max age send the token through the whole check again. Only tokens that passed
//! every check are kept, so junk cannot fill it.

use super::jwks::KeyCache;
use super::principal::Principal;
use std::sync::Arc;

/// How many verified tokens a process keeps (least recently used go first).
const CAPACITY: usize = 4096;

pub(super) struct VerifiedTokens {
    cache: quick_cache::sync::Cache<String, Arc<Verified>>,
}

struct Verified {
    principal: Principal,
    keys: Arc<KeyCache>,
    /// The key set's generation the token was checked against.
    generation: u64,
    /// Unix seconds from which the token is expired (its `exp` plus the provider's leeway).
    expires_at: u64,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        VerifiedTokens {
            cache: quick_cache::sync::Cache::new(CAPACITY),
        }
    }
}

impl VerifiedTokens {
    /// Who `token` was found to be, when that still holds.
    pub fn get(&self, token: &str) -> Option<Principal> {
        let v = self.cache.get(token)?;
        let now = u64::try_from(crate::time::now_ns() / 1_000_000_000).unwrap_or(0);
        if v.keys.fresh_generation() == Some(v.generation) && now < v.expires_at {
            return Some(v.principal.clone());
        }
        self.cache.remove(token);
        None
    }

    /// Keeps `principal` for `token`, verified with `keys` at `generation`, until
    /// `expires_at`; nothing when the keys changed meanwhile.
    pub fn insert(
        &self,
        token: &str,
        principal: &Principal,
        keys: &Arc<KeyCache>,
        generation: u64,
        expires_at: u64,
    ) {
        if keys.fresh_generation() != Some(generation) {
            return;
        }
        let v = Verified {
            principal: principal.clone(),
            keys: keys.clone(),
            generation,
            expires_at,
        };
        self.cache.insert(token.to_string(), Arc::new(v));
    }
}

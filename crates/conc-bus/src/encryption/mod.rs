//! Sealed job payloads (feature `encryption`): a [`Keyring`] seals the
//! payload of jobs marked [`encrypted`](crate::JobOptions::encrypted) when
//! they are pushed, and opens it on the worker before the handler runs.
//!
//! # The cipher
//!
//! XChaCha20-Poly1305, from `RustCrypto`'s `chacha20poly1305` crate: an AEAD
//! (encryption and authentication in one) with 256-bit keys and **24-byte
//! nonces**. Nonces that long can be drawn at random for every job without
//! keeping a counter anywhere, at any volume, under one key (the chance of
//! two equal nonces stays negligible far past 2^64 messages), which is what
//! a queue written by many processes on many machines needs. AES-GCM's
//! 12-byte nonces would make random nonces risky after about 2^32 jobs under
//! one key. It is fast in software everywhere, with no AES-NI needed. The
//! cipher keeps its key in memory that is zeroized when the keyring drops.
//!
//! # What is sealed, and what is not
//!
//! Only the payload. The queue, priority, attempts, backoff, timeout,
//! workflow state (batch, chain, unique key) and the error history stay
//! readable, so operations (sizes, retries, the failed store, the dashboard)
//! work without the key. The sealed payload is authenticated together with
//! the job's id, name and payload version and the key's id (the associated
//! data), so a ciphertext copied into another job does not open.
//!
//! The stored payload is `base64(nonce ‖ ciphertext ‖ tag)`, and the envelope
//! names the key in `key_id`.
//!
//! # Rotation
//!
//! A keyring has one key that seals and any number that only open. To rotate
//! without draining queues: give every worker the new key as an opening key
//! first, then make it the sealing key of the pushers (old jobs still open
//! with the old key), then drop the old key once no job sealed with it is left
//! (the failed store included).
//!
//! # Examples
//!
//! ```
//! use conc_bus::encryption::Keyring;
//!
//! let keyring = Keyring::builder()
//!     .seal_with("2026-12", [7; 32])
//!     .open_with("2026-06", [3; 32])
//!     .build()?;
//! assert_eq!(keyring.sealing_key_id(), "2026-12");
//! assert!(keyring.can_open("2026-06"));
//! # Ok::<(), conc_core::config::ConfigError>(())
//! ```

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use conc_core::config::ConfigError;

use crate::job::{DecodeError, Envelope};

/// The longest key id, in bytes.
pub const MAX_KEY_ID: usize = 64;

/// Nonce length of XChaCha20-Poly1305.
const NONCE: usize = 24;

/// The keys that seal and open job payloads: one sealing key and any number
/// of keys that only open (for rotation). Keys are 32 random bytes each,
/// named by an id that travels with every sealed job. Key material is
/// zeroized when the keyring drops (and the builder's copies when the
/// builder drops); the arrays you pass in are yours to wipe.
///
/// # Examples
///
/// ```
/// use conc_bus::encryption::Keyring;
///
/// let keyring = Keyring::new("k1", [9; 32])?;
/// assert_eq!(keyring.sealing_key_id(), "k1");
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
pub struct Keyring {
    sealing: String,
    ciphers: HashMap<String, XChaCha20Poly1305>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.ciphers.keys().collect();
        ids.sort();
        f.debug_struct("Keyring").field("sealing", &self.sealing).field("keys", &ids).finish()
    }
}

/// A builder of a [`Keyring`].
///
/// # Examples
///
/// ```
/// use conc_bus::encryption::Keyring;
///
/// // No sealing key: refused by `build`.
/// assert!(Keyring::builder().open_with("old", [1; 32]).build().is_err());
/// ```
#[must_use]
pub struct KeyringBuilder {
    sealing: Option<(String, [u8; 32])>,
    opening: Vec<(String, [u8; 32])>,
}

impl fmt::Debug for KeyringBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringBuilder")
            .field("sealing", &self.sealing.as_ref().map(|(id, _)| id))
            .field("opening", &self.opening.iter().map(|(id, _)| id).collect::<Vec<_>>())
            .finish()
    }
}

impl KeyringBuilder {
    /// The key that seals new jobs (and opens them), named `id`. Required.
    pub fn seal_with(mut self, id: impl Into<String>, key: [u8; 32]) -> Self {
        self.sealing = Some((id.into(), key));
        self
    }

    /// A key that only opens jobs sealed with it earlier, named `id`. None by
    /// default.
    pub fn open_with(mut self, id: impl Into<String>, key: [u8; 32]) -> Self {
        self.opening.push((id.into(), key));
        self
    }

    /// The keyring.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when there is no sealing key, a key
    /// id is empty, longer than [`MAX_KEY_ID`] bytes or has control
    /// characters, or two keys share an id.
    pub fn build(self) -> Result<Keyring, ConfigError> {
        let Some((sealing, _)) = &self.sealing else {
            return Err(ConfigError::new("seal_with", "none", "must name the key that seals jobs"));
        };
        let sealing = sealing.clone();
        let mut ciphers = HashMap::new();
        let keys = self.sealing.iter().map(|key| ("seal_with", key));
        for (field, (id, key)) in keys.chain(self.opening.iter().map(|key| ("open_with", key))) {
            check_id(field, id)?;
            if ciphers.contains_key(id) {
                return Err(ConfigError::new(field, id, "must be a key id used once"));
            }
            ciphers.insert(id.clone(), XChaCha20Poly1305::new(Key::from_slice(key)));
        }
        // The builder's copies of the keys are wiped when it drops, here.
        Ok(Keyring { sealing, ciphers })
    }
}

impl Drop for KeyringBuilder {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        if let Some((_, key)) = &mut self.sealing {
            key.zeroize();
        }
        for (_, key) in &mut self.opening {
            key.zeroize();
        }
    }
}

fn check_id(field: &'static str, id: &str) -> Result<(), ConfigError> {
    if id.is_empty() || id.len() > MAX_KEY_ID || id.chars().any(char::is_control) {
        return Err(ConfigError::new(
            field,
            id,
            "must be a key id of 1 to 64 bytes without control characters",
        ));
    }
    Ok(())
}

impl Keyring {
    /// A builder.
    pub fn builder() -> KeyringBuilder {
        KeyringBuilder { sealing: None, opening: Vec::new() }
    }

    /// A keyring of one key, `key` named `id`, that seals and opens.
    ///
    /// # Errors
    ///
    /// As [`KeyringBuilder::build`].
    pub fn new(id: impl Into<String>, key: [u8; 32]) -> Result<Self, ConfigError> {
        Self::builder().seal_with(id, key).build()
    }

    /// The id of the key that seals.
    pub fn sealing_key_id(&self) -> &str {
        &self.sealing
    }

    /// Whether the keyring holds the key named `id`.
    pub fn can_open(&self, id: &str) -> bool {
        self.ciphers.contains_key(id)
    }

    /// Seals `envelope`'s payload with the sealing key, in place (a payload
    /// already sealed is left as it is).
    ///
    /// # Errors
    ///
    /// [`DecodeError::Sealed`] when the operating system gives no random
    /// bytes for the nonce, or the cipher refuses the payload.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::encryption::Keyring;
    /// use conc_bus::{Envelope, Job, JobOptions};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Secret { pin: u32 }
    /// impl Job for Secret { const NAME: &'static str = "secret"; }
    ///
    /// let keyring = Keyring::new("k1", [5; 32])?;
    /// let mut envelope = Envelope::new(&Secret { pin: 1234 }, &JobOptions::new().encrypted(true), 0)?;
    /// keyring.seal(&mut envelope)?;
    /// assert_eq!(envelope.key_id.as_deref(), Some("k1"));
    /// assert!(!envelope.payload.contains("1234"));
    /// keyring.open(&mut envelope)?;
    /// assert_eq!(envelope.payload, r#"{"pin":1234}"#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn seal(&self, envelope: &mut Envelope) -> Result<(), DecodeError> {
        if envelope.key_id.is_some() {
            return Ok(());
        }
        let id = self.sealing.clone();
        let error = |message: String| DecodeError::Sealed {
            name: envelope.name.clone(),
            key_id: id.clone(),
            message,
        };
        let cipher = &self.ciphers[&self.sealing];
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).map_err(|e| error(format!("no random nonce: {e}")))?;
        let aad = associated_data(envelope, &id);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload { msg: envelope.payload.as_bytes(), aad: &aad },
            )
            .map_err(|_| error("the cipher refused the payload".to_owned()))?;
        let mut bytes = Vec::with_capacity(NONCE + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        envelope.payload = STANDARD.encode(bytes);
        envelope.key_id = Some(id);
        envelope.encrypted = true;
        Ok(())
    }

    /// Opens `envelope`'s sealed payload in place (a plain payload is left
    /// as it is).
    ///
    /// # Errors
    ///
    /// [`DecodeError::Sealed`] naming the key id when the keyring lacks that
    /// key, or when the payload fails authentication (tampered with, sealed
    /// for another job, or with another key of the same id).
    pub fn open(&self, envelope: &mut Envelope) -> Result<(), DecodeError> {
        let Some(id) = envelope.key_id.clone() else { return Ok(()) };
        let error = |message: &str| DecodeError::Sealed {
            name: envelope.name.clone(),
            key_id: id.clone(),
            message: message.to_owned(),
        };
        let Some(cipher) = self.ciphers.get(&id) else {
            return Err(error("the keyring holds no key with this id"));
        };
        let bytes = STANDARD
            .decode(envelope.payload.as_bytes())
            .map_err(|_| error("the sealed payload is not base64"))?;
        if bytes.len() < NONCE + 16 {
            return Err(error("the sealed payload is too short"));
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        let aad = associated_data(envelope, &id);
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
            .map_err(|_| {
            error("authentication failed (the payload was altered or sealed for another job)")
        })?;
        let text =
            String::from_utf8(plain).map_err(|_| error("the opened payload is not UTF-8"))?;
        envelope.payload = text;
        envelope.key_id = None;
        Ok(())
    }
}

impl Keyring {
    /// Seals `envelope` when it is marked encrypted, and the links of its
    /// chain that are. A chain's catch job marked encrypted is refused: it
    /// gets its id when it fires, and the id is part of what the seal
    /// authenticates.
    pub(crate) fn seal_flow(&self, envelope: &mut Envelope) -> Result<(), DecodeError> {
        if envelope.encrypted {
            self.seal(envelope)?;
        }
        let Some(flow) = envelope.flow.as_deref_mut() else { return Ok(()) };
        for link in flow.chain.iter_mut().filter(|link| link.encrypted) {
            self.seal(link)?;
        }
        if let Some(catch) = flow.chain_catch.as_deref().filter(|catch| catch.encrypted) {
            return Err(DecodeError::Sealed {
                name: catch.name.clone(),
                key_id: self.sealing.clone(),
                message: "a chain's catch job cannot be sealed (its id is set when it fires)"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

/// What the seal authenticates besides the payload: the job's identity and the key's id.
fn associated_data(envelope: &Envelope, key_id: &str) -> Vec<u8> {
    format!("conc-bus/seal/v1\0{}\0{}\0{}\0{key_id}", envelope.id, envelope.name, envelope.version)
        .into_bytes()
}

/// Opens `envelope` with `keyring` when it is sealed.
pub(crate) fn open_envelope(
    keyring: Option<&Keyring>,
    envelope: &Envelope,
) -> Result<Option<Envelope>, DecodeError> {
    let Some(id) = envelope.key_id.as_ref() else { return Ok(None) };
    let Some(keyring) = keyring else {
        return Err(DecodeError::Sealed {
            name: envelope.name.clone(),
            key_id: id.clone(),
            message: "the worker's handlers have no keyring".to_owned(),
        });
    };
    let mut opened = envelope.clone();
    keyring.open(&mut opened)?;
    Ok(Some(opened))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobOptions;
    use crate::id::JobId;

    fn envelope() -> Envelope {
        Envelope::raw(JobId::new(), "t", 1, r#"{"card":"4111"}"#.into(), &JobOptions::new(), 0)
    }

    #[test]
    fn a_payload_sealed_for_one_job_does_not_open_in_another() {
        let keyring = Keyring::new("k", [1; 32]).unwrap();
        let mut a = envelope();
        keyring.seal(&mut a).unwrap();
        let mut b = envelope();
        b.payload = a.payload.clone();
        b.key_id = a.key_id.clone();
        let error = keyring.open(&mut b).unwrap_err();
        assert!(error.to_string().contains("authentication failed"), "{error}");
        keyring.open(&mut a).unwrap();
        assert_eq!(a.payload, r#"{"card":"4111"}"#);
    }

    #[test]
    fn bad_key_ids_and_duplicates_are_refused() {
        assert_eq!(Keyring::new("", [0; 32]).unwrap_err().field, "seal_with");
        let twice = Keyring::builder().seal_with("a", [0; 32]).open_with("a", [1; 32]).build();
        assert_eq!(twice.unwrap_err().field, "open_with");
        assert!(Keyring::new("x".repeat(65), [0; 32]).is_err());
    }

    #[test]
    fn two_seals_of_one_payload_differ() {
        let keyring = Keyring::new("k", [1; 32]).unwrap();
        let (mut a, mut b) = (envelope(), envelope());
        b.id = a.id;
        keyring.seal(&mut a).unwrap();
        keyring.seal(&mut b).unwrap();
        assert_ne!(a.payload, b.payload, "random nonces");
    }
}

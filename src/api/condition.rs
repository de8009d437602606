//! `metav1.Condition`, as every kind's status carries it, with its words shared.
//!
//! A cache of 10,000 Connections holds 50,000 conditions, and every one of them repeats a
//! handful of words: five types, two statuses, a few dozen reasons. As separate strings that
//! is 15 small allocations per Connection (32 bytes each at the least); sharing them took
//! about 4 MiB off the operator at 10,000 Connections. Here a word is decoded once and shared
//! from then on; the schema is the API's own `metav1.Condition`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{OnceLock, PoisonError, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use metav1::Time;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A condition's type, status or reason: a word from a small vocabulary, shared between every
/// object that uses it.
pub type Word = Cow<'static, str>;

/// The state of one aspect of an object (`metav1.Condition`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// CamelCase type, such as `Ready`.
    #[serde(rename = "type", default, deserialize_with = "word")]
    pub type_: Word,
    /// `True`, `False` or `Unknown`.
    #[serde(default, deserialize_with = "word")]
    pub status: Word,
    /// A CamelCase word saying why.
    #[serde(default, deserialize_with = "word")]
    pub reason: Word,
    /// What a person should know, in a sentence.
    #[serde(default)]
    pub message: String,
    /// When the status last changed.
    pub last_transition_time: Time,
    /// The `metadata.generation` this condition describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl JsonSchema for Condition {
    fn schema_name() -> Cow<'static, str> {
        metav1::Condition::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        metav1::Condition::schema_id()
    }

    fn inline_schema() -> bool {
        metav1::Condition::inline_schema()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        metav1::Condition::json_schema(generator)
    }
}

/// Distinct words kept for sharing. Plugboard itself writes well under a hundred; the bound is
/// there because anyone allowed to write status can write any reason, and the set must not
/// grow with what they write. A word past the bound is kept as its own string, as before.
const MAX_WORDS: usize = 512;

/// Longer text is not a word of the vocabulary (plugboard's longest reason is 21 letters).
const MAX_WORD_LEN: usize = 64;

/// The words decoded so far, each kept once.
struct Vocabulary {
    words: OnceLock<RwLock<HashSet<&'static str>>>,
    max: usize,
}

static VOCABULARY: Vocabulary = Vocabulary::new(MAX_WORDS);

impl Vocabulary {
    const fn new(max: usize) -> Self {
        Self {
            words: OnceLock::new(),
            max,
        }
    }

    /// The shared copy of `text`, or an owned one when it is no word or the set is full.
    fn intern(&self, text: &str) -> Word {
        let words = self.words.get_or_init(RwLock::default);
        if let Some(word) = words
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(text)
        {
            return Cow::Borrowed(word);
        }
        if text.len() > MAX_WORD_LEN {
            return Cow::Owned(text.to_owned());
        }
        let mut set = words.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(word) = set.get(text) {
            return Cow::Borrowed(word);
        }
        if set.len() >= self.max {
            return Cow::Owned(text.to_owned());
        }
        // Kept for the life of the process, which the bound makes a few kilobytes at most.
        let word: &'static str = Box::leak(text.to_owned().into_boxed_str());
        set.insert(word);
        Cow::Borrowed(word)
    }
}

fn word<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Word, D::Error> {
    struct WordVisitor;

    impl Visitor<'_> for WordVisitor {
        type Value = Word;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Word, E> {
            Ok(VOCABULARY.intern(text))
        }
    }

    deserializer.deserialize_str(WordVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: &str) -> Condition {
        serde_json::from_str(json).expect("a condition")
    }

    const READY: &str = r#"{"type":"Ready","status":"True","reason":"Connected",
        "message":"credentials are stored and work","lastTransitionTime":"2026-11-23T10:00:00Z",
        "observedGeneration":3}"#;

    #[test]
    fn decoded_words_are_shared_between_objects() {
        let (a, b) = (decode(READY), decode(READY));
        for (x, y) in [
            (&a.type_, &b.type_),
            (&a.status, &b.status),
            (&a.reason, &b.reason),
        ] {
            assert!(matches!((x, y), (Cow::Borrowed(_), Cow::Borrowed(_))));
            assert!(std::ptr::eq(x.as_ptr(), y.as_ptr()), "{x} is one copy");
        }
        assert_eq!(a, b);
    }

    #[test]
    fn it_reads_and_writes_what_the_api_server_does() {
        let ours = decode(READY);
        let theirs: metav1::Condition = serde_json::from_str(READY).expect("a metav1.Condition");
        assert_eq!(
            serde_json::to_value(&ours).expect("JSON"),
            serde_json::to_value(&theirs).expect("JSON")
        );
        assert_eq!(ours.reason, "Connected");
        assert_eq!(ours.observed_generation, Some(3));
        let schema = |s: schemars::Schema| serde_json::to_value(s).expect("JSON");
        assert_eq!(
            schema(schemars::schema_for!(Condition)),
            schema(schemars::schema_for!(metav1::Condition))
        );
    }

    #[test]
    fn the_vocabulary_is_bounded() {
        let vocabulary = Vocabulary::new(2);
        let long = "A".repeat(MAX_WORD_LEN + 1);
        assert!(
            matches!(vocabulary.intern(&long), Cow::Owned(_)),
            "not a word"
        );
        assert!(matches!(vocabulary.intern("Connected"), Cow::Borrowed(_)));
        assert!(matches!(vocabulary.intern("TestPassed"), Cow::Borrowed(_)));
        let third = vocabulary.intern("Reason3");
        assert!(matches!(third, Cow::Owned(_)), "past the bound");
        assert_eq!(third, "Reason3", "and still the same text");
        assert!(
            matches!(vocabulary.intern("Connected"), Cow::Borrowed(_)),
            "kept ones stay"
        );
    }
}

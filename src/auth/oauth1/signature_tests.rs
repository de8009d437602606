//! The RFC's own worked examples (RFC 5849 sections 1.2 and 3.4.1); the cross-check against
//! a second implementation (Python's oauthlib) is `tests/oauth1_signature.rs`.

use url::Url;

use super::*;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_base_string_of_section_3_4_1_1() {
    let url = Url::parse("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b").unwrap();
    let protocol = pairs(&[
        ("realm", "Example"),
        ("oauth_consumer_key", "9djdj82h48djs9d2"),
        ("oauth_token", "kkk9d7dh3k39sjv7"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131201"),
        ("oauth_nonce", "7d8f3e4a"),
        ("oauth_signature", "bYT5CMsGcbgUdFHObYMEfcx6bsw%3D"),
    ]);
    // The body `c2&a3=2+q`, form-decoded.
    let form = pairs(&[("c2", ""), ("a3", "2 q")]);
    assert_eq!(
        base_string("post", &url, &protocol, &form),
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
    );
}

#[test]
fn the_temporary_credentials_request_of_section_1_2() {
    let url = Url::parse("https://photos.example.net/initiate").unwrap();
    let protocol = pairs(&[
        ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131200"),
        ("oauth_nonce", "wIjqoS"),
        ("oauth_callback", "http://printer.example.com/ready"),
    ]);
    let base = base_string("POST", &url, &protocol, &[]);
    let key = Key::Shared {
        consumer_secret: "kd94hf93k423kf44",
        token_secret: "",
    };
    assert_eq!(
        sign(SignatureMethod::HmacSha1, &base, &key).unwrap(),
        "74KNZJeDHnMBp0EMJ9ZHt/XKycU="
    );
}

#[test]
fn the_protected_resource_request_of_section_1_2() {
    let url =
        Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original").unwrap();
    let protocol = pairs(&[
        ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
        ("oauth_token", "nnch734d00sl2jdk"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131202"),
        ("oauth_nonce", "chapoH"),
    ]);
    let base = base_string("GET", &url, &protocol, &[]);
    let key = Key::Shared {
        consumer_secret: "kd94hf93k423kf44",
        token_secret: "pfkkdhi9sl3r4s00",
    };
    assert_eq!(
        sign(SignatureMethod::HmacSha1, &base, &key).unwrap(),
        "MdpQcU8iPSUjWoN/UDMsK2sui9I="
    );
}

#[test]
fn encoding_leaves_only_the_unreserved_characters() {
    assert_eq!(encode("abcABC123-._~"), "abcABC123-._~");
    assert_eq!(encode("a b+c*d!e/f"), "a%20b%2Bc%2Ad%21e%2Ff");
    assert_eq!(encode("é"), "%C3%A9");
}

#[test]
fn a_port_is_kept_only_when_it_is_not_the_default() {
    let url = Url::parse("HTTP://EXAMPLE.com:80/r%20v/X?id=123").unwrap();
    assert_eq!(base_uri(&url), "http://example.com/r%20v/X");
    let url = Url::parse("https://www.example.net:8080/?q=1").unwrap();
    assert_eq!(base_uri(&url), "https://www.example.net:8080/");
}

#[test]
fn plaintext_is_the_two_secrets_and_rsa_needs_a_key() {
    let key = Key::Shared {
        consumer_secret: "c&s",
        token_secret: "t s",
    };
    assert_eq!(
        sign(SignatureMethod::Plaintext, "ignored", &key).unwrap(),
        "c%26s&t%20s"
    );
    assert_eq!(
        sign(SignatureMethod::RsaSha1, "base", &key),
        Err(SignError::NeedsRsaKey)
    );
    assert!(rsa_key("not a key").is_err());
}

#[test]
fn the_header_quotes_every_encoded_value() {
    let header = authorization_header(&pairs(&[
        ("oauth_consumer_key", "key"),
        ("oauth_signature", "a+b/c="),
    ]));
    assert_eq!(
        header,
        "OAuth oauth_consumer_key=\"key\", oauth_signature=\"a%2Bb%2Fc%3D\""
    );
}

//! When things fall due: refreshes ahead of expiry, retries after a failure. Pure functions
//! of the times involved and a jitter fraction the caller draws, so that they are tested with
//! fixed values and no clock.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// A source of jitter: a fraction in `[0, 1)` each call. The operator draws at random;
/// tests pass fixed values.
pub type Dice<'a> = &'a mut (dyn FnMut() -> f64 + Send);

/// The operator's dice.
pub fn random() -> f64 {
    rand::random::<f64>()
}

/// Refresh no later than this before expiry, whatever the lifetime: leaves room for a few
/// retries against a struggling token endpoint before the access token lapses.
const MIN_MARGIN: Duration = Duration::from_secs(300);
/// And no later than this share of the lifetime before expiry, for long-lived tokens.
const MARGIN_SHARE: f64 = 0.2;
/// But the margin never takes more than this share of the lifetime: short tokens (Keycloak
/// issues 5-minute ones by default) are used for at least half their life, not refreshed
/// as soon as they arrive.
const MAX_MARGIN_SHARE: f64 = 0.4;
/// Never refresh sooner than this after tokens were issued: a token endpoint that hands out
/// tokens with no lifetime left (`expires_in: 0`) is asked every five seconds, not in a loop,
/// while a ten-second token is still replaced before it expires.
const MIN_REFRESH_GAP: SignedDuration = SignedDuration::from_secs(5);
/// Up to this share of the lifetime is added at random, so tokens issued together spread
/// their refreshes instead of arriving at the token endpoint in one burst.
const JITTER_SHARE: f64 = 0.1;

/// First retry after a transient failure: soon enough that a blip heals unnoticed.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest wait between retries: a provider down for hours is retried every five minutes,
/// which costs it nothing and reconnects promptly when it is back.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Up to this share is added to a backoff at random, so that Connections failing together
/// do not retry together.
const BACKOFF_JITTER_SHARE: f64 = 0.2;

/// When to refresh tokens that expire at `expires_at` and were issued at `issued_at`.
pub fn refresh_due(issued_at: Timestamp, expires_at: Timestamp, dice: Dice<'_>) -> Timestamp {
    let earliest = issued_at.checked_add(MIN_REFRESH_GAP).unwrap_or(issued_at);
    ahead_of(expires_at, issued_at, dice).max(earliest)
}

/// A margin and a jitter before `expires_at`, both shares of the life left since `from`;
/// never before `from`.
pub fn ahead_of(expires_at: Timestamp, from: Timestamp, dice: Dice<'_>) -> Timestamp {
    let lifetime = Duration::try_from(expires_at.duration_since(from)).unwrap_or_default();
    let margin = MIN_MARGIN
        .max(lifetime.mul_f64(MARGIN_SHARE))
        .min(lifetime.mul_f64(MAX_MARGIN_SHARE));
    let jitter = lifetime.mul_f64(JITTER_SHARE * dice());
    let before = SignedDuration::try_from(margin + jitter).unwrap_or(SignedDuration::MAX);
    expires_at.checked_sub(before).unwrap_or(from).max(from)
}

/// Exponential backoff from `BACKOFF_MIN` to `BACKOFF_MAX` after `attempts` failures in a
/// row, with jitter.
pub fn backoff(attempts: u32, dice: Dice<'_>) -> Duration {
    let exp = BACKOFF_MIN.saturating_mul(1u32 << attempts.min(16));
    exp.min(BACKOFF_MAX)
        .mul_f64(1.0 + BACKOFF_JITTER_SHARE * dice())
}

/// `now` plus `delay`, saturating.
pub fn after(now: Timestamp, delay: Duration) -> Timestamp {
    let delay = SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
    now.checked_add(delay).unwrap_or(now)
}

/// How long from `now` until `at`; zero when it has passed.
pub fn until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_one_hour_token_refreshes_between_twelve_and_eighteen_minutes_early() {
        let (issued, expires) = (at("2026-01-01T00:00:00Z"), at("2026-01-01T01:00:00Z"));
        // 20 % of 60 min is 12 min; jitter adds up to 10 % (6 min).
        for (roll, early) in [(0.0, 720), (0.5, 900), (0.999_999, 1079)] {
            let due = refresh_due(issued, expires, &mut || roll);
            assert_eq!(expires.duration_since(due).as_secs(), early, "roll {roll}");
        }
    }

    #[test]
    fn a_twenty_minute_token_refreshes_at_least_five_minutes_early() {
        // A fifth of 20 minutes is 4; the five-minute floor wins (and the 40 % cap allows it).
        let (issued, expires) = (at("2026-01-01T00:00:00Z"), at("2026-01-01T00:20:00Z"));
        let due = refresh_due(issued, expires, &mut || 0.0);
        assert_eq!(expires.duration_since(due).as_secs(), 300);
    }

    #[test]
    fn a_five_minute_token_is_used_for_half_its_life_before_it_is_refreshed() {
        let (issued, expires) = (at("2026-01-01T00:00:00Z"), at("2026-01-01T00:05:00Z"));
        // The margin is capped at 40 % (120 s) and the jitter adds up to 10 % (30 s).
        for (roll, used) in [(0.0, 180), (0.999_999, 150)] {
            let due = refresh_due(issued, expires, &mut || roll);
            assert_eq!(due.duration_since(issued).as_secs(), used, "roll {roll}");
        }
    }

    #[test]
    fn a_token_without_lifetime_is_not_refreshed_in_a_loop() {
        let issued = at("2026-01-01T00:00:00Z");
        for expires in [
            issued,
            at("2025-12-31T23:59:00Z"),
            at("2026-01-01T00:00:05Z"),
        ] {
            let wait = refresh_due(issued, expires, &mut || 0.5)
                .duration_since(issued)
                .as_secs();
            assert_eq!(wait, 5, "expiring at {expires}");
        }
    }

    #[test]
    fn backoff_grows_from_one_second_to_five_minutes_and_jitter_adds_at_most_a_fifth() {
        assert_eq!(backoff(0, &mut || 0.0), BACKOFF_MIN);
        assert_eq!(backoff(3, &mut || 0.0), Duration::from_secs(8));
        assert_eq!(backoff(8, &mut || 0.0), Duration::from_secs(256));
        assert_eq!(
            backoff(9, &mut || 0.0),
            BACKOFF_MAX,
            "512 s would pass the cap"
        );
        assert_eq!(backoff(30, &mut || 0.0), BACKOFF_MAX);
        assert_eq!(backoff(30, &mut || 0.5), Duration::from_secs(330));
        assert!(backoff(30, &mut || 0.999_999) < BACKOFF_MAX.mul_f64(1.2));
    }
}

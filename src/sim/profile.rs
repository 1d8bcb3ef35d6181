//! Stable listener profiles, drawn from the listener's own seed.

use std::net::Ipv4Addr;

use rand::Rng;

use crate::event::{Platform, Profile};

/// Countries with rough shares of a streaming service's audience.
const COUNTRIES: [(&str, u32); 16] = [
    ("US", 22),
    ("BR", 9),
    ("DE", 8),
    ("GB", 8),
    ("RU", 7),
    ("FR", 6),
    ("MX", 6),
    ("IN", 6),
    ("JP", 5),
    ("ES", 4),
    ("IT", 4),
    ("CA", 4),
    ("PL", 3),
    ("NL", 3),
    ("SE", 3),
    ("KZ", 2),
];

/// Platform shares: android, ios, web, desktop.
const PLATFORM_SHARES: [u32; 4] = [45, 30, 15, 10];

/// Derives listener `index`'s seed from the run seed (SplitMix64 finaliser), so that each
/// listener's sequence is independent of every other listener's and of scheduling.
pub fn listener_seed(run_seed: u64, index: u64) -> u64 {
    let mut z = run_seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn weighted<R: Rng>(rng: &mut R, shares: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = shares.clone().sum();
    let mut x = rng.random_range(0..total);
    for (i, s) in shares.enumerate() {
        if x < s {
            return i;
        }
        x -= s;
    }
    unreachable!("x < total")
}

/// Draws a profile; the profile
/// depends on the listener seed only.
pub fn draw_profile<R: Rng>(rng: &mut R) -> Profile {
    let user_id = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
    let platform = Platform::ALL[weighted(rng, PLATFORM_SHARES.iter().copied())];
    let token = rng.random::<u128>();
    let country = COUNTRIES[weighted(rng, COUNTRIES.iter().map(|c| c.1))].0;
    // Public-looking unicast addresses: skip 0/8, 10/8, 127/8 and multicast and above.
    let first = loop {
        let o = rng.random_range(1u8..224);
        if o != 10 && o != 127 {
            break o;
        }
    };
    let rest = rng.next_u32().to_be_bytes();
    let ipv4 = Ipv4Addr::new(first, rest[0], rest[1], rest[2].max(1));
    let playlists = (0..rng.random_range(1..=5))
        .map(|_| rng.random_range(1..=i64::from(u32::MAX)))
        .collect();
    Profile {
        user_id,
        platform,
        platform_token: format!("{}-{token:032x}", platform.name()),
        ipv4,
        country,
        playlists,
    }
}

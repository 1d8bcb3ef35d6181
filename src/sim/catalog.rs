//! The track catalog: Zipf popularity over track ids, lognormal track durations.

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Zipf};
use rand_pcg::Pcg64Mcg;

/// Shortest and longest track the catalog holds, ms.
const MIN_DURATION_MS: f64 = 30_000.0;
const MAX_DURATION_MS: f64 = 1_200_000.0;

/// Why a catalog could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalog needs at least one track")]
    NoTracks,
    #[error("zipf: {0}")]
    Popularity(#[source] rand_distr::ZipfError),
    #[error("{0}")]
    Durations(#[source] rand_distr::NormalError),
}

/// Immutable and shared by every listener (behind an `Arc`).
#[derive(Debug)]
pub struct Catalog {
    zipf: Zipf<f64>,
    durations_ms: Vec<u32>,
}

impl Catalog {
    /// `tracks` ids 1..=tracks; popularity exponent 1.07 (typical for music streaming), median
    /// duration 3.5 minutes.
    pub fn new(tracks: u32, seed: u64) -> Result<Catalog, CatalogError> {
        if tracks == 0 {
            return Err(CatalogError::NoTracks);
        }
        let zipf = Zipf::new(tracks as f64, 1.07).map_err(CatalogError::Popularity)?;
        let lengths = LogNormal::new((210_000f64).ln(), 0.35).map_err(CatalogError::Durations)?;
        let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0xCA7A_1065);
        let durations_ms = (0..tracks)
            .map(|_| {
                lengths
                    .sample(&mut rng)
                    .clamp(MIN_DURATION_MS, MAX_DURATION_MS) as u32
            })
            .collect();
        Ok(Catalog { zipf, durations_ms })
    }

    pub fn len(&self) -> usize {
        self.durations_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.durations_ms.is_empty()
    }

    /// A track id drawn by popularity (1 is the most popular).
    pub fn pick<R: Rng>(&self, rng: &mut R) -> i64 {
        let id = self.zipf.sample(rng) as i64;
        id.clamp(1, self.durations_ms.len() as i64)
    }

    pub fn duration_ms(&self, track_id: i64) -> i64 {
        self.durations_ms[(track_id - 1) as usize] as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popularity_is_skewed_and_ids_in_range() {
        let c = Catalog::new(1000, 1).unwrap();
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let mut top10 = 0;
        for _ in 0..100_000 {
            let id = c.pick(&mut rng);
            assert!((1..=1000).contains(&id));
            if id <= 10 {
                top10 += 1;
            }
        }
        // Under Zipf(1.07) the top 1% of tracks take far more than 1% of plays.
        assert!(top10 > 20_000, "top10 share {top10}");
        for id in 1..=1000 {
            let d = c.duration_ms(id);
            assert!((30_000..=1_200_000).contains(&d));
        }
        assert!(Catalog::new(0, 1).is_err());
    }
}

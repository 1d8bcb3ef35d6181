//! The commit protocol that makes lake output exactly-once, with any number of writers.
//!
//! A batch is one contiguous offset range of one source partition, written as one Parquet file
//! per event date. Each writer of a partition first *claims* it: it creates
//! `claims/p…/<epoch>.json` for the next epoch, only if absent, so every claim has its own
//! epoch and a later claim tells every earlier writer it is stale. Writing a batch:
//!
//! 1. put the *intent* (`pending/p…/<first>-<last>-e<epoch>.json`): the files about to be
//!    written (their names carry the epoch: no writer touches another's);
//! 2. put every data file (each put is atomic: no reader sees half a file);
//! 3. look once more: a writer that was revoked, or whose epoch a later claim superseded,
//!    stops here;
//! 4. create the *commit marker* `commits/p…/<first>.json`, only if absent: from here the range
//!    is committed. Two writers continuing the partition from the same offset contend for
//!    this one name; the loser removes its own files and intent and stops writing there;
//! 5. delete the intent.
//!
//! Recovery of a partition (at start and on assignment) claims it before it deletes anything,
//! then resumes after the highest committed offset. An intent is removed with its files once it
//! provably lost: another writer's marker holds its name, or the committed ranges passed it. An
//! intent whose name is still free may belong to a writer that is alive and about to commit: it
//! stays until the name is taken. Markers' names chain (each range starts where the previous
//! one ended), so a crash at any instant, or any number of racing writers, leaves each range
//! either wholly committed or wholly absent, never two overlapping.
//!
//! Cost: markers chain (each range's marker is named by where the previous one ended), so the
//! end of a partition is found by walking from its checkpoint (a known point of the chain and
//! a claimed epoch, moved by recovery and every few commits): recovery and the drain check
//! read a bounded number of small objects, whatever the lake's age, and list no marker. Readers
//! of the whole history (verify) read the markers' copies in manifests, one per few hundred
//! commits.

mod chain;
mod claims;
mod commit;
mod manifest;
mod marker;
mod recovery;

pub use commit::{Attempt, CHECKPOINT_EVERY, Fence};
pub use manifest::MANIFEST_EVERY;
pub use marker::{
    CommitMarker, FileEntry, PartitionRecovery, PreparedBatch, PreparedFile, Rejected,
};

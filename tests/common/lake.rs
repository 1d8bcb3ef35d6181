//! A lake on the stack's S3, read (and damaged) with object_store and the parquet crate.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimestampMillisecondType};
use arrow::util::display::array_value_to_string;
use bytes::Bytes;
use encore::lake::{Lake, Range};
use futures::TryStreamExt;
use object_store::ObjectStore;

use super::stack::Stack;
use super::{Row, batches, rows, rt};

/// A lake on the stack's S3.
pub struct LakeView {
    lake: Lake,
    rt: tokio::runtime::Runtime,
}

impl LakeView {
    pub fn open(stack: &Stack, url: &str, table: &str) -> LakeView {
        let lake = Lake::open(&stack.lake_config(url), table).expect("opening the lake");
        LakeView { lake, rt: rt() }
    }

    /// Committed ranges of `partition`, in offset order.
    pub fn committed(&self, partition: i32) -> Vec<Range> {
        let mut r = self
            .rt
            .block_on(self.lake.committed_ranges(partition))
            .expect("listing commit markers");
        r.sort();
        r
    }

    /// Per partition, the offset after the last committed one (0 when none; all 0 while the
    /// sink has not created the bucket yet).
    pub fn committed_ends(&self, partitions: usize) -> Vec<i64> {
        (0..partitions as i32)
            // The end of the chain (a few reads), not every marker: tests poll this.
            .map(|p| match self.rt.block_on(self.lake.committed_end(p)) {
                Ok(end) => end,
                Err(e) if e.to_string().contains("NoSuchBucket") => 0,
                Err(e) => panic!("listing commit markers: {e}"),
            })
            .collect()
    }

    /// Commits begun and not finished: an intent whose commit marker does not exist (a commit
    /// in progress, or one a crash interrupted before its marker).
    pub fn interrupted_commits(&self) -> usize {
        self.interrupted_intents().len()
    }

    /// The intents counted by [`LakeView::interrupted_commits`], by path.
    pub fn interrupted_intents(&self) -> std::collections::BTreeSet<String> {
        let store = self.lake.store().clone();
        let dir = self
            .lake
            .root()
            .child(encore::lake::META_DIR)
            .child(self.lake.table())
            .child("pending");
        self.rt.block_on(async move {
            let metas = match store.list(Some(&dir)).try_collect::<Vec<_>>().await {
                Ok(m) => m,
                Err(e) if e.to_string().contains("NoSuchBucket") => return Default::default(),
                Err(e) => panic!("listing commit intents: {e}"),
            };
            let mut open = std::collections::BTreeSet::new();
            for m in metas
                .iter()
                .filter(|m| m.location.as_ref().ends_with(".json"))
            {
                // `pending/p…/<first>-<last>-e<epoch>.json` → `commits/p…/<first>.json` (the
                // name its commit takes; before epochs, `<first>-<last>.json`).
                let intent = m.location.as_ref().replacen("/pending/", "/commits/", 1);
                let marker = match intent.rsplit_once('/') {
                    Some((dir, name)) if name.matches('-').count() >= 2 => {
                        let first = name.split('-').next().unwrap_or_default();
                        object_store::path::Path::from(format!("{dir}/{first}.json"))
                    }
                    _ => object_store::path::Path::from(intent),
                };
                match store.head(&marker).await {
                    Ok(_) => {}
                    Err(object_store::Error::NotFound { .. }) => {
                        open.insert(m.location.to_string());
                    }
                    Err(e) => panic!("checking {marker}: {e}"),
                }
            }
            open
        })
    }

    /// Every Parquet file under the table (committed or not), with its bytes.
    pub fn parquet_objects(&self) -> Vec<(String, Bytes)> {
        let store = self.lake.store().clone();
        let prefix = self.lake.table_path();
        self.rt.block_on(async move {
            let metas: Vec<_> = store
                .list(Some(&prefix))
                .try_collect()
                .await
                .expect("listing the table");
            let mut out = Vec::new();
            for m in metas {
                if !m.location.as_ref().ends_with(".parquet") {
                    continue;
                }
                let bytes: Bytes = store
                    .get(&m.location)
                    .await
                    .expect("reading a data file")
                    .bytes()
                    .await
                    .expect("reading a data file");
                out.push((m.location.to_string(), bytes));
            }
            out.sort();
            out
        })
    }

    /// Writes an object (a full path in the store, as `parquet_objects` names them).
    pub fn put(&self, location: &str, bytes: Bytes) {
        let store = self.lake.store().clone();
        let path = object_store::path::Path::from(location);
        self.rt
            .block_on(store.put(&path, bytes.into()))
            .expect("writing to the lake");
    }

    pub fn delete(&self, location: &str) {
        let store = self.lake.store().clone();
        let path = object_store::path::Path::from(location);
        self.rt
            .block_on(store.delete(&path))
            .expect("deleting from the lake");
    }

    /// Every Parquet file under the table (committed or not), with its rows.
    pub fn files(&self) -> Vec<(String, Vec<Row>)> {
        self.parquet_objects()
            .into_iter()
            .map(|(name, bytes)| {
                let rows = rows(&batches(bytes, &name));
                (name, rows)
            })
            .collect()
    }

    /// Every committed-or-not row with the given columns, rendered as text (NULL as ""),
    /// keyed by event id.
    pub fn columns(&self, names: &[&str]) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (name, bytes) in self.parquet_objects() {
            for b in batches(bytes, &name) {
                let ids = b.column_by_name("event_id").unwrap().as_string::<i32>();
                for i in 0..b.num_rows() {
                    let row = names
                        .iter()
                        .map(|n| {
                            let col = b
                                .column_by_name(n)
                                .unwrap_or_else(|| panic!("lake has no column {n}"));
                            let v = if col.is_null(i) {
                                String::new()
                            } else if let DataType::Timestamp(..) = col.data_type() {
                                // Epoch milliseconds: what ClickHouse keeps as ts_ms.
                                col.as_primitive::<TimestampMillisecondType>()
                                    .value(i)
                                    .to_string()
                            } else {
                                array_value_to_string(col, i).unwrap()
                            };
                            (n.to_string(), v)
                        })
                        .collect();
                    out.insert(ids.value(i).to_string(), row);
                }
            }
        }
        out
    }
}

//! The six checked columns of one batch, typed once so that the row checks read plain values;
//! a column missing or of another type makes the file's rows unreadable.

use arrow::array::{
    Array, ArrayRef, AsArray, Int8Array, Int32Array, Int64Array, PrimitiveArray, RecordBatch,
    StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{
    ArrowPrimitiveType, Int8Type, Int32Type, Int64Type, TimestampMillisecondType,
};
use parquet::errors::ParquetError;

use crate::event::EventType;

/// The checked columns of one batch.
pub(super) struct Columns {
    pub ids: StringArray,
    pub type_ids: Int8Array,
    names: ArrayRef,
    /// Each row's key into `by_name`.
    keys: Vec<usize>,
    /// The type id each dictionary value names (None: no type of that name).
    by_name: Vec<Option<i8>>,
    pub times: TimestampMillisecondArray,
    pub partitions: Int32Array,
    pub offsets: Int64Array,
}

fn general(e: String) -> ParquetError {
    ParquetError::General(e)
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ParquetError> {
    b.column_by_name(name)
        .ok_or_else(|| general(format!("no {name}")))
}

fn primitive<T: ArrowPrimitiveType>(
    b: &RecordBatch,
    name: &str,
    type_name: &str,
) -> Result<PrimitiveArray<T>, ParquetError> {
    column(b, name)?
        .as_primitive_opt::<T>()
        .cloned()
        .ok_or_else(|| general(format!("{name} is not {type_name}")))
}

impl Columns {
    pub fn of(b: &RecordBatch) -> Result<Columns, ParquetError> {
        let ids = column(b, "event_id")?
            .as_string_opt::<i32>()
            .cloned()
            .ok_or_else(|| general("event_id is not Utf8".into()))?;
        let type_ids = primitive::<Int8Type>(b, "event_type_id", "Int8")?;
        let names = column(b, "event_type")?.clone();
        let dict = names
            .as_any_dictionary_opt()
            .ok_or_else(|| general("event_type is not dictionary-encoded".into()))?;
        let values = dict
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| general("event_type values are not Utf8".into()))?;
        let by_name = (0..values.len())
            .map(|i| EventType::from_name(values.value(i)).map(|t| t.id() as i8))
            .collect();
        let keys = dict.normalized_keys();
        Ok(Columns {
            ids,
            type_ids,
            names,
            keys,
            by_name,
            times: primitive::<TimestampMillisecondType>(b, "event_time", "Timestamp(ms)")?,
            partitions: primitive::<Int32Type>(b, "kafka_partition", "Int32")?,
            offsets: primitive::<Int64Type>(b, "kafka_offset", "Int64")?,
        })
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The type id row `i`'s name stands for.
    pub fn type_by_name(&self, i: usize) -> Option<i8> {
        if self.names.is_null(i) {
            return None;
        }
        self.by_name.get(self.keys[i]).copied().flatten()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use arrow::array::DictionaryArray;
    use arrow::datatypes::Int16Type;
    use std::sync::Arc;

    /// One row: event id, type id, type name, time, partition; offsets count from 10.
    pub type Row<'a> = (Option<&'a str>, i8, Option<&'a str>, i64, i32);

    pub fn batch(rows: &[Row]) -> RecordBatch {
        let names: DictionaryArray<Int16Type> = rows.iter().map(|r| r.2).collect();
        let ids: StringArray = rows.iter().map(|r| r.0).collect();
        let type_ids = Int8Array::from_iter_values(rows.iter().map(|r| r.1));
        let times = TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.3));
        let partitions = Int32Array::from_iter_values(rows.iter().map(|r| r.4));
        let offsets = Int64Array::from_iter_values(10..10 + rows.len() as i64);
        let cols: Vec<(&str, ArrayRef)> = vec![
            ("event_id", Arc::new(ids)),
            ("event_type_id", Arc::new(type_ids)),
            ("event_type", Arc::new(names)),
            ("event_time", Arc::new(times)),
            ("kafka_partition", Arc::new(partitions)),
            ("kafka_offset", Arc::new(offsets)),
        ];
        RecordBatch::try_from_iter(cols).unwrap()
    }

    #[test]
    fn names_are_read_through_the_dictionary() {
        let row = |name| (Some("a"), 2, name, 0, 0);
        let b = batch(&[
            row(Some("pause_track")),
            row(None),
            row(Some("nope")),
            row(Some("pause_track")),
        ]);
        let c = Columns::of(&b).unwrap();
        assert_eq!(c.len(), 4);
        let by_name: Vec<Option<i8>> = (0..4).map(|i| c.type_by_name(i)).collect();
        assert_eq!(by_name, [Some(2), None, None, Some(2)]);
    }

    #[test]
    fn a_missing_or_mistyped_column_is_named() {
        let ids: ArrayRef = Arc::new(StringArray::from(vec!["a"]));
        let only_ids = RecordBatch::try_from_iter([("event_id", ids)]).unwrap();
        let e = Columns::of(&only_ids).err().unwrap();
        assert!(e.to_string().ends_with("no event_type_id"), "{e}");
        let wrong: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        let wrong_ids = RecordBatch::try_from_iter([("event_id", wrong)]).unwrap();
        let e = Columns::of(&wrong_ids).err().unwrap();
        assert!(e.to_string().ends_with("event_id is not Utf8"), "{e}");
    }
}
